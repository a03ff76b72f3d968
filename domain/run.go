package domain

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Status is a run's lifecycle status, named as in the VAST pipeline.
type Status string

// Run statuses.
const (
	StatusInitialised Status = "Initialised"
	StatusQueued      Status = "Queued"
	StatusRunning     Status = "Running"
	StatusCompleted   Status = "Completed"
	StatusError       Status = "Error"
	StatusRestoring   Status = "Restoring"
	StatusDeleting    Status = "Deleting"
)

// Limits on user-supplied run fields, as in the VAST pipeline.
const (
	MaxRunNameLength    = 64
	MaxDescriptionRunes = 240
)

// Backup is the run as it was before an addition of images: what a restore
// brings back.
type Backup struct {
	// Version is the stream version of the event that took the backup.
	Version  int64     `json:"version"`
	Config   RunConfig `json:"config"`
	Products Products  `json:"products"`
}

// Job is a processing job that was requested and has not ended.
type Job struct {
	ID             string    `json:"id"`
	Mode           JobMode   `json:"mode"`
	Debug          bool      `json:"debug"`
	Config         RunConfig `json:"config"`
	Log            string    `json:"log"`
	PreviousStatus Status    `json:"previous_status"`
	Started        bool      `json:"started"`
	// Starts counts the job's ProcessingStarted events: its first start
	// and each start again after the process running it stopped.
	Starts int `json:"starts,omitempty"`
}

// MaxJobStarts is how many times a job is started at most: a job that was
// started this many times and never finished is failed, not started again,
// since a job that crashes the process would otherwise crash it at every
// start.
const MaxJobStarts = 3

// starts returns how many times the job was started (a state stored
// before Starts was counted says only whether it was).
func (j *Job) starts() int {
	if j.Started {
		return max(j.Starts, 1)
	}
	return j.Starts
}

// PendingRestore is a restore that was requested and has not ended.
type PendingRestore struct {
	ID             string `json:"id"`
	Debug          bool   `json:"debug"`
	Log            string `json:"log"`
	PreviousStatus Status `json:"previous_status"`
	BackupVersion  int64  `json:"backup_version"`
	RequestedBy    string `json:"requested_by"`
}

// LogRef names one of the run's log files.
type LogRef struct {
	Name    string    `json:"name"`
	Kind    LogKind   `json:"kind"`
	Created time.Time `json:"created"`
}

