package command_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/eventstore/sqlite"
)

// BenchmarkLoadRun loads one run whose stream holds events=N events, from
// its newest snapshot plus the events after it. The run is created and
// processed five times (request, start, log, completion with products of 8
// images); the rest of its history is log events, as a long job's log
// flushes make it, so the state is the same whatever N: only the history's
// length varies. lag=100: the newest snapshot is 100 events behind the
// head, about the most that snapshotting every 100 events allows (a run of
// 100 events has no snapshot: all are read); lag=0: a snapshot at the head.
// ns/op should not grow with N.
//
//	go test -run '^$' -bench BenchmarkLoadRun -benchtime 2000x ./command/
func BenchmarkLoadRun(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) eventstore.Store
	}{
		{"sqlite", func(b *testing.B) eventstore.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "events.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"memory", func(*testing.B) eventstore.Store { return memory.New() }},
	}
	for _, be := range backends {
		for _, n := range []int{100, 10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/events=%d", be.name, n), func(b *testing.B) {
				ctx := context.Background()
				svc := command.New(be.open(b))
				buildHistory(b, svc, "long-run", n)
				b.Run("lag=100", func(b *testing.B) { benchLoad(b, svc, "long-run") })
				// One more event, snapshotted: the best case.
				every := svc.SnapshotEvery
				svc.SnapshotEvery = 1
				if _, err := svc.ExecRun(ctx, "long-run", "alice", func(*domain.Run) ([]domain.Event, error) {
					return []domain.Event{logEvent("2024-05-01-12-04-00_log.txt", 0)}, nil
				}); err != nil {
					b.Fatal(err)
				}
				svc.SnapshotEvery = every
				b.Run("lag=0", func(b *testing.B) { benchLoad(b, svc, "long-run") })
			})
		}
	}
}

// benchLoad measures LoadRun of run and reports how far its newest
// snapshot lags and how large it is.
func benchLoad(b *testing.B, svc *command.Service, run string) {
	ctx := context.Background()
	head, err := svc.Store.StreamVersion(ctx, command.RunStream(run))
	if err != nil {
		b.Fatal(err)
	}
	snap, err := svc.Store.LoadSnapshot(ctx, command.RunStream(run))
	if err != nil && !errors.Is(err, eventstore.ErrNotFound) {
		b.Fatal(err)
	}
	// A service without a command cache, so that every load reads the
	// snapshot and the events after it (the building service's cache
	// would hand its copy out).
	loader := command.New(svc.Store)
	loader.CachedRuns = -1
	for b.Loop() {
		r, err := loader.LoadRun(ctx, run)
		if err != nil {
			b.Fatal(err)
		}
		if r.Version != head {
			b.Fatalf("loaded version %d, want %d", r.Version, head)
		}
	}
	b.ReportMetric(float64(len(snap.Data)), "snapshot-bytes")
	b.ReportMetric(float64(head-snap.Version), "events-after-snapshot")
}

