package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Watchdog turns a consumer group that makes no progress into an error.
//
// watermill-kafka retries a failing group join (or any consumer failure)
// quietly and for ever, so a stalled group looks like an idle one. The
// watchdog asks the brokers, every CheckEvery, how many records of the
// topic the group has not committed and whether any committed offset moved
// since the last look. When records have waited for StallAfter with no
// commit at all, or the brokers could not be asked for that long, Health
// returns the reason and the error is logged at every check until the
// group moves again.
//
// It measures the group, not this process: it works in a process that
// does not consume (an API replica's /readyz), and it reports a group with
// no live member at all, which is also work that waits.
type Watchdog struct {
	cfg    Config
	log    *slog.Logger
	reader *lagReader

	mu           sync.Mutex
	lastProgress time.Time
	committed    map[int32]int64
	stalled      error
	lastErr      error
	lastLag      Lag
}

// GroupProgress is the consumer group's state at the watchdog's last
// check, for /healthz.
type GroupProgress struct {
	Group string `json:"group"`
	// Waiting is the number of records the group has not committed.
	Waiting int64 `json:"waiting"`
	// LastProgress is when the group was last seen to commit or be caught
	// up.
	LastProgress time.Time `json:"last_progress"`
	// Stalled says why the group does not progress, if it does not.
	Stalled string `json:"stalled,omitempty"`
}

// Progress reports the group's state at the last check.
func (w *Watchdog) Progress() GroupProgress {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := GroupProgress{Group: w.cfg.ConsumerGroup, Waiting: w.lastLag.Waiting, LastProgress: w.lastProgress}
	if w.stalled != nil {
		p.Stalled = w.stalled.Error()
	}
	return p
}

// BrokerErr returns why the brokers could not be asked at the last check,
// or nil when they answered.
func (w *Watchdog) BrokerErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// NewWatchdog checks cfg and returns a watchdog; Run starts it.
func NewWatchdog(cfg Config, logger *slog.Logger) (*Watchdog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Watchdog{cfg: cfg, log: logger, reader: &lagReader{cfg: cfg}, lastProgress: time.Now()}, nil
}

// Health returns nil while the group keeps up, else why it does not.
func (w *Watchdog) Health() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalled
}

// Run checks the group until ctx ends.
func (w *Watchdog) Run(ctx context.Context) error {
	defer w.reader.close()
	w.mu.Lock()
	w.lastProgress = time.Now()
	w.mu.Unlock()
	t := time.NewTicker(w.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, max(w.cfg.CheckEvery, 10*time.Second))
		lag, err := w.reader.read(checkCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		was := w.Health()
		now := w.observe(lag, err, time.Now())
		switch {
		case now != nil:
			w.log.Error("kafka consumer group is not making progress", "group", w.cfg.ConsumerGroup, "topic", w.cfg.Topic, "err", now)
		case was != nil:
			w.log.Info("kafka consumer group is making progress again", "group", w.cfg.ConsumerGroup, "topic", w.cfg.Topic)
		}
	}
}

// observe updates the state with one check's result and returns the new
// health.
func (w *Watchdog) observe(lag Lag, err error, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	idle := now.Sub(w.lastProgress)
	w.lastErr = nil
	if err != nil {
		w.lastErr = fmt.Errorf("kafka brokers cannot be asked about group %s: %w", w.cfg.ConsumerGroup, err)
		if idle >= w.cfg.StallAfter {
			w.stalled = fmt.Errorf("kafka consumer group %s: no progress seen for %s; the brokers cannot be asked: %w",
				w.cfg.ConsumerGroup, idle.Round(100*time.Millisecond), err)
		}
		return w.stalled
	}
	w.lastLag = lag
	moved := lag.Waiting == 0
	seen := make(map[int32]int64, len(lag.Partitions))
	for _, p := range lag.Partitions {
		seen[p.Partition] = p.Committed
		if before, ok := w.committed[p.Partition]; ok && before != p.Committed {
			moved = true
		}
	}
	w.committed = seen
	if moved {
		w.lastProgress = now
		w.stalled = nil
		return nil
	}
	if idle >= w.cfg.StallAfter {
		var waiting []string
		for _, p := range lag.Partitions {
			if p.End > p.Committed {
				waiting = append(waiting, fmt.Sprintf("partition %d at %d of %d", p.Partition, p.Committed, p.End))
			}
		}
		w.stalled = fmt.Errorf("kafka consumer group %s has committed nothing on topic %s for %s while %d messages wait (%s): is any worker consuming?",
			w.cfg.ConsumerGroup, w.cfg.Topic, idle.Round(100*time.Millisecond), lag.Waiting, strings.Join(waiting, ", "))
	}
	return w.stalled
}