// Run is the state of the pipeline run aggregate. The zero value is a run
// that does not exist.
type Run struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Owner       string    `json:"owner"`
	Status      Status    `json:"status"`
	Version     int64     `json:"version"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Deleted     bool      `json:"deleted"`

	// Config is the current configuration (possibly edited since the last
	// processing).
	Config RunConfig `json:"config"`
	// LastSuccessful is the configuration of the last successful processing,
	// nil if the run never completed.
	LastSuccessful *RunConfig `json:"last_successful,omitempty"`
	// Products of the last successful processing, nil if none.
	Products *Products `json:"products,omitempty"`
	// Backup is the pre-addition run, nil when no restore is possible.
	Backup *Backup `json:"backup,omitempty"`

	Job     *Job            `json:"job,omitempty"`
	Restore *PendingRestore `json:"restore,omitempty"`
	Logs    []LogRef        `json:"logs,omitempty"`
}

// Exists reports whether the run was created and not deleted. (Name alone
// does not tell: callers set it on the zero Run so that errors can name the
// run.)
func (r *Run) Exists() bool { return r.Version > 0 && r.Status != "" && !r.Deleted }

// Figures returns the run's current figures (zero when it has no products).
func (r *Run) Figures() Figures {
	if r.Products == nil {
		return Figures{}
	}
	return r.Products.Figures
}

// RestoreAvailable reports whether a restore could be requested now.
func (r *Run) RestoreAvailable() bool {
	return r.Exists() && r.Backup != nil && (r.Status == StatusCompleted || r.Status == StatusError)
}

// Apply folds one recorded event into the state. It never fails and never
// does I/O; unknown events are ignored so that old code can read new
// streams.
func (r *Run) Apply(rec Recorded) {
	r.Version = rec.Version
	r.Updated = rec.Time
	switch e := rec.Event.(type) {
	case RunCreated:
		*r = Run{
			Name: e.Name, Description: e.Description, Owner: e.Owner,
			Status: StatusInitialised, Version: rec.Version,
			Created: rec.Time, Updated: rec.Time, Config: e.Config.Clone(),
		}
	case ConfigUpdated:
		r.Config = e.Config.Clone()
	case ProcessingRequested:
		r.Config = e.Config.Clone()
		r.Job = &Job{ID: e.JobID, Mode: e.Mode, Debug: e.Debug, Config: e.Config.Clone(), Log: e.Log, PreviousStatus: e.PreviousStatus}
		r.Status = StatusQueued
		switch e.Mode {
		case ModeAdd:
			if e.Backup != nil {
				b := *e.Backup
				b.Config = b.Config.Clone()
				b.Products = b.Products.Clone()
				r.Backup = &b
			}
		case ModeFull:
			// A full re-run starts from nothing: there is no pre-addition
			// version to go back to any more.
			r.Products = nil
			r.LastSuccessful = nil
			r.Backup = nil
		}
		r.addLog(e.Log, LogRun, rec.Time)
	case ProcessingStarted:
		if r.Job != nil && r.Job.ID == e.JobID {
			r.Job.Started = true
			r.Job.Starts++
			r.Status = StatusRunning
		}
	case ProcessingCompleted:
		if r.Job != nil && r.Job.ID == e.JobID {
			cfg := r.Job.Config.Clone()
			p := e.Products.Clone()
			r.LastSuccessful = &cfg
			r.Products = &p
			r.Job = nil
			r.Status = StatusCompleted
		}
	case ProcessingFailed:
		if r.Job != nil && r.Job.ID == e.JobID {
			r.Job = nil
			r.Status = StatusError
		}
	case LogWritten:
		r.addLog(e.Log, e.Kind, rec.Time)
	case RestoreRequested:
		r.Restore = &PendingRestore{ID: e.RequestID, Debug: e.Debug, Log: e.Log, PreviousStatus: e.PreviousStatus, BackupVersion: e.BackupVersion, RequestedBy: rec.Actor}
		r.Status = StatusRestoring
		r.addLog(e.Log, LogRestore, rec.Time)
	case RunRestored:
		if r.Restore != nil && r.Restore.ID == e.RequestID && r.Backup != nil {
			cfg := r.Backup.Config.Clone()
			last := r.Backup.Config.Clone()
			p := r.Backup.Products.Clone()
			r.Config = cfg
			r.LastSuccessful = &last
			r.Products = &p
			r.Backup = nil
			r.Restore = nil
			r.Status = StatusCompleted
		}
	case RestoreFailed:
		if r.Restore != nil && r.Restore.ID == e.RequestID {
			r.Status = r.Restore.PreviousStatus
			r.Restore = nil
		}
	case DeletionRequested:
		r.Status = StatusDeleting
	case RunDeleted:
		r.Deleted = true
		r.Job = nil
		r.Restore = nil
	}
}

// LeavesArtifacts reports whether applying e leaves the artifacts a run
// uses (its products' and its backup's) as they were, whatever the run's
// state: the read models then need not look up which artifacts the run
// used before e.
func LeavesArtifacts(e Event) bool {
	switch e.(type) {
	case ConfigUpdated, ProcessingStarted, ProcessingFailed, LogWritten, RestoreRequested, RestoreFailed, DeletionRequested:
		return true
	}
	return false
}

func (r *Run) addLog(name string, kind LogKind, t time.Time) {
	if name == "" {
		return
	}
	for _, l := range r.Logs {
		if l.Name == name {
			return
		}
	}
	r.Logs = append(r.Logs, LogRef{Name: name, Kind: kind, Created: t})
}

// Actor is who issues a command.
type Actor struct {
	Name  string
	Admin bool
}

// mayChange reports whether the actor may change this run: its creator or
// an administrator.
func (r *Run) mayChange(a Actor) bool { return a.Admin || (a.Name != "" && a.Name == r.Owner) }

// ValidateRunName checks a new run's name: 1 to MaxRunNameLength
// characters from the safe alphabet (ASCII letters, digits, '.', '_' and
// '-'), starting with a letter or a digit. The alphabet is a subset of
// VAST's (which refuses only some punctuation and spaces), chosen so that
// two names never look alike: without non-ASCII letters there is no
// invisible character, no look-alike letter from another script, no
// right-to-left text and no composed/decomposed pair of one letter. A name
// may not start with '.', '_' or '-', so that it is never taken for a
// hidden file or a command-line flag. Case is kept: "Run1" and "run1" are
// two runs, as in VAST, since they show differently.
//
// Only new names are checked: runs created under older rules keep their
// names.
func ValidateRunName(name string) error {
	return validateName("run name", name, MaxRunNameLength)
}

// validateName applies the safe alphabet of run and user names.
func validateName(what, name string, max int) error {
	const rule = "use only ASCII letters, digits, '.', '_' and '-', starting with a letter or a digit"
	switch {
	case name == "":
		return errorf(ErrInvalid, "%s is empty; %s", what, rule)
	case utf8.RuneCountInString(name) > max:
		return errorf(ErrInvalid, "%s is %d characters long; at most %d are allowed", what, utf8.RuneCountInString(name), max)
	}
	pos := 0
	for i, c := range name {
		pos++
		if isNameChar(c) && (pos > 1 || isAlnum(c)) {
			continue
		}
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size == 1 {
				return errorf(ErrInvalid, "%s %+q is not valid UTF-8 (byte 0x%02X at position %d); %s", what, name, name[i], pos, rule)
			}
		}
		if pos == 1 && isNameChar(c) {
			return errorf(ErrInvalid, "%s %+q starts with %q; %s", what, name, c, rule)
		}
		return errorf(ErrInvalid, "%s %+q has character %s at position %d, which is not allowed; %s", what, name, describeName(c), pos, rule)
	}
	return nil
}

func isAlnum(c rune) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c rune) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

// describeName names a character refused in a name: printable ASCII
// quoted, anything else by code point.
func describeName(c rune) string {
	if c > ' ' && c < 0x7f {
		return fmt.Sprintf("%q", c)
	}
	if c == ' ' {
		return "' ' (space)"
	}
	return describeRune(c)
}

// ValidateDescription applies VAST's limit on run descriptions and refuses
// the characters that do not show or change how the text around them
// shows (see HiddenRune), tab and newline included: a description is one
// line, shown in the columns of `piperun list` and on a line of `piperun
// status`, where a newline or a carriage return could forge a line and a
// tab shifts the columns; the page's description field is a one-line
// input, so no one typing in it can send either.
func ValidateDescription(d string) error {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionRunes {
		return errorf(ErrInvalid, "description is %d characters long; at most %d are allowed", n, MaxDescriptionRunes)
	}
	if pos, r := firstHidden(d); pos > 0 {
		if r == utf8.RuneError {
			return errorf(ErrInvalid, "description: invalid UTF-8 at position %d", pos)
		}
		return errorf(ErrInvalid, "description: character %s at position %d is not allowed (no control, format, invisible or line-separator characters)", describeRune(r), pos)
	}
	return nil
}

