package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
)

// HistoryOptions shape the run histories WriteHistory appends. Zero fields
// take the defaults noted.
type HistoryOptions struct {
	// Events is how many events to append (default 1,000,000). The last
	// commands may overshoot it by a few events.
	Events int
	// Writers append concurrently, each driving one run at a time, so that
	// runs interleave in the global log as they do in service (default 64).
	Writers int
	// Images is the number of images a run starts with (default 4); each
	// cycle adds one and restores.
	Images int
	// LogFlushes is the number of log events per processing job (default
	// 10), each of LogLines lines (default 5).
	LogFlushes, LogLines int
	// Cycles is the number of add-then-restore cycles per run (default 3).
	Cycles int
	// Prefix starts every run name (default "hist-").
	Prefix string
}

func (o *HistoryOptions) defaults() {
	if o.Events <= 0 {
		o.Events = 1_000_000
	}
	if o.Writers <= 0 {
		o.Writers = 64
	}
	if o.Images <= 0 {
		o.Images = 4
	}
	if o.LogFlushes <= 0 {
		o.LogFlushes = 10
	}
	if o.LogLines <= 0 {
		o.LogLines = 5
	}
	if o.Cycles <= 0 {
		o.Cycles = 3
	}
	if o.Prefix == "" {
		o.Prefix = "hist-"
	}
}

// HistoryResult tells what WriteHistory appended.
type HistoryResult struct {
	Events, Runs int
	Elapsed      time.Duration
}

// WriteHistory appends valid run histories to store until about
// opts.Events events are written: each run is created, processed, then
// goes through cycles of an image added (add mode, with its backup) and a
// restore, with the log events a job writes. Commands are decided by the
// domain on the state the writer keeps, as the service decides them, but
// without reloading the run for each: the store's expected-version check
// still guards every append. Products are named by made-up digests: no
// artifact is written.
func WriteHistory(ctx context.Context, store eventstore.Store, opts HistoryOptions) (HistoryResult, error) {
	opts.defaults()
	cfgs := make([]domain.RunConfig, opts.Images+1)
	for i := range cfgs {
		c, err := syntheticConfig(opts.Images+i, "history")
		if err != nil {
			return HistoryResult{}, err
		}
		cfgs[i] = c
	}
	start := time.Now()
	var written, nextRun atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for written.Load() < int64(opts.Events) && ctx.Err() == nil {
				n := nextRun.Add(1)
				h := &historyRun{store: store, name: fmt.Sprintf("%s%07d", opts.Prefix, n), opts: opts, cfgs: cfgs, written: &written}
				if err := h.play(ctx); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return HistoryResult{}, firstErr
	}
	return HistoryResult{Events: int(written.Load()), Runs: int(nextRun.Load()), Elapsed: time.Since(start)}, ctx.Err()
}

// historyRun plays one run's script.
type historyRun struct {
	store   eventstore.Store
	name    string
	opts    HistoryOptions
	cfgs    []domain.RunConfig
	written *atomic.Int64
	r       domain.Run
	job     int
}

var owner = domain.Actor{Name: "alice"}

// exec appends the decided events at the version the state is at.
func (h *historyRun) exec(ctx context.Context, actor string, decide func(r *domain.Run) ([]domain.Event, error)) error {
	if h.written.Load() >= int64(h.opts.Events) {
		return errEnough
	}
	b := runBuilder{r: h.r}
	if err := b.do(actor, decide); err != nil {
		return fmt.Errorf("run %s: %w", h.name, err)
	}
	if _, _, err := h.store.Append(ctx, command.RunStream(h.name), h.r.Version, b.events...); err != nil {
		return fmt.Errorf("append to run %s: %w", h.name, err)
	}
	h.r = b.r
	h.written.Add(int64(len(b.events)))
	return nil
}

// runBuilder decides commands on a run's state, as the service does, and
// collects the events for appending them at the version the state started
// from.
type runBuilder struct {
	r      domain.Run
	events []eventstore.EventData
}

func (b *runBuilder) do(actor string, decide func(r *domain.Run) ([]domain.Event, error)) error {
	evs, err := decide(&b.r)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, e := range evs {
		typ, body, err := eventjson.Encode(e)
		if err != nil {
			return err
		}
		b.events = append(b.events, eventstore.EventData{ID: uuid.NewString(), Type: typ, Data: body, Actor: actor, Time: now})
		b.r.Apply(domain.Recorded{Version: b.r.Version + 1, Time: now, Actor: actor, Event: e})
	}
	return nil
}

// errEnough stops a run's script once the history is long enough.
var errEnough = errors.New("enough events")

