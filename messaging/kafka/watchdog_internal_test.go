package kafka

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWatchdogObserve(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	lag := func(committed, end int64) Lag {
		return Lag{Partitions: []PartitionLag{{Partition: 0, Committed: committed, End: end}}, Waiting: end - committed}
	}
	type check struct {
		at      time.Duration
		lag     Lag
		err     error
		wantErr string // "" means healthy
	}
	tests := []struct {
		name   string
		checks []check
	}{
		{"idle topic is healthy", []check{{at: time.Minute, lag: lag(5, 5)}, {at: 2 * time.Minute, lag: lag(5, 5)}}},
		{"waiting within the threshold", []check{{at: time.Second, lag: lag(0, 3)}, {at: 29 * time.Second, lag: lag(0, 3)}}},
		{"waiting past the threshold", []check{{at: time.Second, lag: lag(0, 3)}, {at: 31 * time.Second, lag: lag(0, 3), wantErr: "committed nothing on topic t for 31s while 3 messages wait (partition 0 at 0 of 3)"}}},
		{"slow but moving", []check{{at: 20 * time.Second, lag: lag(0, 9)}, {at: 40 * time.Second, lag: lag(1, 9)}, {at: 60 * time.Second, lag: lag(2, 9)}}},
		{"recovers", []check{{at: 31 * time.Second, lag: lag(0, 3), wantErr: "committed nothing"}, {at: 32 * time.Second, lag: lag(3, 3)}}},
		{"broker unreachable briefly", []check{{at: 10 * time.Second, err: errors.New("dial refused")}}},
		{"broker unreachable", []check{{at: 10 * time.Second, lag: lag(2, 2)}, {at: 45 * time.Second, err: errors.New("dial refused"), wantErr: "cannot be asked: dial refused"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watchdog{cfg: Config{Topic: "t", ConsumerGroup: "g", StallAfter: 30 * time.Second}, lastProgress: t0}
			for i, c := range tt.checks {
				err := w.observe(c.lag, c.err, t0.Add(c.at))
				if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
					t.Fatalf("check %d: health %v, want %q", i, err, c.wantErr)
				}
				if w.Health() != err {
					t.Fatalf("check %d: Health() differs from observe's result", i)
				}
			}
		})
	}
}