// CreateRun is the command to create a run.
type CreateRun struct {
	Name        string
	Description string
	Config      RunConfig
	Actor       Actor
}

// Create decides the creation of a run. r is the state of the run's stream
// (zero or deleted when the name is free).
func (r *Run) Create(c CreateRun) ([]Event, error) {
	if err := ValidateRunName(c.Name); err != nil {
		return nil, err
	}
	if err := ValidateDescription(c.Description); err != nil {
		return nil, err
	}
	if c.Actor.Name == "" {
		return nil, errorf(ErrForbidden, "an authenticated user is needed to create a run")
	}
	if r.Exists() {
		return nil, errorf(ErrExists, "run %q already exists", c.Name)
	}
	if err := checkConfig(c.Config); err != nil {
		return nil, err
	}
	return []Event{RunCreated{Name: c.Name, Description: c.Description, Owner: c.Actor.Name, Config: c.Config.Clone()}}, nil
}

func checkConfig(c RunConfig) error {
	in := c.Inputs
	if len(in.Images) == 0 {
		return errorf(ErrInvalid, "configuration has no input images")
	}
	if len(in.Selavy) != len(in.Images) || len(in.Noise) != len(in.Images) ||
		(len(in.Background) != 0 && len(in.Background) != len(in.Images)) ||
		(in.Epochs != nil && len(in.Epochs) != len(in.Images)) {
		return errorf(ErrInvalid, "configuration inputs have different lengths")
	}
	if c.SettingsDigest == "" {
		return errorf(ErrInvalid, "configuration has no settings digest")
	}
	return nil
}