func (h *historyRun) play(ctx context.Context) error {
	err := h.script(ctx)
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

func (h *historyRun) script(ctx context.Context) error {
	base := h.cfgs[0]
	if err := h.exec(ctx, owner.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.Create(domain.CreateRun{Name: h.name, Description: "benchmark history", Config: base, Actor: owner})
	}); err != nil {
		return err
	}
	if err := h.process(ctx, false); err != nil {
		return err
	}
	for c := 0; c < h.opts.Cycles; c++ {
		added := h.cfgs[1]
		if err := h.exec(ctx, owner.Name, func(r *domain.Run) ([]domain.Event, error) { return r.UpdateConfig(added, owner) }); err != nil {
			return err
		}
		if err := h.process(ctx, true); err != nil {
			return err
		}
		if err := h.restore(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (h *historyRun) logLines(what string, n int) []string {
	ts := time.Now().UTC().Format("2006-01-02 15:04:05")
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%s,%03d INFO %s: step %d of %d", ts, i, what, i+1, n)
	}
	return lines
}

// process requests a job, starts it, flushes its log and completes it, as
// the processing worker does.
func (h *historyRun) process(ctx context.Context, add bool) error {
	h.job++
	jobID := uuid.NewString()
	logName := fmt.Sprintf("2024-05-01-12-%02d-%02d_log.txt", h.job/60%60, h.job%60)
	if err := h.exec(ctx, owner.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.RequestProcessing(domain.RequestProcessing{JobID: jobID, Log: logName, Actor: owner})
	}); err != nil {
		return err
	}
	if err := h.exec(ctx, "system:processing-worker", func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(jobID), nil }); err != nil {
		return err
	}
	for f := 0; f < h.opts.LogFlushes; f++ {
		lines := h.logLines("Measuring images", h.opts.LogLines)
		if err := h.exec(ctx, "system:processing-worker", func(*domain.Run) ([]domain.Event, error) {
			return []domain.Event{domain.LogWritten{Log: logName, Kind: domain.LogRun, Lines: lines}}, nil
		}); err != nil {
			return err
		}
	}
	products := syntheticProducts(h.name, h.r.Config, h.job)
	return h.exec(ctx, "system:processing-worker", func(r *domain.Run) ([]domain.Event, error) {
		evs := r.FinishProcessing(jobID, &products, nil)
		return append([]domain.Event{domain.LogWritten{Log: logName, Kind: domain.LogRun, Lines: h.logLines("Processing finished", 1)}}, evs...), nil
	})
}

// restore requests a restore and completes it, as the restore worker does.
func (h *historyRun) restore(ctx context.Context) error {
	reqID := uuid.NewString()
	logName := fmt.Sprintf("2024-05-01-13-%02d-%02d_restore_log.txt", h.job/60%60, h.job%60)
	if err := h.exec(ctx, owner.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.RequestRestore(domain.RequestRestore{RequestID: reqID, Log: logName, Actor: owner})
	}); err != nil {
		return err
	}
	return h.exec(ctx, "system:restore-worker", func(r *domain.Run) ([]domain.Event, error) {
		evs := r.FinishRestore(reqID, nil)
		return append([]domain.Event{domain.LogWritten{Log: logName, Kind: domain.LogRestore, Lines: h.logLines("Restoring", 4)}}, evs...), nil
	})
}

// syntheticConfig is a valid configuration (as the API would store it)
// over images synthetic image files named as synth names them.
func syntheticConfig(images int, runName string) (domain.RunConfig, error) {
	files := make([]synth.ImageFiles, images)
	for i := range files {
		base := fmt.Sprintf("epoch%02d", i+1)
		files[i] = synth.ImageFiles{Image: base + ".fits", Selavy: base + ".selavy.components.txt", Noise: base + ".noiseMap.fits", Background: base + ".meanMap.fits"}
	}
	c, err := runconfig.Parse([]byte(runconfig.Render(synth.Inputs(files), runName)))
	if err != nil {
		return domain.RunConfig{}, fmt.Errorf("synthetic configuration: %w", err)
	}
	return c.Domain(), nil
}

// syntheticProducts describes products of cfg's images, with digests made
// up from the run, image and job.
func syntheticProducts(run string, cfg domain.RunConfig, job int) domain.Products {
	var p domain.Products
	digest := func(what string) string {
		return artifacts.Digest(fmt.Appendf(nil, "%s/%d/%s", run, job, what))
	}
	for i, img := range cfg.Inputs.Images {
		name := "measurements/" + img[:len(img)-len(".fits")] + ".parquet"
		p.Artifacts = append(p.Artifacts, domain.Artifact{Name: name, Digest: digest(name), Size: 180_000})
		p.Images = append(p.Images, domain.ImageSummary{
			Name: img, Path: img, DateTime: time.Date(2020, 8, 3+i, 4, 33, 55, 479e6, time.UTC),
			FrequencyMHz: 888, BMajDeg: 15.0 / 3600, BMinDeg: 10.0 / 3600, RADeg: 150, DecDeg: -30, NMeasurements: 1000,
		})
	}
	for _, name := range []string{"images.parquet", "bands.parquet", "skyregions.parquet"} {
		p.Artifacts = append(p.Artifacts, domain.Artifact{Name: name, Digest: digest(name), Size: 6_000})
	}
	n := len(cfg.Inputs.Images)
	p.Figures = domain.Figures{NImages: n, NSelavyMeasurements: 1000 * n}
	return p
}
