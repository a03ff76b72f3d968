package command_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/statecodec"
)

// world is one event store with two services on it, standing in for two
// processes that share a data directory: each has its own command cache,
// so each sees the other's appends only through the store.
type world struct {
	store *countingStore
	a, b  *command.Service
}

func newWorld(cached bool, clock *time.Time) world {
	w := world{store: &countingStore{Store: memory.New()}}
	mk := func(prefix string) *command.Service {
		svc := command.New(w.store)
		svc.Now = func() time.Time { return *clock }
		var n atomic.Int64
		svc.NewID = func() string { return fmt.Sprintf("%s-%d", prefix, n.Add(1)) }
		if !cached {
			svc.CachedRuns = -1
		}
		return svc
	}
	w.a, w.b = mk("a"), mk("b")
	return w
}

// countingStore counts the reads of run streams.
type countingStore struct {
	eventstore.Store
	reads atomic.Int64
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Event, error) {
	s.reads.Add(1)
	return s.Store.ReadStream(ctx, stream, from, limit)
}

// step is one command of the differential test, on the service given.
type step func(ctx context.Context, svc *command.Service) error

var (
	owner = domain.Actor{Name: "alice"}
	root  = domain.Actor{Name: "root", Admin: true}
)

// workerStep does what a worker would do next for the run, whatever that
// is: start or finish its job, finish its restore or its deletion.
func workerStep(ctx context.Context, svc *command.Service) error {
	_, err := svc.ExecRun(ctx, "r", "system:worker", func(r *domain.Run) ([]domain.Event, error) {
		switch {
		case r.Job != nil && !r.Job.Started:
			return r.StartProcessing(r.Job.ID), nil
		case r.Job != nil:
			var p domain.Products
			for _, img := range r.Job.Config.Inputs.Images {
				p.Artifacts = append(p.Artifacts, domain.Artifact{Name: img + ".parquet", Digest: "sha256:" + img, Size: 1})
			}
			return r.FinishProcessing(r.Job.ID, &p, nil), nil
		case r.Restore != nil:
			return r.FinishRestore(r.Restore.ID, nil), nil
		case r.Status == domain.StatusDeleting:
			return r.FinishDeletion(), nil
		}
		return nil, nil
	})
	return err
}

func randomStep(rng *rand.Rand) (string, step) {
	actor := owner
	if rng.IntN(4) == 0 {
		actor = root
	}
	switch k := rng.IntN(10); {
	case k < 3:
		return "worker", workerStep
	case k < 5:
		n := 1 + rng.IntN(4)
		return fmt.Sprintf("config(%d)", n), func(ctx context.Context, svc *command.Service) error {
			_, err := svc.UpdateConfig(ctx, "r", testConfig(n), actor)
			return err
		}
	case k < 7:
		return "process", func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestProcessing(ctx, "r", false, false, actor)
			return err
		}
	case k < 9:
		return "restore", func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestRestore(ctx, "r", false, actor)
			return err
		}
	default:
		if rng.IntN(5) != 0 { // deletion ends the sequence's interest: rarely
			return "worker", workerStep
		}
		return "delete", func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestDeletion(ctx, "r", actor)
			return err
		}
	}
}

// errorKind names the domain error err is, for comparing outcomes.
func errorKind(err error) string {
	if err == nil {
		return "ok"
	}
	for _, k := range []error{domain.ErrInvalid, domain.ErrForbidden, domain.ErrNotFound, domain.ErrExists,
		domain.ErrRunBusy, domain.ErrNotRestorable, domain.ErrConflict, eventstore.ErrConcurrency} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "other: " + err.Error()
}

