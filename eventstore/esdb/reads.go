// Reading events: a stream, a stream's version, the global log and its head.

package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/piperun/piperun/eventstore"
)

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Event, error) {
	count := uint64(math.MaxInt64)
	if limit > 0 {
		count = uint64(limit)
	}
	var out []eventstore.Event
	err := s.call(ctx, fmt.Sprintf("read stream %q", stream), func(c *esdb.Client) (err error) {
		out, err = readStream(ctx, c, stream, readFrom(from), count)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readStream reads up to count events of stream forwards from start. A
// missing stream is empty: the client's Recv reports it as
// ErrorCodeResourceNotFound.
func readStream(ctx context.Context, c *esdb.Client, stream string, start esdb.StreamPosition, count uint64) ([]eventstore.Event, error) {
	rs, err := c.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: start}, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []eventstore.Event{}
	for {
		ev, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case isNotFound(err):
			return []eventstore.Event{}, nil
		case err != nil:
			return nil, err
		}
		e, err := toEvent(ev.OriginalEvent())
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// lastOf reads the last event of stream, or nil when the stream is missing
// or empty.
func lastOf(ctx context.Context, c *esdb.Client, stream string) (*esdb.RecordedEvent, error) {
	rs, err := c.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF), isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return ev.OriginalEvent(), nil
}

// StreamVersion implements eventstore.Store: the revision of the stream's
// last event, plus one.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	var v int64
	err := s.call(ctx, fmt.Sprintf("version of stream %q", stream), func(c *esdb.Client) error {
		last, err := lastOf(ctx, c, stream)
		if err == nil && last != nil {
			v = versionOf(last.EventNumber)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// ReadAll implements eventstore.Store by reading $all forwards and keeping
// the events of the global log (see inGlobalLog). v4.2.0 cannot filter a
// read of $all on the server (only subscriptions), so the filter runs here,
// and the read goes on past pages of filtered-out events until it has limit
// events or reaches the end of $all.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
	if limit <= 0 {
		limit = defaultReadAllLimit
	}
	var out []eventstore.Event
	err := s.call(ctx, fmt.Sprintf("read global log after %d", after), func(c *esdb.Client) (err error) {
		out, err = s.readAll(ctx, c, after, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) readAll(ctx context.Context, c *esdb.Client, after int64, limit int) ([]eventstore.Event, error) {
	from, cursor := cursorAfter(after)
	out := []eventstore.Event{}
	for len(out) < limit {
		// One more than needed: a read from a position includes the event
		// at that position, which the cursor skips.
		page := uint64(limit-len(out)) + 1
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: from}, page)
		if err != nil {
			return nil, err
		}
		var n uint64
		var last esdb.Position
		for len(out) < limit {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, err
			}
			n++
			r := ev.OriginalEvent()
			last = r.Position
			if !beyond(r.Position, cursor) || !inGlobalLog(s.opts.StreamPrefixes, r.StreamID, r.EventType) {
				continue
			}
			e, err := toEvent(r)
			if err != nil {
				rs.Close()
				return nil, err
			}
			// An event of an explicit transaction (the old TCP API) can be
			// beyond the cursor yet share its commit position.
			if e.Position > after {
				out = append(out, e)
			}
		}
		rs.Close()
		if n < page || !beyond(last, cursor) {
			break // the end of $all
		}
		from, cursor = last, &last
	}
	return out, nil
}

// HeadPosition implements eventstore.Store: the position of the last event
// of the global log, found by reading $all backwards from its end past
// system and snapshot events.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	var head int64
	err := s.call(ctx, "head of global log", func(c *esdb.Client) (err error) {
		head, err = s.head(ctx, c)
		return err
	})
	if err != nil {
		return 0, err
	}
	return head, nil
}

func (s *Store) head(ctx context.Context, c *esdb.Client) (int64, error) {
	var from esdb.AllPosition = esdb.End{}
	var cursor *esdb.Position
	for {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, headPage)
		if err != nil {
			return 0, err
		}
		n := 0
		var last esdb.Position
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return 0, err
			}
			n++
			r := ev.OriginalEvent()
			last = r.Position
			// A backward read from a position may or may not include the
			// event there; skip it either way.
			if cursor != nil && !beyond(*cursor, &r.Position) {
				continue
			}
			if inGlobalLog(s.opts.StreamPrefixes, r.StreamID, r.EventType) {
				rs.Close()
				return positionOf(r.Position.Commit)
			}
		}
		rs.Close()
		if n < headPage || (cursor != nil && last == *cursor) {
			return 0, nil
		}
		from, cursor = last, &last
	}
}
