package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/statecodec"
)

// RunStream and UserStream name the aggregates' streams.
func RunStream(name string) string  { return "run-" + name }
func UserStream(name string) string { return "user-" + name }

// Service runs commands against the event store.
type Service struct {
	Store eventstore.Store
	// Now and NewID are replaceable for tests.
	Now   func() time.Time
	NewID func() string
	// SnapshotEvery saves a snapshot when a run's version crosses a multiple
	// of it (default 100).
	SnapshotEvery int64
	// SnapshotBytes also saves one when the events stored since the last
	// snapshot reach this many bytes (default DefaultSnapshotBytes;
	// negative: never): a run's events carry its configuration and products
	// again and again, so loading a few of them can cost more than loading
	// a snapshot.
	SnapshotBytes int
	// Retries is how many times a command is re-decided after losing an
	// expected-version race (default 5).
	Retries int
	// CacheBytes bounds the run states kept in memory for commands, by
	// the size of their encoded form (default DefaultCacheBytes). Set it
	// before the first command.
	CacheBytes int
	// CachedRuns also bounds them by count (default: no bound; negative:
	// none kept, every command loads the run from the store). Set it
	// before the first command.
	CachedRuns int

	cacheOnce sync.Once
	cache     *runCache // nil when CachedRuns < 0
}

// New returns a Service with defaults.
func New(store eventstore.Store) *Service {
	return &Service{
		Store:         store,
		Now:           func() time.Time { return time.Now().UTC() },
		NewID:         newEventID,
		SnapshotEvery: 100,
		SnapshotBytes: DefaultSnapshotBytes,
		Retries:       5,
	}
}

// DefaultSnapshotBytes is Service.SnapshotBytes unless set.
const DefaultSnapshotBytes = 16 << 10

// Result tells what a command appended.
type Result struct {
	Run      domain.Run // state after the command
	Events   []domain.Event
	Position int64 // global position of the last appended event (0 if none)

	tail int // bytes of the run's events since its last snapshot
}

// ExecRun loads the run, calls decide, and appends its events at the
// version it loaded. When another writer got there first, the command is
// decided again on the new state, so the loser sees the winner's effects
// (e.g. a second restore finds the run Restoring and is refused).
//
// The state comes from the command cache when the run is there. The store's
// expected-version check makes a stale entry harmless: the append fails and
// the command is decided again on a fresh load. A refusal or a no-op
// decided on a cached state is likewise confirmed on a fresh load before it
// is reported, since another process may have moved the run since.
func (s *Service) ExecRun(ctx context.Context, name, actor string, decide func(r *domain.Run) ([]domain.Event, error)) (Result, error) {
	retries := s.Retries
	if retries <= 0 {
		retries = 5
	}
	cache := s.runCache()
	useCache := cache != nil
	for attempt := 0; ; {
		r, tail, cached, err := s.commandState(ctx, name, useCache)
		useCache = false
		if err != nil {
			return Result{}, err
		}
		if r.Name == "" {
			r.Name = name // so that errors name the run
		}
		evs, err := decide(&r)
		if cached && (err != nil || len(evs) == 0) {
			continue // confirm on the store's state
		}
		if err != nil {
			return Result{Run: r}, err
		}
		if len(evs) == 0 {
			return Result{Run: r}, nil
		}
		res, err := s.appendRun(ctx, name, actor, r, tail, evs)
		if err != nil {
			if cache != nil {
				// A lost race, or a failure after which the run's version
				// is unknown: the entry can no longer be trusted.
				cache.forget(name)
			}
			if errors.Is(err, eventstore.ErrConcurrency) {
				if cached {
					continue // a stale entry, not a lost race
				}
				if attempt < retries {
					attempt++
					continue
				}
			}
			return res, err
		}
		return res, nil
	}
}

// commandState returns the run's state for a command, and the bytes of
// its events since its last snapshot: from the cache when fromCache and it
// is there, else loaded from the store (and cached).
func (s *Service) commandState(ctx context.Context, name string, fromCache bool) (r domain.Run, tail int, cached bool, err error) {
	cache := s.runCache()
	if fromCache && cache != nil {
		if r, tail, ok := cache.get(name); ok {
			return r, tail, true, nil
		}
	}
	r, tail, err = s.loadRun(ctx, name)
	if err != nil {
		return domain.Run{}, 0, false, err
	}
	if cache != nil && r.Version > 0 {
		cache.put(name, r, tail)
	}
	return r, tail, false, nil
}

func (s *Service) runCache() *runCache {
	s.cacheOnce.Do(func() {
		switch {
		case s.CachedRuns < 0:
		default:
			s.cache = newRunCache(cmp.Or(s.CacheBytes, DefaultCacheBytes), s.CachedRuns)
		}
	})
	return s.cache
}

// appendRun appends evs to run name at r's version; tail is the bytes of
// the run's events since its last snapshot, before evs.
//
// The state after evs is worked out and encoded before the append, and
// offered to the projector while the append is under way (see
// runCache.propose): a projector woken by the commit can take it before
// this command has had the time to cache it. Once stored, it is cached.
func (s *Service) appendRun(ctx context.Context, name, actor string, r domain.Run, tail int, evs []domain.Event) (Result, error) {
	// In UTC without a monotonic reading: the state is cached as the store
	// gives it back.
	now := s.Now().Round(0).UTC()
	data := make([]eventstore.EventData, 0, len(evs))
	for _, e := range evs {
		typ, body, err := eventjson.Encode(e)
		if err != nil {
			return Result{}, err
		}
		data = append(data, eventstore.EventData{ID: s.NewID(), Type: typ, Data: body, Actor: actor, Time: now})
		tail += len(body)
	}
	expected := r.Version
	for i, e := range evs {
		r.Apply(domain.Recorded{Version: expected + int64(i) + 1, Time: now, Actor: actor, Event: e})
	}
	// A state that cannot be encoded is neither offered, cached nor
	// snapshotted; the command goes ahead.
	state, encErr := statecodec.EncodeState(r)
	cache := s.runCache()
	lastID := data[len(data)-1].ID
	if cache != nil && encErr == nil {
		cache.propose(name, r.Version, lastID, state)
	}
	version, pos, err := s.Store.Append(ctx, RunStream(name), expected, data...)
	if err != nil {
		if cache != nil {
			cache.withdraw(name, lastID)
		}
		return Result{}, fmt.Errorf("append to run %s: %w", name, err)
	}
	if encErr == nil && (s.SnapshotEvery > 0 && expected/s.SnapshotEvery != version/s.SnapshotEvery ||
		s.SnapshotBytes > 0 && tail >= s.SnapshotBytes) {
		// A snapshot is a cache: failing to save one only costs speed.
		if s.Store.SaveSnapshot(ctx, eventstore.Snapshot{Stream: RunStream(name), Version: version, Data: state}) == nil {
			tail = 0
		}
	}
	if encErr != nil {
		state = nil
	}
	if cache != nil {
		cache.settle(name, version, lastID, state, tail)
	}
	return Result{Run: r, Events: evs, Position: pos, tail: tail}, nil
}

// newEventID returns a UUIDv7: time-ordered, so new ids land at the end of
// the store's id index instead of dirtying a random page of it per append.
func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