// TestCacheChangesNoOutcome runs random command sequences, alternating
// between two services on one store, once with command caches and once
// without: every command must have the same outcome and leave the same
// history. Each service's cache goes stale whenever the other one writes,
// so this checks that a stale entry never decides a command.
func TestCacheChangesNoOutcome(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(40) {
		clock := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
		cached, plain := newWorld(true, &clock), newWorld(false, &clock)
		rng := rand.New(rand.NewPCG(seed, 99))
		var trail []string
		for i := range 120 {
			clock = clock.Add(time.Second)
			name, do := randomStep(rng)
			if i == 0 {
				name, do = "create", func(ctx context.Context, svc *command.Service) error {
					_, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner})
					return err
				}
			}
			useB := rng.IntN(2) == 0
			pick := func(w world) *command.Service {
				if useB {
					return w.b
				}
				return w.a
			}
			got, want := errorKind(do(ctx, pick(cached))), errorKind(do(ctx, pick(plain)))
			trail = append(trail, fmt.Sprintf("%s(b=%v)=%s", name, useB, want))
			if got != want {
				t.Fatalf("seed %d step %d: %s with cache: %s, without: %s\ntrail: %v", seed, i, name, got, want, trail)
			}
		}
		hc, _, err := cached.a.History(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		hp, _, err := plain.a.History(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		types := func(h []domain.Recorded) []string {
			var out []string
			for _, r := range h {
				out = append(out, fmt.Sprintf("%d:%T", r.Version, r.Event))
			}
			return out
		}
		if !slices.Equal(types(hc), types(hp)) {
			t.Fatalf("seed %d: histories differ:\ncached %v\nplain  %v", seed, types(hc), types(hp))
		}
		if err := domain.Audit(hc); err != nil {
			t.Fatalf("seed %d: audit: %v", seed, err)
		}
	}
}