// busy reports whether the status forbids processing and edits.
func busy(s Status) bool {
	return s == StatusQueued || s == StatusRunning || s == StatusRestoring || s == StatusDeleting
}

func (r *Run) mustExist() error {
	if !r.Exists() {
		return errorf(ErrNotFound, "run %q does not exist", r.Name)
	}
	return nil
}

// UpdateConfig decides a change of the run's configuration.
func (r *Run) UpdateConfig(cfg RunConfig, a Actor) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(a) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may change its configuration", r.Owner)
	}
	if busy(r.Status) {
		return nil, errorf(ErrRunBusy, "the configuration cannot be changed while the run is %s", r.Status)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	return []Event{ConfigUpdated{Config: cfg.Clone()}}, nil
}

// RequestProcessing is the command to process (or re-process) a run.
type RequestProcessing struct {
	JobID     string
	Debug     bool
	FullRerun bool
	// Log is the name of the new run log, "<YYYY-MM-DD-HH-MM-SS>_log.txt".
	Log   string
	Actor Actor
}

// RequestProcessing decides a processing request. Without FullRerun, a run
// that completed before may only gain images: the settings must be
// unchanged and every previous image must still be there, in which case the
// job is in add mode and the pre-addition run is backed up.
func (r *Run) RequestProcessing(c RequestProcessing) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(c.Actor) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may process it", r.Owner)
	}
	if busy(r.Status) {
		return nil, errorf(ErrRunBusy, "the run cannot be processed while it is %s", r.Status)
	}
	ev := ProcessingRequested{
		JobID: c.JobID, Mode: ModeFull, Debug: c.Debug, FullRerun: c.FullRerun,
		Config: r.Config.Clone(), Log: c.Log, PreviousStatus: r.Status,
	}
	if r.LastSuccessful == nil || r.Products == nil || c.FullRerun {
		return []Event{ev}, nil
	}
	added, err := AddedImages(*r.LastSuccessful, r.Config)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusCompleted && r.Backup == nil {
		// Only a failed addition (which left its backup) may be retried in
		// add mode from Error; anything else needs a full re-run.
		return nil, errorf(ErrConflict, "adding images needs a Completed run; the run is %s: use a full re-run", r.Status)
	}
	ev.Mode = ModeAdd
	ev.AddedImages = added
	ev.Backup = &Backup{
		Version:  r.Version + 1,
		Config:   r.LastSuccessful.Clone(),
		Products: r.Products.Clone(),
	}
	return []Event{ev}, nil
}

// AddedImages compares the configuration of the last successful run with a
// new one and returns the images the new one adds. Only inputs may change,
// and the previous images must all stay with the same catalogue, noise and
// background files.
func AddedImages(prev, next RunConfig) ([]string, error) {
	for _, c := range []RunConfig{prev, next} {
		if err := checkConfig(c); err != nil {
			return nil, err
		}
	}
	if prev.SettingsDigest != next.SettingsDigest {
		return nil, errorf(ErrConflict, "settings other than the inputs changed since the last successful run: re-process with a full re-run")
	}
	type files struct{ selavy, noise, bg string }
	at := func(in Inputs, i int) files {
		f := files{selavy: in.Selavy[i], noise: in.Noise[i]}
		if i < len(in.Background) {
			f.bg = in.Background[i]
		}
		return f
	}
	nextIdx := make(map[string]int, len(next.Inputs.Images))
	for i, img := range next.Inputs.Images {
		nextIdx[img] = i
	}
	for i, img := range prev.Inputs.Images {
		j, ok := nextIdx[img]
		if !ok {
			return nil, errorf(ErrConflict, "image %s of the last successful run was removed from the inputs: previous images must stay (or use a full re-run)", img)
		}
		if at(prev.Inputs, i) != at(next.Inputs, j) {
			return nil, errorf(ErrConflict, "the catalogue, noise or background file of image %s changed: use a full re-run", img)
		}
	}
	prevSet := make(map[string]bool, len(prev.Inputs.Images))
	for _, img := range prev.Inputs.Images {
		prevSet[img] = true
	}
	var added []string
	for _, img := range next.Inputs.Images {
		if !prevSet[img] {
			added = append(added, img)
		}
	}
	if len(added) == 0 {
		return nil, errorf(ErrConflict, "no images were added since the last successful run: add images to the inputs, or use a full re-run")
	}
	return added, nil
}

