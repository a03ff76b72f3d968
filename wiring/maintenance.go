// Maintenance of a data directory: artifact sweeps and rebuilding the read models.

package wiring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/piperun/piperun/workers"
)

// DefaultSweepGrace is how old an unused artifact must be before a sweep
// deletes it; DefaultSweepEvery how often a server with workers sweeps.
const (
	DefaultSweepGrace = 24 * time.Hour
	DefaultSweepEvery = 6 * time.Hour
)

// sweepEvery runs an artifact sweep every interval until ctx ends; a sweep
// that fails or skips is logged and tried again at the next interval.
func sweepEvery(ctx context.Context, c *Components, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rep, err := workers.Sweep(ctx, c.Store, c.Read, c.Artifacts, DefaultSweepGrace, log)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("artifact sweep failed", "err", err)
		case rep.Skipped != "":
			log.Info("artifact sweep deleted nothing", "reason", rep.Skipped)
		default:
			log.Info("artifact sweep done", "examined", rep.Examined, "deleted", rep.Deleted, "bytes", rep.Bytes)
		}
	}
}

// SweepArtifacts brings the read models up to the log's head, then deletes
// the stored artifacts no run uses that are older than grace (see
// workers.Sweep), and reports to out. It is safe while a server runs on the
// same data directory.
func SweepArtifacts(ctx context.Context, st Storage, grace time.Duration, out io.Writer) (workers.SweepReport, error) {
	c, err := Open(ctx, st)
	if err != nil {
		return workers.SweepReport{}, err
	}
	defer c.Close()
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		return workers.SweepReport{}, fmt.Errorf("sweep artifacts: %w", err)
	}
	rep, err := workers.Sweep(ctx, c.Store, c.Read, c.Artifacts, grace, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return rep, err
	}
	if rep.Skipped != "" {
		fmt.Fprintf(out, "deleted nothing: %s; try again later\n", rep.Skipped)
		return rep, nil
	}
	fmt.Fprintf(out, "examined %d stored files older than %s; deleted %d that no run uses (%d bytes)\n", rep.Examined, grace, rep.Deleted, rep.Bytes)
	return rep, nil
}

// RebuildProjections drops the read models and rebuilds them from the
// event log, reporting progress to out.
func RebuildProjections(ctx context.Context, st Storage, out io.Writer) error {
	c, err := Open(ctx, st)
	if err != nil {
		return err
	}
	defer c.Close()
	head, err := c.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("rebuild projections: %w", err)
	}
	if err := c.Read.Reset(ctx); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "rebuilding read models from %d events\n", head)
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		return err
	}
	d := time.Since(start)
	rate := float64(head) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(out, "rebuilt read models at position %d in %s (%.0f events/s)\n", c.Read.Position(), d.Round(time.Millisecond), rate)
	return nil
}
