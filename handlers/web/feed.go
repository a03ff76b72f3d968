package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/projections"
)

// runChange is a "change" event of the live stream: what changed in the
// run's detail model (projections.RunDetail) since the stream's previous
// "run" or "change" event. Fields holds the changed plain fields under
// their JSON names; a list that changed comes as one splice. Its size
// follows the change, not the run: a new log line or a status change costs
// some bytes whatever the number of images.
type runChange struct {
	Version  int64                        `json:"version"`
	Updated  time.Time                    `json:"updated"`
	Fields   map[string]any               `json:"fields,omitempty"`
	Images   *splice[domain.ImageSummary] `json:"images,omitempty"`
	Products *splice[domain.Artifact]     `json:"products,omitempty"`
	Logs     *splice[projections.LogInfo] `json:"logs,omitempty"`
}

// splice turns a list into its new value: remove Remove items at At and
// put Insert there (JavaScript's Array.prototype.splice).
type splice[T any] struct {
	At     int `json:"at"`
	Remove int `json:"remove"`
	Insert []T `json:"insert"`
}

// diffList returns the splice from old to new, or nil if they are equal:
// the items both share at the front and at the back are kept.
func diffList[T any](old, new []T, eq func(a, b T) bool) *splice[T] {
	p := 0
	for p < len(old) && p < len(new) && eq(old[p], new[p]) {
		p++
	}
	s := 0
	for s < len(old)-p && s < len(new)-p && eq(old[len(old)-1-s], new[len(new)-1-s]) {
		s++
	}
	if p == len(old) && p == len(new) {
		return nil
	}
	return &splice[T]{At: p, Remove: len(old) - p - s, Insert: append([]T{}, new[p:len(new)-s]...)}
}

func sameImage(a, b domain.ImageSummary) bool {
	return a.Name == b.Name && a.Path == b.Path && a.Epoch == b.Epoch && a.DateTime.Equal(b.DateTime) &&
		a.FrequencyMHz == b.FrequencyMHz && a.BMajDeg == b.BMajDeg && a.BMinDeg == b.BMinDeg && a.BPADeg == b.BPADeg &&
		a.RADeg == b.RADeg && a.DecDeg == b.DecDeg && a.NMeasurements == b.NMeasurements
}

func sameArtifact(a, b domain.Artifact) bool { return a == b }

func sameLog(a, b projections.LogInfo) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.Created.Equal(b.Created)
}

// diffRun returns the change from old to new, or false if the stream need
// not say anything.
func diffRun(old, new projections.RunDetail) (runChange, bool) {
	c := runChange{Version: new.Version, Updated: new.Updated, Fields: map[string]any{}}
	set := func(name string, changed bool, v any) {
		if changed {
			c.Fields[name] = v
		}
	}
	set("description", old.Description != new.Description, new.Description)
	set("owner", old.Owner != new.Owner, new.Owner)
	set("status", old.Status != new.Status, new.Status)
	set("n_images", old.NImages != new.NImages, new.NImages)
	set("n_sources", old.NSources != new.NSources, new.NSources)
	set("n_selavy_measurements", old.NSelavyMeasurements != new.NSelavyMeasurements, new.NSelavyMeasurements)
	set("n_forced_measurements", old.NForcedMeasurements != new.NForcedMeasurements, new.NForcedMeasurements)
	set("n_new_sources", old.NNewSources != new.NNewSources, new.NNewSources)
	set("n_measurement_pairs", old.NMeasurementPairs != new.NMeasurementPairs, new.NMeasurementPairs)
	set("config", old.Config != new.Config, new.Config)
	set("restore_available", old.RestoreAvailable != new.RestoreAvailable, new.RestoreAvailable)
	set("mode", old.Mode != new.Mode, new.Mode)
	set("created", !old.Created.Equal(new.Created), new.Created)
	c.Images = diffList(old.Images, new.Images, sameImage)
	c.Products = diffList(old.Products, new.Products, sameArtifact)
	c.Logs = diffList(old.Logs, new.Logs, sameLog)
	if len(c.Fields) == 0 {
		c.Fields = nil
	}
	changed := old.Version != new.Version || !old.Updated.Equal(new.Updated) ||
		c.Fields != nil || c.Images != nil || c.Products != nil || c.Logs != nil
	return c, changed
}

// frame encodes one Server-Sent Event.
func frame(event string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", event, err)
	}
	out := make([]byte, 0, len(b)+len(event)+16)
	out = append(out, "event: "...)
	out = append(out, event...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...), nil
}

// followerBuffer is how many events a stream may fall behind its run's
// feed before it is sent the whole run again instead.
const followerBuffer = 32

// errLagged ends a follower that fell behind its feed.
var errLagged = errors.New("live stream fell behind")

// feeds are the runs followed by live streams, one feed per run however
// many streams follow it: a change of a run is read, compared and encoded
// once, and each stream is sent only its encoded difference.
type feeds struct {
	read      *projections.Store
	heartbeat time.Duration
	log       *slog.Logger

	mu    sync.Mutex
	byRun map[string]*feed
}