// TestCacheSavesLoads checks that the cache is used: commands of one
// service on a run it commanded before read no events.
func TestCacheSavesLoads(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	w := newWorld(true, &clock)
	if _, err := w.a.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner}); err != nil {
		t.Fatal(err)
	}
	before := w.store.reads.Load()
	cmds := []step{
		func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestProcessing(ctx, "r", false, false, owner)
			return err
		},
		workerStep, workerStep,
		func(ctx context.Context, svc *command.Service) error {
			_, err := svc.UpdateConfig(ctx, "r", testConfig(3), owner)
			return err
		},
		func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestProcessing(ctx, "r", false, false, owner)
			return err
		},
		workerStep, workerStep,
		func(ctx context.Context, svc *command.Service) error {
			_, err := svc.RequestRestore(ctx, "r", false, owner)
			return err
		},
		workerStep,
	}
	for i, do := range cmds {
		clock = clock.Add(time.Second)
		if err := do(ctx, w.a); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if n := w.store.reads.Load() - before; n != 0 {
		t.Errorf("%d stream reads for %d commands on a cached run, want 0", n, len(cmds))
	}
	// The cached state is the state the store gives back.
	loaded, err := w.b.LoadRun(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.a.ExecRun(ctx, "r", "x", func(r *domain.Run) ([]domain.Event, error) {
		if r.Version != loaded.Version || r.Status != loaded.Status || !slices.Equal(r.Config.Inputs.Images, loaded.Config.Inputs.Images) {
			return nil, fmt.Errorf("cached state %d/%s differs from the loaded %d/%s", r.Version, r.Status, loaded.Version, loaded.Status)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err, res.Run.Version)
	}
}

// TestCachedStateIsTheLoadedState checks that the state a service hands the
// projector after a command is exactly the one loading the run from the
// store gives, on the SQLite store, even with a clock not in UTC.
func TestCachedStateIsTheLoadedState(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := command.New(store)
	zone := time.FixedZone("AWST", 8*3600)
	svc.Now = func() time.Time { return time.Now().In(zone) }
	svc.SnapshotBytes = 500 // loads start from snapshots too
	res, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() (command.Result, error){
		func() (command.Result, error) { return svc.RequestProcessing(ctx, "r", true, false, owner) },
		func() (command.Result, error) {
			return svc.ExecRun(ctx, "r", "w", func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(r.Job.ID), nil })
		},
		func() (command.Result, error) {
			return svc.ExecRun(ctx, "r", "w", func(r *domain.Run) ([]domain.Event, error) {
				return r.FinishProcessing(r.Job.ID, &domain.Products{Artifacts: []domain.Artifact{{Name: "a", Digest: "sha256:a", Size: 1}}}, nil), nil
			})
		},
		func() (command.Result, error) { return svc.UpdateConfig(ctx, "r", testConfig(3), owner) },
		func() (command.Result, error) { return svc.RequestProcessing(ctx, "r", false, false, owner) },
		func() (command.Result, error) {
			return svc.ExecRun(ctx, "r", "w", func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(r.Job.ID), nil })
		},
		func() (command.Result, error) {
			return svc.ExecRun(ctx, "r", "w", func(r *domain.Run) ([]domain.Event, error) {
				return r.FinishProcessing(r.Job.ID, &domain.Products{Artifacts: []domain.Artifact{{Name: "b", Digest: "sha256:b", Size: 2}}}, nil), nil
			})
		},
		func() (command.Result, error) { return svc.RequestRestore(ctx, "r", false, owner) },
	}
	for i := 0; ; i++ {
		v := res.Run.Version
		state, ok := svc.CachedState("r", v, eventID(t, store, "r", v))
		if !ok {
			t.Fatalf("step %d: no cached state at version %d", i, v)
		}
		var cached domain.Run
		if err := statecodec.DecodeState(state, &cached); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		loaded, err := command.New(store).LoadRun(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cached, loaded) {
			t.Fatalf("step %d: cached state differs from the loaded one:\n%+v\n%+v", i, cached, loaded)
		}
		if snap, err := store.LoadSnapshot(ctx, command.RunStream("r")); i > 1 && (err != nil || snap.Version < 2) {
			t.Fatalf("step %d: no snapshot to load from (%v)", i, err)
		}
		if _, ok := svc.CachedState("r", v-1, eventID(t, store, "r", v-1)); ok {
			t.Fatalf("step %d: a cached state for version %d, which is not the cache's", i, v-1)
		}
		if i == len(steps) {
			break
		}
		if res, err = steps[i](); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// TestSnapshotBySize checks the size policy: a snapshot is saved once the
// events since the last one reach SnapshotBytes, whether the state came
// from the cache or from the store, and loading from it gives the state a
// replay of the whole history gives.
func TestSnapshotBySize(t *testing.T) {
	ctx := context.Background()
	taken := map[bool][]int64{}
	for _, cached := range []bool{true, false} {
		store := memory.New()
		svc := command.New(store)
		svc.SnapshotBytes = 600
		if !cached {
			svc.CachedRuns = -1
		}
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner}); err != nil {
			t.Fatal(err)
		}
		sizes := 0
		snapshots := 0
		for i := range 12 {
			if _, err := svc.UpdateConfig(ctx, "r", testConfig(2+i%3), owner); err != nil {
				t.Fatal(err)
			}
			evs, err := store.ReadStream(ctx, command.RunStream("r"), 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := store.LoadSnapshot(ctx, command.RunStream("r"))
			switch {
			case errors.Is(err, eventstore.ErrNotFound):
			case err != nil:
				t.Fatal(err)
			default:
				// Only the events after the snapshot count, and they are
				// fewer than SnapshotBytes.
				sizes = 0
				for _, ev := range evs[snap.Version:] {
					sizes += len(ev.Data)
				}
				if sizes >= svc.SnapshotBytes {
					t.Fatalf("cached=%v: %d bytes of events after the snapshot at %d, want < %d", cached, sizes, snap.Version, svc.SnapshotBytes)
				}
				if snap.Version == int64(len(evs)) {
					snapshots++
					taken[cached] = append(taken[cached], snap.Version)
				}
			}
			recs, _, err := svc.History(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := command.New(store).LoadRun(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}
			if want := domain.StateAt(recs, int64(len(recs))); !reflect.DeepEqual(loaded.Config, want.Config) || loaded.Version != want.Version {
				t.Fatalf("cached=%v: loaded %d %v, replayed %d %v", cached, loaded.Version, loaded.Config.Inputs.Images, want.Version, want.Config.Inputs.Images)
			}
		}
		if snapshots < 3 {
			t.Errorf("cached=%v: %d snapshots saved for 13 events of ~270 bytes each with SnapshotBytes 600, want several", cached, snapshots)
		}
	}
	if !slices.Equal(taken[true], taken[false]) {
		t.Errorf("snapshots taken at versions %v with the cache, %v without", taken[true], taken[false])
	}
}

// TestLoadRunUsesTheCacheOnlyWhenCurrent checks that LoadRun serves a run
// from the command cache when the store's stream is at the cached version,
// and loads it when another service has appended since.
func TestLoadRunUsesTheCacheOnlyWhenCurrent(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	w := newWorld(true, &clock)
	if _, err := w.a.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner}); err != nil {
		t.Fatal(err)
	}
	before := w.store.reads.Load()
	r, err := w.a.LoadRun(ctx, "r")
	if err != nil || r.Version != 1 {
		t.Fatalf("LoadRun: version %d, %v", r.Version, err)
	}
	if n := w.store.reads.Load() - before; n != 0 {
		t.Errorf("LoadRun of a current cached run read the stream %d times", n)
	}
	if _, err := w.b.RequestProcessing(ctx, "r", false, false, owner); err != nil { // the other process
		t.Fatal(err)
	}
	r, err = w.a.LoadRun(ctx, "r")
	if err != nil || r.Version != 2 || r.Status != domain.StatusQueued {
		t.Fatalf("LoadRun after another service appended: %s at %d, %v; want Queued at 2", r.Status, r.Version, err)
	}
	if n := w.store.reads.Load() - before; n == 0 {
		t.Error("LoadRun served a stale cached state without reading the stream")
	}
}