// buildHistory appends n events to run through the service's commands, so
// that snapshots are taken as in production.
func buildHistory(b *testing.B, svc *command.Service, run string, n int) {
	b.Helper()
	ctx := context.Background()
	alice := domain.Actor{Name: "alice"}
	cfg := benchConfig(8)
	var version int64
	exec := func(decide func(r *domain.Run) ([]domain.Event, error)) {
		b.Helper()
		res, err := svc.ExecRun(ctx, run, alice.Name, decide)
		if err != nil {
			b.Fatal(err)
		}
		version = res.Run.Version
	}
	exec(func(r *domain.Run) ([]domain.Event, error) {
		return r.Create(domain.CreateRun{Name: run, Config: cfg, Actor: alice})
	})
	var lastLog string
	for job := range 5 {
		jobID := fmt.Sprintf("job-%d", job)
		lastLog = fmt.Sprintf("2024-05-01-12-%02d-00_log.txt", job)
		exec(func(r *domain.Run) ([]domain.Event, error) {
			return r.RequestProcessing(domain.RequestProcessing{JobID: jobID, FullRerun: true, Log: lastLog, Actor: alice})
		})
		exec(func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(jobID), nil })
		exec(func(*domain.Run) ([]domain.Event, error) { return []domain.Event{logEvent(lastLog, job)}, nil })
		products := benchProducts(cfg)
		exec(func(r *domain.Run) ([]domain.Event, error) { return r.FinishProcessing(jobID, &products, nil), nil })
	}
	// The rest of the history: the last job's log, flushed in bulk, then
	// 100 single flushes after the last snapshot.
	const tail = 100
	for version < int64(n-tail) {
		count := min(1000, int64(n-tail)-version)
		exec(func(*domain.Run) ([]domain.Event, error) {
			evs := make([]domain.Event, count)
			for i := range evs {
				evs[i] = logEvent(lastLog, int(version)+i)
			}
			return evs, nil
		})
	}
	every := svc.SnapshotEvery
	svc.SnapshotEvery = 0
	defer func() { svc.SnapshotEvery = every }()
	for version < int64(n) {
		exec(func(*domain.Run) ([]domain.Event, error) { return []domain.Event{logEvent(lastLog, int(version))}, nil })
	}
}

// logEvent is one flush of a job's log: a few lines, as a second of a job
// writes.
func logEvent(log string, i int) domain.Event {
	lines := make([]string, 3)
	for j := range lines {
		lines[j] = fmt.Sprintf("2024-05-01 12:%02d:%02d,%03d INFO Measured image %d of 8: %d components kept", i/60%60, i%60, j, i%8+1, 1000+i)
	}
	return domain.LogWritten{Log: log, Kind: domain.LogRun, Lines: lines}
}

// benchConfig is a configuration over images synthetic image names.
func benchConfig(images int) domain.RunConfig {
	var in domain.Inputs
	var yaml strings.Builder
	yaml.WriteString("inputs:\n  image:\n")
	for i := range images {
		base := fmt.Sprintf("epoch%02d", i+1)
		in.Images = append(in.Images, base+".fits")
		in.Selavy = append(in.Selavy, base+".selavy.components.txt")
		in.Noise = append(in.Noise, base+".noiseMap.fits")
		in.Background = append(in.Background, base+".meanMap.fits")
		fmt.Fprintf(&yaml, "  - %s.fits\n", base)
	}
	return domain.RunConfig{YAML: yaml.String(), Inputs: in, SettingsDigest: strings.Repeat("ab", 32)}
}

// benchProducts are products of the shape processing gives: per image a
// measurements file, plus the run-wide tables.
func benchProducts(cfg domain.RunConfig) domain.Products {
	var p domain.Products
	for i, img := range cfg.Inputs.Images {
		stem := strings.TrimSuffix(img, ".fits")
		p.Artifacts = append(p.Artifacts, domain.Artifact{Name: "measurements/" + stem + ".parquet", Digest: fmt.Sprintf("sha256:%064x", i+1), Size: 1 << 20})
		p.Images = append(p.Images, domain.ImageSummary{
			Name: img, Path: img, DateTime: time.Date(2020, 8, 3+i, 4, 33, 55, 0, time.UTC),
			FrequencyMHz: 888, BMajDeg: 15.0 / 3600, BMinDeg: 10.0 / 3600, RADeg: 150, DecDeg: -30, NMeasurements: 1000,
		})
	}
	for i, name := range []string{"images.parquet", "bands.parquet", "skyregions.parquet", "sources.parquet", "associations.parquet", "relations.parquet"} {
		p.Artifacts = append(p.Artifacts, domain.Artifact{Name: name, Digest: fmt.Sprintf("sha256:%064x", 100+i), Size: 64 << 10})
	}
	p.Figures = domain.Figures{NImages: len(cfg.Inputs.Images), NSources: 1000, NSelavyMeasurements: 8000}
	return p
}