// feed follows one run for its streams.
type feed struct {
	name  string
	ready chan struct{} // closed once err or last is set
	err   error
	ctx   context.Context
	stop  context.CancelFunc
	refs  int // streams holding the feed (under feeds.mu)

	mu        sync.Mutex
	last      projections.RunDetail
	full      []byte // the "run" event of last, encoded on demand
	followers map[*follower]struct{}
	gone      []byte // the "gone" event once the run is deleted
}

// follower is one stream's place in a feed: events arrive on ch, which
// the feed closes when the run is gone or the stream fell behind (end).
type follower struct {
	ch  chan []byte
	end error
}

// join returns the feed of a run, started if no stream followed it, for
// release when the stream ends. It fails as reading the run does.
func (fs *feeds) join(ctx context.Context, name string) (*feed, error) {
	fs.mu.Lock()
	f := fs.byRun[name]
	creator := f == nil
	if creator {
		fctx, stop := context.WithCancel(context.Background())
		f = &feed{name: name, ready: make(chan struct{}), ctx: fctx, stop: stop, followers: map[*follower]struct{}{}}
		fs.byRun[name] = f
	}
	f.refs++
	fs.mu.Unlock()
	if creator {
		go fs.run(f)
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		fs.release(f)
		return nil, ctx.Err()
	}
	if f.err != nil {
		fs.release(f)
		return nil, f.err
	}
	return f, nil
}

// release gives back a stream's hold on f; the last stops it.
func (fs *feeds) release(f *feed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.refs--
	if f.refs > 0 {
		return
	}
	if fs.byRun[f.name] == f {
		delete(fs.byRun, f.name)
	}
	f.stop()
}

// run reads the run at once, then again on each of its changes (and each
// heartbeat, since change notifications may be dropped), and passes the
// differences on.
func (fs *feeds) run(f *feed) {
	// Subscribe before the first read, so that no change falls between.
	changes, cancel := fs.read.Subscribe()
	defer cancel()
	d, err := fs.read.GetRun(f.ctx, f.name)
	if err != nil {
		f.err = err
		fs.mu.Lock()
		if fs.byRun[f.name] == f {
			delete(fs.byRun, f.name)
		}
		fs.mu.Unlock()
		close(f.ready)
		return
	}
	f.last = d
	close(f.ready)
	tick := time.NewTicker(fs.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			mine := c.Run == f.name
			// Take what else is queued, so that a burst costs one read.
			for drained := false; !drained; {
				select {
				case c, ok := <-changes:
					if !ok {
						return
					}
					mine = mine || c.Run == f.name
				default:
					drained = true
				}
			}
			if !mine {
				continue
			}
		case <-tick.C:
		}
		d, err := fs.read.GetRun(f.ctx, f.name)
		if errors.Is(err, projections.ErrNotFound) {
			fs.mu.Lock()
			if fs.byRun[f.name] == f {
				delete(fs.byRun, f.name)
			}
			fs.mu.Unlock()
			f.end()
			return
		}
		if err != nil {
			if f.ctx.Err() == nil {
				fs.log.Warn("live stream: read run", "run", f.name, "err", err)
			}
			continue
		}
		if err := f.update(d); err != nil {
			fs.log.Error("live stream: encode a change", "run", f.name, "err", err)
		}
	}
}

// follow adds a follower and returns it with the "run" event of the state
// its first "change" will start from.
func (f *feed) follow() (*follower, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone != nil {
		return nil, f.gone, fmt.Errorf("run %q: %w", f.name, projections.ErrNotFound)
	}
	if f.full == nil {
		b, err := frame("run", f.last)
		if err != nil {
			return nil, nil, err
		}
		f.full = b
	}
	fl := &follower{ch: make(chan []byte, followerBuffer)}
	f.followers[fl] = struct{}{}
	return fl, f.full, nil
}

// unfollow removes a follower.
func (f *feed) unfollow(fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.followers, fl)
}

// update passes on what changed from the last state to d.
func (f *feed) update(d projections.RunDetail) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, changed := diffRun(f.last, d)
	if !changed {
		return nil
	}
	b, err := frame("change", c)
	if err != nil {
		return err
	}
	f.last, f.full = d, nil
	for fl := range f.followers {
		select {
		case fl.ch <- b:
		default:
			fl.end = errLagged
			close(fl.ch)
			delete(f.followers, fl)
		}
	}
	return nil
}

// end tells the followers that the run was deleted.
func (f *feed) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := frame("gone", map[string]string{"name": f.name})
	if err != nil {
		b = []byte("event: gone\ndata: {}\n\n")
	}
	f.gone = b
	for fl := range f.followers {
		fl.end = fmt.Errorf("run %q: %w", f.name, projections.ErrNotFound)
		close(fl.ch)
		delete(f.followers, fl)
	}
}