// StartProcessing decides that a worker starts the job. It returns no
// events when the job is not the pending one (a redelivered message).
func (r *Run) StartProcessing(jobID string) []Event {
	if r.Job == nil || r.Job.ID != jobID || r.Job.Started || r.Status != StatusQueued {
		return nil
	}
	return []Event{ProcessingStarted{JobID: jobID}}
}

// ResumeProcessing decides what becomes of a pending job that a worker
// takes up again after the process that ran it stopped: started once more
// (ProcessingStarted), or, when it was started maxStarts times already
// (MaxJobStarts unless maxStarts > 0), failed with the reason. A job not
// started yet is started as StartProcessing would. It returns no events
// when the job is not the pending one.
func (r *Run) ResumeProcessing(jobID string, maxStarts int) []Event {
	if r.Job == nil || r.Job.ID != jobID {
		return nil
	}
	if !r.Job.Started {
		return r.StartProcessing(jobID)
	}
	if maxStarts <= 0 {
		maxStarts = MaxJobStarts
	}
	if n := r.Job.starts(); n >= maxStarts {
		return []Event{ProcessingFailed{JobID: jobID, Reason: fmt.Sprintf(
			"job %s was interrupted %d times (the process stopped while running it); giving up — see the server log", jobID, n)}}
	}
	return []Event{ProcessingStarted{JobID: jobID}}
}

// CancelJob decides the cancellation of the run's pending job, queued or
// running, by its creator or an administrator: the job ends as failed,
// with who cancelled it as the reason. A worker still running it is told
// by that event to stop, and whatever it records afterwards is refused,
// the job being no longer the pending one.
func (r *Run) CancelJob(a Actor) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(a) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may cancel its job", r.Owner)
	}
	if r.Job == nil || (r.Status != StatusQueued && r.Status != StatusRunning) {
		return nil, errorf(ErrNotRunning, "the run is %s; only a Queued or Running run can be cancelled", r.Status)
	}
	return []Event{ProcessingFailed{JobID: r.Job.ID, Reason: "cancelled by " + a.Name}}, nil
}

// FinishProcessing decides the end of a job: its products, or its failure.
// It returns no events when the job is no longer pending.
func (r *Run) FinishProcessing(jobID string, products *Products, failure error) []Event {
	if r.Job == nil || r.Job.ID != jobID {
		return nil
	}
	if failure != nil {
		return []Event{ProcessingFailed{JobID: jobID, Reason: failure.Error()}}
	}
	if products == nil {
		return []Event{ProcessingFailed{JobID: jobID, Reason: "the job produced no products"}}
	}
	return []Event{ProcessingCompleted{JobID: jobID, Products: products.Clone()}}
}

// RequestRestore is the command to restore a run to its pre-addition
// version.
type RequestRestore struct {
	RequestID string
	Debug     bool
	// Log is the name of the new restore log,
	// "<YYYY-MM-DD-HH-MM-SS>_restore_log.txt".
	Log   string
	Actor Actor
}

