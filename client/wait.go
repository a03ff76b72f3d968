package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/piperun/piperun/domain"
)

// DefaultPoll is the polling interval of the Wait methods when none is
// given.
const DefaultPoll = 500 * time.Millisecond

// Outcome is how a processing job or a restore ended, as recorded in the
// run's events.
type Outcome struct {
	// Done: the ending event is in the stream.
	Done bool
	// OK: it ended well (processing completed, run restored).
	OK bool
	// Reason is the failure's reason when it did not end well.
	Reason string
	// Version is the stream version of the ending event. Read models that
	// show at least this version (see apitypes.RunDetail.Version) also
	// show the lines logged with it.
	Version int64
}

// ProcessingOutcome looks up, once, how the processing job jobID of run
// name ended; Done is false while it has not.
func (c *Client) ProcessingOutcome(ctx context.Context, name, jobID string) (Outcome, error) {
	return c.outcome(ctx, name, "job_id", jobID, domain.TypeProcessingCompleted, domain.TypeProcessingFailed)
}

// RestoreOutcome looks up, once, how the restore requestID of run name
// ended; Done is false while it has not. The run's status cannot tell: a
// failed restore puts the status back to what it was, Completed included.
func (c *Client) RestoreOutcome(ctx context.Context, name, requestID string) (Outcome, error) {
	return c.outcome(ctx, name, "request_id", requestID, domain.TypeRunRestored, domain.TypeRestoreFailed)
}

// WaitProcessing polls the run's events every poll (DefaultPoll if not
// positive) until the processing job jobID ends, and reports whether it
// completed or, if not, why it failed. When it returns without error,
// GetRun shows the job's outcome.
func (c *Client) WaitProcessing(ctx context.Context, name, jobID string, poll time.Duration) (ok bool, reason string, err error) {
	o, err := c.wait(ctx, name, poll, func() (Outcome, error) { return c.ProcessingOutcome(ctx, name, jobID) })
	return o.OK, o.Reason, err
}

// WaitRestore polls the run's events every poll (DefaultPoll if not
// positive) until the restore requestID ends, and reports whether the run
// was restored or, if not, why the restore failed. When it returns without
// error, GetRun shows the restore's outcome.
func (c *Client) WaitRestore(ctx context.Context, name, requestID string, poll time.Duration) (ok bool, reason string, err error) {
	o, err := c.wait(ctx, name, poll, func() (Outcome, error) { return c.RestoreOutcome(ctx, name, requestID) })
	return o.OK, o.Reason, err
}

// WaitVersion polls every poll (DefaultPoll if not positive) until GetRun
// shows the run at version or later. The events come from the event log
// while GetRun and the logs come from read models that follow it, a moment
// behind. It returns at once if the run no longer exists.
func (c *Client) WaitVersion(ctx context.Context, name string, version int64, poll time.Duration) error {
	_, err := c.wait(ctx, "", poll, func() (Outcome, error) {
		d, err := c.GetRun(ctx, name)
		if IsStatus(err, http.StatusNotFound) {
			return Outcome{Done: true}, nil
		}
		return Outcome{Done: d.Version >= version}, err
	})
	return err
}

// wait calls check every poll until it reports Done, then, if name is
// set, waits for the read models to show the ending event.
func (c *Client) wait(ctx context.Context, name string, poll time.Duration, check func() (Outcome, error)) (Outcome, error) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		o, err := check()
		if err != nil {
			return o, err
		}
		if o.Done {
			if name != "" {
				err = c.WaitVersion(ctx, name, o.Version, poll)
			}
			return o, err
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-t.C:
		}
	}
}

// outcome scans the run's events for the success or failure event whose
// data field idField equals id.
func (c *Client) outcome(ctx context.Context, name, idField, id, okType, failType string) (Outcome, error) {
	evs, err := c.Events(ctx, name)
	if err != nil {
		return Outcome{}, err
	}
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.Type != okType && ev.Type != failType {
			continue
		}
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return Outcome{}, fmt.Errorf("decode %s event %d of run %s: %w", ev.Type, ev.Version, name, err)
		}
		if data[idField] != id {
			continue
		}
		o := Outcome{Done: true, OK: ev.Type == okType, Version: ev.Version}
		if !o.OK {
			o.Reason, _ = data["reason"].(string)
		}
		return o, nil
	}
	return Outcome{}, nil
}
