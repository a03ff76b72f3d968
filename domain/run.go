package domain

import (
	"slices"
	"time"
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

// Clone returns a deep copy of r that shares nothing with it (nil and empty
// lists kept apart), so that a state kept aside is not changed by what is
// applied to r afterwards.
func (r Run) Clone() Run {
	c := r
	c.Config = r.Config.ExactClone()
	if r.LastSuccessful != nil {
		ls := r.LastSuccessful.ExactClone()
		c.LastSuccessful = &ls
	}
	if r.Products != nil {
		p := r.Products.ExactClone()
		c.Products = &p
	}
	if r.Backup != nil {
		b := Backup{Version: r.Backup.Version, Config: r.Backup.Config.ExactClone(), Products: r.Backup.Products.ExactClone()}
		c.Backup = &b
	}
	if r.Job != nil {
		j := *r.Job
		j.Config = r.Job.Config.ExactClone()
		c.Job = &j
	}
	if r.Restore != nil {
		p := *r.Restore
		c.Restore = &p
	}
	c.Logs = slices.Clone(r.Logs)
	return c
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