// eventID returns the ID of run's event at version v.
func eventID(t *testing.T, store eventstore.Store, run string, v int64) string {
	t.Helper()
	evs, err := store.ReadStream(context.Background(), command.RunStream(run), v, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read event %d of run %s: %v (%d events)", v, run, err, len(evs))
	}
	return evs[0].ID
}

// hookStore calls its hooks around each Append of the store it wraps.
type hookStore struct {
	eventstore.Store
	before func(stream string)
	after  func(stream string, version int64, err error)
}

func (h *hookStore) Append(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) (int64, int64, error) {
	if h.before != nil {
		h.before(stream)
	}
	v, p, err := h.Store.Append(ctx, stream, expected, events...)
	if h.after != nil {
		h.after(stream, v, err)
	}
	return v, p, err
}

// TestStateOfferedDuringAppend checks what the projector can take while a
// command's append is under way: once the event is stored and before the
// append has returned, the state after exactly that event (equal to the
// loaded state), and nothing for another event stored at that version, as
// when the command loses a race.
func TestStateOfferedDuringAppend(t *testing.T) {
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	store := &hookStore{Store: inner}
	svc := command.New(store)
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner}); err != nil {
		t.Fatal(err)
	}

	offered := 0
	store.after = func(stream string, v int64, err error) {
		if err != nil {
			t.Errorf("append: %v", err)
			return
		}
		id := eventID(t, inner, "r", v)
		state, ok := svc.CachedState("r", v, id)
		if !ok {
			t.Errorf("no state offered for the stored event %d while its append returns", v)
			return
		}
		offered++
		var got domain.Run
		if err := statecodec.DecodeState(state, &got); err != nil {
			t.Fatal(err)
		}
		want, err := command.New(inner).LoadRun(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("offered state differs from the loaded one:\n%+v\n%+v", got, want)
		}
		if _, ok := svc.CachedState("r", v, id+"x"); ok {
			t.Error("a state offered for another event's ID")
		}
	}
	if _, err := svc.UpdateConfig(ctx, "r", testConfig(3), owner); err != nil {
		t.Fatal(err)
	}
	if offered != 1 {
		t.Fatalf("checked %d offers, want 1", offered)
	}

	// A rival stores its event first: the command's offer, for its own
	// event, must not be given for the rival's.
	rival := command.New(inner)
	var rivalV int64
	store.before = func(string) {
		store.before = nil
		res, err := rival.UpdateConfig(ctx, "r", testConfig(4), owner)
		if err != nil {
			t.Fatal(err)
		}
		rivalV = res.Run.Version
	}
	store.after = func(stream string, v int64, err error) {
		if err == nil {
			return // the retry, decided again on the rival's state
		}
		store.after = nil
		if _, ok := svc.CachedState("r", rivalV, eventID(t, inner, "r", rivalV)); ok {
			t.Error("the losing command's state was given for the rival's event")
		}
	}
	if _, err := svc.UpdateConfig(ctx, "r", testConfig(2), owner); err != nil {
		t.Fatal(err)
	}
	if rivalV == 0 || store.after != nil {
		t.Fatal("the race did not happen")
	}
}
