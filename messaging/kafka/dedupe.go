package kafka

import (
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/messaging"
)

// Dedupe keeps duplicated run events away from a handler.
//
// The topic may hold an event more than once: a new relay leader
// publishes again the batch its predecessor had in flight when it died
// (stored, but not yet checkpointed), and a publish that failed after the
// broker stored it is sent again. Such copies can interleave with newer
// events, so a stale copy can arrive after newer events of the same run. Dedupe remembers, per stream, the newest version the handler
// succeeded on in this process and acks without handling any message of
// that stream whose version is not newer. The first copy of each event
// still arrives in log order (every relay publishes in order), so the
// handler sees each run's events once and in order.
//
// A failed message is not remembered, so its redelivery is handled. The
// memory holds one number per run ever seen by this process. Messages
// without store coordinates (ce_piperunstream, ce_piperunversion) pass.
type Dedupe struct {
	// OnDuplicate, if set, is called for every message skipped.
	OnDuplicate func(msg *message.Message)

	mu   sync.Mutex
	last map[string]int64
}

// Middleware wraps a handler with the guard.
func (d *Dedupe) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		stream := msg.Metadata.Get(messaging.MetaStream)
		version, err := strconv.ParseInt(msg.Metadata.Get(messaging.MetaVersion), 10, 64)
		if stream == "" || err != nil {
			return h(msg)
		}
		d.mu.Lock()
		seen := d.last[stream]
		d.mu.Unlock()
		if version <= seen {
			if d.OnDuplicate != nil {
				d.OnDuplicate(msg)
			}
			return nil, nil
		}
		out, err := h(msg)
		if err != nil {
			return out, err
		}
		d.mu.Lock()
		if d.last == nil {
			d.last = map[string]int64{}
		}
		d.last[stream] = max(d.last[stream], version)
		d.mu.Unlock()
		return out, nil
	}
}
