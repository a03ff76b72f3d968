package domain

import "time"

// Event is a fact about a run or a user. Its Type is a versioned name; a
// change of shape gets a new version and an upcaster, never an edit of
// history. Its stored form is the JSON its struct tags give, which package
// eventjson writes and reads (a new event type needs a case in its Decode).
type Event interface {
	EventType() string
}

// Recorded is an event as read back from the store, with the metadata Apply
// needs.
type Recorded struct {
	Version int64
	Time    time.Time
	Actor   string
	Event   Event
}

// Event type names.
const (
	TypeRunCreated          = "run.created.v1"
	TypeConfigUpdated       = "run.config_updated.v1"
	TypeProcessingRequested = "run.processing_requested.v1"
	TypeProcessingStarted   = "run.processing_started.v1"
	TypeProcessingCompleted = "run.processing_completed.v1"
	TypeProcessingFailed    = "run.processing_failed.v1"
	TypeLogWritten          = "run.log_written.v1"
	TypeRestoreRequested    = "run.restore_requested.v1"
	TypeRunRestored         = "run.restored.v1"
	TypeRestoreFailed       = "run.restore_failed.v1"
	TypeDeletionRequested   = "run.deletion_requested.v1"
	TypeRunDeleted          = "run.deleted.v1"
	TypeUserCreated         = "user.created.v1"
	TypeUserTokenRevoked    = "user.token_revoked.v1"
	TypeUserTokenRotated    = "user.token_rotated.v1"
	TypeSessionEnded        = "user.session_ended.v1"
)

// JobMode says whether a processing job reprocesses everything or adds
// images to the last successful run.
type JobMode string

// Job modes.
const (
	ModeFull JobMode = "full"
	ModeAdd  JobMode = "add"
)

// RunCreated starts a run's stream.
type RunCreated struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Owner       string    `json:"owner"`
	Config      RunConfig `json:"config"`
}

// ConfigUpdated replaces the run's current configuration.
type ConfigUpdated struct {
	Config RunConfig `json:"config"`
}

// ProcessingRequested queues a processing job. In add mode it carries the
// backup of the pre-addition run, so that a restore needs nothing but the
// stream.
type ProcessingRequested struct {
	JobID          string    `json:"job_id"`
	Mode           JobMode   `json:"mode"`
	Debug          bool      `json:"debug"`
	FullRerun      bool      `json:"full_rerun"`
	Config         RunConfig `json:"config"`
	Log            string    `json:"log"`
	PreviousStatus Status    `json:"previous_status"`
	// AddedImages are the inputs.image entries new in this addition.
	AddedImages []string `json:"added_images,omitempty"`
	// Backup is set in add mode: the run as it was before the addition.
	Backup *Backup `json:"backup,omitempty"`
}

// ProcessingStarted: a worker picked the job up.
type ProcessingStarted struct {
	JobID string `json:"job_id"`
}

// ProcessingCompleted: the job produced the run's new products.
type ProcessingCompleted struct {
	JobID    string   `json:"job_id"`
	Products Products `json:"products"`
}

// ProcessingFailed: the job stopped with an error; the run goes to Error.
type ProcessingFailed struct {
	JobID  string `json:"job_id"`
	Reason string `json:"reason"`
}

// LogKind tells run logs from restore logs.
type LogKind string

// Log kinds.
const (
	LogRun     LogKind = "run"
	LogRestore LogKind = "restore"
)

// LogWritten appends lines to one of the run's log files. Lines are
// formatted "2006-01-02 15:04:05,000 LEVEL message".
type LogWritten struct {
	Log   string   `json:"log"`
	Kind  LogKind  `json:"kind"`
	Lines []string `json:"lines"`
}

// RestoreRequested puts the run in Restoring until a worker restores it.
type RestoreRequested struct {
	RequestID      string `json:"request_id"`
	Debug          bool   `json:"debug"`
	Log            string `json:"log"`
	PreviousStatus Status `json:"previous_status"`
	// BackupVersion identifies the backup to restore (the stream version of
	// the event that took it).
	BackupVersion int64 `json:"backup_version"`
}

// RunRestored brings the run back to its backup and consumes the backup.
type RunRestored struct {
	RequestID     string `json:"request_id"`
	BackupVersion int64  `json:"backup_version"`
	// Abandoned lists the artifacts of the undone addition that the restored
	// products do not use, for the artifact janitor.
	Abandoned []Artifact `json:"abandoned,omitempty"`
}

// RestoreFailed puts the run back to the status it had before the request;
// nothing else changes.
type RestoreFailed struct {
	RequestID string `json:"request_id"`
	Reason    string `json:"reason"`
}

// DeletionRequested puts the run in Deleting.
type DeletionRequested struct{}

// RunDeleted ends the run. A new run of the same name may be created later
// in the same stream.
type RunDeleted struct {
	// Artifacts are those the deleted run referenced, for the janitor.
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// UserCreated registers a user. Only the token's hash is stored.
type UserCreated struct {
	Name      string `json:"name"`
	Admin     bool   `json:"admin"`
	TokenHash string `json:"token_hash"`
}

// UserTokenRevoked withdraws a user's API token: it, and every web session
// signed in with it, stops working. The user stays (their runs keep their
// owner); rotating gives them a new token.
type UserTokenRevoked struct{}

// UserTokenRotated replaces a user's API token with a new one (its hash):
// the old token and every session signed in with it stop working.
type UserTokenRotated struct {
	TokenHash string `json:"token_hash"`
}

// SessionEnded records that a web session was signed out of, so that every
// replica refuses its cookie from then on. Until is when the session would
// have expired anyway: after it the record is no longer needed.
type SessionEnded struct {
	Session string    `json:"session"`
	Until   time.Time `json:"until"`
}

// EventType implementations.
func (RunCreated) EventType() string          { return TypeRunCreated }
func (ConfigUpdated) EventType() string       { return TypeConfigUpdated }
func (ProcessingRequested) EventType() string { return TypeProcessingRequested }
func (ProcessingStarted) EventType() string   { return TypeProcessingStarted }
func (ProcessingCompleted) EventType() string { return TypeProcessingCompleted }
func (ProcessingFailed) EventType() string    { return TypeProcessingFailed }
func (LogWritten) EventType() string          { return TypeLogWritten }
func (RestoreRequested) EventType() string    { return TypeRestoreRequested }
func (RunRestored) EventType() string         { return TypeRunRestored }
func (RestoreFailed) EventType() string       { return TypeRestoreFailed }
func (DeletionRequested) EventType() string   { return TypeDeletionRequested }
func (RunDeleted) EventType() string          { return TypeRunDeleted }
func (UserCreated) EventType() string         { return TypeUserCreated }
func (UserTokenRevoked) EventType() string    { return TypeUserTokenRevoked }
func (UserTokenRotated) EventType() string    { return TypeUserTokenRotated }
func (SessionEnded) EventType() string        { return TypeSessionEnded }
