// Telling tailers that the log has grown: a subscription to the server's $all stream.

package esdb

import (
	"context"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// Changed implements eventstore.Store. The channel is closed after every
// append of this store and, through a $all subscription of this store
// (filtered on the server to the global log's streams), after appends of
// other processes too: a replica's tail readers wake up on its peers' writes
// without waiting for their next poll. The subscription is re-made when it
// drops, and a re-made one signals once, for what it may have missed.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// signal closes the current Changed channel and makes the next one.
func (s *Store) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// watch keeps a live $all subscription from the end of the log and signals
// every event of the global log it receives, until ctx ends.
func (s *Store) watch(ctx context.Context) {
	defer close(s.watchDone)
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	resubscribe := false
	for {
		var sub *esdb.Subscription
		err := s.call(ctx, "subscribe to $all", func(c *esdb.Client) (err error) {
			sub, err = c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}, Filter: subscriptionFilter(s.opts.StreamPrefixes)})
			return err
		})
		if err == nil {
			if resubscribe {
				s.signal()
			}
			backoff = 100 * time.Millisecond
			s.follow(sub)
			_ = sub.Close()
		}
		resubscribe = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow signals the events sub delivers until it drops (an error, or the
// watch context ending).
func (s *Store) follow(sub *esdb.Subscription) {
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return
		case ev.EventAppeared != nil:
			r := ev.EventAppeared.OriginalEvent()
			if inGlobalLog(s.opts.StreamPrefixes, r.StreamID, r.EventType) {
				s.signal()
			}
		}
	}
}
