package command_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/workers"
)

// runStates lists the test's runs from the event store, standing in for
// the read models the server gives the workers.
type runStates struct {
	svc   *command.Service
	names []string
}

func (s runStates) ListRunStates(ctx context.Context) ([]domain.Run, error) {
	var out []domain.Run
	for _, n := range s.names {
		r, err := s.svc.LoadRun(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// fakeProcess stands in for the pipeline: it stores one small product per
// image, so that backups can be verified and restored for real.
func fakeProcess(arts *artifacts.Store) workers.ProcessFunc {
	return func(ctx context.Context, run string, cfg domain.RunConfig, _ *domain.Products, _ bool, log workers.Logger) (domain.Products, error) {
		var p domain.Products
		for _, img := range cfg.Inputs.Images {
			d, n, err := arts.Put(ctx, strings.NewReader("measurements of "+img))
			if err != nil {
				return domain.Products{}, err
			}
			p.Artifacts = append(p.Artifacts, domain.Artifact{Name: "measurements/" + img + ".parquet", Digest: d, Size: n})
			p.Images = append(p.Images, domain.ImageSummary{Name: img, Path: img})
		}
		p.Figures.NImages = len(p.Images)
		log.Infof("processed %d images", len(p.Images))
		return p, nil
	}
}

// testConfig is a configuration over images img1..imgN; the settings stay
// the same, so going from n to n+1 images is an addition.
func testConfig(n int) domain.RunConfig {
	var in domain.Inputs
	for i := 1; i <= n; i++ {
		in.Images = append(in.Images, fmt.Sprintf("img%d.fits", i))
		in.Selavy = append(in.Selavy, fmt.Sprintf("img%d.selavy.txt", i))
		in.Noise = append(in.Noise, fmt.Sprintf("img%d.noise.fits", i))
	}
	return domain.RunConfig{YAML: fmt.Sprintf("# %d images\n", n), Inputs: in, SettingsDigest: "settings-v1"}
}

// TestConcurrentCommands has 100 goroutines issue restore, processing and
// configuration commands, and deliver the workers' messages, against the
// same three runs on the SQLite store. Every command either succeeds or is
// refused with a domain or concurrency error; afterwards every run's
// history passes the audit, every accepted restore request is in the
// history with exactly one outcome, and no backup is restored twice.
func TestConcurrentCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	arts, err := artifacts.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	svc := command.New(store)
	names := []string{"one", "two", "three"}
	w := &workers.Workers{
		Svc: svc, Process: fakeProcess(arts), Artifacts: arts, Runs: runStates{svc, names},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FlushEvery: 5 * time.Millisecond,
	}
	defer w.Close()

	// Each run starts Completed with a backup: processed over two images,
	// then over three in add mode.
	alice := domain.Actor{Name: "alice"}
	for _, n := range names {
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: n, Config: testConfig(2), Actor: alice}); err != nil {
			t.Fatal(err)
		}
		for _, images := range []int{2, 3} {
			if _, err := svc.UpdateConfig(ctx, n, testConfig(images), alice); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.RequestProcessing(ctx, n, false, false, alice); err != nil {
				t.Fatal(err)
			}
			if err := w.HandleProcessing(ctx, n); err != nil {
				t.Fatal(err)
			}
			w.Wait()
		}
		if r, err := svc.LoadRun(ctx, n); err != nil || !r.RestoreAvailable() {
			t.Fatalf("run %s is not restorable before the test: %+v, %v", n, r, err)
		}
	}

	type tally struct {
		ok, refused int
		restores    []int64 // backup versions of the accepted restore requests
	}
	var (
		mu      sync.Mutex
		tallies = map[string]*tally{}
		wg      sync.WaitGroup
	)
	for _, n := range names {
		tallies[n] = &tally{}
	}
	// Rounds of 100 goroutines let loose together; between rounds the
	// workers finish the jobs the round started, so that later rounds meet
	// runs with new backups.
	const goroutines, rounds = 100, 15
	for round := range rounds {
		start := make(chan struct{})
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), uint64(round)))
				<-start
				run := names[rng.IntN(len(names))]
				var (
					res command.Result
					err error
					op  string
				)
				switch k := rng.IntN(20); {
				case k < 7:
					op = "restore"
					res, err = svc.RequestRestore(ctx, run, rng.IntN(2) == 0, alice)
				case k < 11:
					op = "process"
					res, err = svc.RequestProcessing(ctx, run, false, rng.IntN(10) == 0, alice)
				case k < 15:
					op = "config"
					res, err = svc.UpdateConfig(ctx, run, testConfig(2+rng.IntN(4)), alice)
				case k < 18:
					op = "deliver restore"
					err = w.HandleRestore(ctx, run)
				default:
					op = "deliver processing"
					err = w.HandleProcessing(ctx, run)
				}
				mu.Lock()
				tl := tallies[run]
				switch {
				case err == nil:
					tl.ok++
					if op == "restore" {
						tl.restores = append(tl.restores, res.Run.Restore.BackupVersion)
					}
				case errors.Is(err, domain.ErrRunBusy), errors.Is(err, domain.ErrNotRestorable),
					errors.Is(err, domain.ErrConflict), errors.Is(err, eventstore.ErrConcurrency):
					tl.refused++
				default:
					t.Errorf("%s on run %s: unexpected error %v", op, run, err)
				}
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		w.Wait()
	}

	// Let the workers finish what is pending, as they would after the last
	// message: Recover until no run waits for a worker.
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.Wait()
		if err := w.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		w.Wait()
		states, err := runStates{svc, names}.ListRunStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, r := range states {
			if r.Job != nil || r.Restore != nil || r.Status == domain.StatusQueued || r.Status == domain.StatusRunning || r.Status == domain.StatusRestoring {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs still wait for a worker after 30s", pending)
		}
	}

	totalRestored := 0
	for _, n := range names {
		recs, _, err := svc.History(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if findings := domain.Audit(recs); len(findings) > 0 {
			t.Errorf("run %s: audit findings: %v", n, findings)
		}
		requested := map[string]int64{} // request id -> backup version
		outcomes := map[string]int{}
		restoredBackups := map[int64]int{}
		for _, rec := range recs {
			switch e := rec.Event.(type) {
			case domain.RestoreRequested:
				requested[e.RequestID] = e.BackupVersion
			case domain.RunRestored:
				outcomes[e.RequestID]++
				restoredBackups[e.BackupVersion]++
			case domain.RestoreFailed:
				outcomes[e.RequestID]++
				t.Errorf("run %s: restore %s failed although every backup is whole: %s", n, e.RequestID, e.Reason)
			}
		}
		for id := range requested {
			if outcomes[id] != 1 {
				t.Errorf("run %s: restore request %s has %d outcomes, want 1", n, id, outcomes[id])
			}
		}
		for v, c := range restoredBackups {
			if c != 1 {
				t.Errorf("run %s: backup of version %d restored %d times", n, v, c)
			}
		}
		tl := tallies[n]
		if len(tl.restores) != len(requested) {
			t.Errorf("run %s: %d restore requests were accepted but the history holds %d", n, len(tl.restores), len(requested))
		}
		seen := map[int64]bool{}
		for _, v := range tl.restores {
			if seen[v] {
				t.Errorf("run %s: two restore requests were accepted for the backup of version %d", n, v)
			}
			seen[v] = true
		}
		totalRestored += len(restoredBackups)
		t.Logf("run %s: %d events, %d commands succeeded, %d refused, %d restores", n, len(recs), tl.ok, tl.refused, len(restoredBackups))
	}
	if totalRestored == 0 {
		t.Error("no restore happened: the test exercised nothing")
	}
}
