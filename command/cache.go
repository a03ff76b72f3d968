package command

import (
	"container/list"
	"sync"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// DefaultCacheBytes bounds the run states a Service keeps for its commands
// unless told otherwise. A state is kept in its binary form
// (statecodec.EncodeState): a run with products and a backup takes about
// 10 KB, so the default holds some 25,000 such runs.
const DefaultCacheBytes = 256 << 20

// runCache keeps the states of runs, so that a command need not read and
// decode a run's snapshot and events. An entry is the state the store
// held at the entry's version when this process last wrote or read it (or
// the read models showed it, which is the same state: the projector
// applies the same events). Another process may have appended since: then
// the command's append fails its expected version and the command is
// decided again on a fresh load, so a stale entry costs a retry, never a
// wrong outcome.
//
// States are kept encoded: without pointers, a large cache costs the
// garbage collector nothing to scan, and every get hands out a fresh copy.
// The least recently used entries go first when the cache holds more than
// maxBytes of states (or more than maxRuns runs, if set).
type runCache struct {
	mu       sync.Mutex
	maxBytes int
	maxRuns  int // 0: no bound on the count
	bytes    int
	order    *list.List // front: most recently used; values are *cacheEntry
	byRun    map[string]*list.Element
	// pending are the states commands have offered while their appends
	// are under way (see propose), by run.
	pending map[string]proposal
}

// proposal is the state a command's append will leave a run in, if it is
// stored: the state after event lastID, at version.
type proposal struct {
	version int64
	lastID  string
	state   []byte
}

type cacheEntry struct {
	name    string
	version int64
	state   []byte // statecodec.EncodeState
	tail    int    // bytes of the run's events since its last snapshot
}

func newRunCache(maxBytes, maxRuns int) *runCache {
	return &runCache{maxBytes: maxBytes, maxRuns: maxRuns, order: list.New(), byRun: map[string]*list.Element{}, pending: map[string]proposal{}}
}

// decode returns the state an entry held (its bytes are never changed,
// so this runs without the lock). A state that cannot be decoded (which
// EncodeState's output always can) drops the run's entry: the next
// command loads the run.
func (c *runCache) decode(name string, state []byte) (domain.Run, bool) {
	var r domain.Run
	if err := statecodec.DecodeSharedState(state, &r); err != nil {
		c.forget(name)
		return domain.Run{}, false
	}
	return r, true
}

// get returns the cached state of run name, and the bytes of its events
// since its last snapshot.
func (c *runCache) get(name string) (domain.Run, int, bool) {
	c.mu.Lock()
	el, ok := c.byRun[name]
	if !ok {
		c.mu.Unlock()
		return domain.Run{}, 0, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	state, tail := e.state, e.tail
	c.mu.Unlock()
	r, ok := c.decode(name, state)
	return r, tail, ok
}

// put records r as the state of run name, unless a newer one is there
// already. A state that cannot be encoded is not kept (and an older entry
// is dropped).
func (c *runCache) put(name string, r domain.Run, tail int) {
	state, err := statecodec.EncodeState(r)
	if err != nil {
		state = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putStateLocked(name, r.Version, state, tail)
}

// putStateLocked is put of a state already encoded; nil (a state that
// could not be encoded) drops the run's entry.
func (c *runCache) putStateLocked(name string, version int64, state []byte, tail int) {
	if state == nil {
		c.forgetLocked(name)
		return
	}
	if el, ok := c.byRun[name]; ok {
		e := el.Value.(*cacheEntry)
		if e.version <= version {
			c.bytes += len(state) - len(e.state)
			e.version, e.state, e.tail = version, state, tail
		}
		c.order.MoveToFront(el)
	} else {
		c.byRun[name] = c.order.PushFront(&cacheEntry{name: name, version: version, state: state, tail: tail})
		c.bytes += len(state)
	}
	for c.order.Len() > 1 && (c.bytes > c.maxBytes || c.maxRuns > 0 && c.order.Len() > c.maxRuns) {
		c.remove(c.order.Back())
	}
}

// warm records r as the state of run name if the cache has no entry for
// the run and room for r without dropping another; it reports whether the
// cache had room. Warming goes in at the back: a command's runs stay
// ahead of it.
func (c *runCache) warm(name string, r domain.Run) bool {
	state, err := statecodec.EncodeState(r)
	if err != nil {
		return true // this one cannot be kept; others may
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+len(state) > c.maxBytes || c.maxRuns > 0 && c.order.Len() >= c.maxRuns {
		return false
	}
	if _, ok := c.byRun[name]; !ok {
		c.byRun[name] = c.order.PushBack(&cacheEntry{name: name, version: r.Version, state: state})
		c.bytes += len(state)
	}
	return true
}

func (c *runCache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.order.Remove(el)
	delete(c.byRun, e.name)
	c.bytes -= len(e.state)
}

// forget drops run name's entry.
func (c *runCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(name)
}

func (c *runCache) forgetLocked(name string) {
	if el, ok := c.byRun[name]; ok {
		c.remove(el)
	}
}

// size returns the entries and the bytes of their states.
func (c *runCache) size() (runs, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}

// getVersion returns run name's cached state if it is at version.
func (c *runCache) getVersion(name string, version int64) (domain.Run, bool) {
	state, ok := c.getStateVersion(name, version)
	if !ok {
		return domain.Run{}, false
	}
	return c.decode(name, state)
}

// getStateVersion returns run name's cached state, encoded, if it is at
// version. The bytes are never changed: they may be kept and shared.
func (c *runCache) getStateVersion(name string, version int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateVersionLocked(name, version)
}

func (c *runCache) stateVersionLocked(name string, version int64) ([]byte, bool) {
	el, ok := c.byRun[name]
	if !ok || el.Value.(*cacheEntry).version != version {
		return nil, false
	}
	return el.Value.(*cacheEntry).state, true
}

// propose offers, while a command's append is under way, the state its
// events will leave run name in: the state after event lastID, at
// version. Only a reader that has seen event lastID stored at that
// version may take it (getHint); a lost race stores another event
// there, with another ID. The command withdraws the offer once its append
// returns, and caches the state if the append succeeded. Of two commands
// on one run at once, the later offer stands.
func (c *runCache) propose(name string, version int64, lastID string, state []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[name] = proposal{version: version, lastID: lastID, state: state}
}

// withdraw drops run name's offer if it is still the one of event lastID.
func (c *runCache) withdraw(name, lastID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[name]; ok && p.lastID == lastID {
		delete(c.pending, name)
	}
}

// settle ends the offer of event lastID's state after its append
// succeeded: the state (nil if it could not be encoded) becomes run
// name's entry at version, in one step, so that a reader never finds
// neither.
func (c *runCache) settle(name string, version int64, lastID string, state []byte, tail int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[name]; ok && p.lastID == lastID {
		delete(c.pending, name)
	}
	c.putStateLocked(name, version, state, tail)
}

// getHint returns the state of run name after its event eventID, stored
// at version: the cached state if it is at version (the cache holds only
// stored states), else an offered one for exactly that event.
func (c *runCache) getHint(name string, version int64, eventID string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state, ok := c.stateVersionLocked(name, version); ok {
		return state, true
	}
	if p, ok := c.pending[name]; ok && p.version == version && p.lastID == eventID {
		return p.state, true
	}
	return nil, false
}

// CachedState returns the state of run name after its event eventID,
// stored at version, in the binary form of statecodec.EncodeState, if this
// service has it in memory: having just appended that event, it usually
// has, even before the append has returned (see runCache.propose). The
// state is the one Apply gives on the stored events: the cache holds only
// states the store acknowledged at their version, and an offered state is
// given only for the very event it follows. The bytes are never changed,
// and may be kept: the read models' projector takes them instead of
// reading and decoding the run's read model.
func (s *Service) CachedState(name string, version int64, eventID string) ([]byte, bool) {
	cache := s.runCache()
	if cache == nil {
		return nil, false
	}
	return cache.getHint(name, version, eventID)
}

// WarmCache offers the service the states of runs (most wanted first, as
// the read models show them) to keep for its commands, until its cache is
// full or the states run out; it returns how many it took in. A state must
// be the run's state at its version, which a projected state is. A
// server warms its cache this way when it starts, so that the first
// command on each run does not wait for the run's snapshot and events to
// be read and decoded.
func (s *Service) WarmCache(states func(yield func(domain.Run) bool)) int {
	cache := s.runCache()
	if cache == nil {
		return 0
	}
	n := 0
	for r := range states {
		if r.Name == "" || r.Version <= 0 {
			continue
		}
		if !cache.warm(r.Name, r) {
			break
		}
		n++
	}
	return n
}

// CacheSize returns how many run states the service keeps for its
// commands, and their bytes.
func (s *Service) CacheSize() (runs, bytes int) {
	cache := s.runCache()
	if cache == nil {
		return 0, 0
	}
	return cache.size()
}
