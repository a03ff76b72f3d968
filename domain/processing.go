// Processing decisions: requesting, starting, resuming, cancelling and finishing a run's job.

package domain

import (
	"fmt"
)

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
