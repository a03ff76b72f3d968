package app

import (
	"container/list"
	"sync"

	"github.com/piperun/piperun/domain"
)

// DefaultCachedRuns is how many runs' states a Service keeps for its
// commands unless told otherwise: the recently active runs. A run with
// products and a backup takes some tens of kilobytes.
const DefaultCachedRuns = 1024

// runCache keeps the states of recently commanded runs, so that a command
// need not read and decode a run's events. An entry is the state the store
// held at entry.Version when this process last wrote or read it. Another
// process may have appended since: then the command's append fails its
// expected version and the command is decided again on a fresh load, so a
// stale entry costs a retry, never a wrong outcome. States go in and out as
// deep copies.
type runCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *cacheEntry
	byRun map[string]*list.Element
}

type cacheEntry struct {
	name string
	run  domain.Run
	tail int // bytes of the run's events since its last snapshot
}

func newRunCache(max int) *runCache {
	return &runCache{max: max, order: list.New(), byRun: map[string]*list.Element{}}
}

// get returns a copy of the cached state of run name, and the bytes of its
// events since its last snapshot.
func (c *runCache) get(name string) (domain.Run, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byRun[name]
	if !ok {
		return domain.Run{}, 0, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	return e.run.Clone(), e.tail, true
}

// put records a copy of r as the state of run name, unless a newer one is
// there already.
func (c *runCache) put(name string, r domain.Run, tail int) {
	r = r.Clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byRun[name]; ok {
		e := el.Value.(*cacheEntry)
		if e.run.Version <= r.Version {
			e.run, e.tail = r, tail
		}
		c.order.MoveToFront(el)
		return
	}
	c.byRun[name] = c.order.PushFront(&cacheEntry{name: name, run: r, tail: tail})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byRun, oldest.Value.(*cacheEntry).name)
	}
}

// forget drops run name's entry.
func (c *runCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byRun[name]; ok {
		c.order.Remove(el)
		delete(c.byRun, name)
	}
}

func (c *runCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// getVersion returns a copy of run name's cached state if it is at version.
func (c *runCache) getVersion(name string, version int64) (domain.Run, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byRun[name]
	if !ok || el.Value.(*cacheEntry).run.Version != version {
		return domain.Run{}, false
	}
	return el.Value.(*cacheEntry).run.Clone(), true
}

// CachedRun returns a copy of the state of run name after its event
// version, if this service has it in memory: having just appended that
// event, it usually has. The read models' projector takes it instead of
// reading and decoding the run's read model. The state is the one Apply
// gives on the stored events, since the cache holds only states the
// store acknowledged at their version.
func (s *Service) CachedRun(name string, version int64) (domain.Run, bool) {
	cache := s.runCache()
	if cache == nil {
		return domain.Run{}, false
	}
	return cache.getVersion(name, version)
}