// RequestRestore decides a restore request: only the creator or an
// administrator, only from Completed or Error, only with a backup.
func (r *Run) RequestRestore(c RequestRestore) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(c.Actor) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may restore it", r.Owner)
	}
	if r.Status != StatusCompleted && r.Status != StatusError {
		return nil, errorf(ErrNotRestorable, "the run is %s; a restore needs status Completed or Error", r.Status)
	}
	if r.Backup == nil {
		return nil, errorf(ErrNotRestorable, "the run has no backup to restore: a backup is taken when images are added, and a restore uses it up")
	}
	return []Event{RestoreRequested{
		RequestID: c.RequestID, Debug: c.Debug, Log: c.Log,
		PreviousStatus: r.Status, BackupVersion: r.Backup.Version,
	}}, nil
}

// CheckBackup checks what can be checked of the backup without I/O: its
// image list must match its configuration.
func (b *Backup) CheckBackup() error {
	want := b.Config.Inputs.Images
	have := make(map[string]bool, len(b.Products.Images))
	for _, im := range b.Products.Images {
		have[im.Path] = true
	}
	if len(have) != len(want) {
		return fmt.Errorf("the backup's products hold %d images but its configuration lists %d", len(have), len(want))
	}
	for _, img := range want {
		if !have[img] {
			return fmt.Errorf("image %s of the backup's configuration is missing from its products", img)
		}
	}
	return nil
}

// FinishRestore decides the end of a restore. verifyErr is the result of
// checking the backup's artifacts (nil when whole). It returns no events
// when the restore is no longer pending (a redelivered message).
func (r *Run) FinishRestore(requestID string, verifyErr error) []Event {
	if r.Restore == nil || r.Restore.ID != requestID || r.Status != StatusRestoring {
		return nil
	}
	if r.Backup == nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: "the backup is gone"}}
	}
	if err := r.Backup.CheckBackup(); err != nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: err.Error()}}
	}
	if verifyErr != nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: verifyErr.Error()}}
	}
	return []Event{RunRestored{RequestID: requestID, BackupVersion: r.Backup.Version, Abandoned: r.abandonedByRestore()}}
}

// FailRestore decides that the pending restore failed for reason, whatever
// the backup holds: what a worker records when it could not carry the
// restore out. It returns no events when the restore is no longer pending.
func (r *Run) FailRestore(requestID, reason string) []Event {
	if r.Restore == nil || r.Restore.ID != requestID || r.Status != StatusRestoring {
		return nil
	}
	return []Event{RestoreFailed{RequestID: requestID, Reason: reason}}
}

// abandonedByRestore lists the current artifacts the backup does not use.
func (r *Run) abandonedByRestore() []Artifact {
	if r.Products == nil || r.Backup == nil {
		return nil
	}
	keep := make(map[string]bool)
	for _, a := range r.Backup.Products.Artifacts {
		keep[a.Digest] = true
	}
	var out []Artifact
	for _, a := range r.Products.Artifacts {
		if !keep[a.Digest] {
			out = append(out, a)
		}
	}
	return out
}

// RequestDeletion decides a deletion request. A Queued or Running run's
// job is cancelled first, in the same decision (see CancelJob): a job that
// never ends must not keep its run from being deleted.
func (r *Run) RequestDeletion(a Actor) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(a) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may delete it", r.Owner)
	}
	if r.Status == StatusRestoring || r.Status == StatusDeleting {
		return nil, errorf(ErrRunBusy, "the run cannot be deleted while it is %s", r.Status)
	}
	if r.Job != nil && (r.Status == StatusQueued || r.Status == StatusRunning) {
		return []Event{
			ProcessingFailed{JobID: r.Job.ID, Reason: "cancelled by " + a.Name + ": the run is being deleted"},
			DeletionRequested{},
		}, nil
	}
	if r.Status == StatusQueued || r.Status == StatusRunning {
		return nil, errorf(ErrRunBusy, "the run cannot be deleted while it is %s", r.Status)
	}
	return []Event{DeletionRequested{}}, nil
}

// FinishDeletion decides the deletion once requested.
func (r *Run) FinishDeletion() []Event {
	if !r.Exists() || r.Status != StatusDeleting {
		return nil
	}
	var arts []Artifact
	if r.Products != nil {
		arts = append(arts, r.Products.Artifacts...)
	}
	if r.Backup != nil {
		arts = append(arts, r.Backup.Products.Artifacts...)
	}
	return []Event{RunDeleted{Artifacts: arts}}
}
