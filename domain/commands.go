// Who may change a run, and the commands that create, configure and delete it.

package domain

// Actor is who issues a command.
type Actor struct {
	Name  string
	Admin bool
}

// mayChange reports whether the actor may change this run: its creator or
// an administrator.
func (r *Run) mayChange(a Actor) bool { return a.Admin || (a.Name != "" && a.Name == r.Owner) }

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
