package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/metrics"
)

type failingPublisher struct{ fail bool }

func (p *failingPublisher) Publish(string, ...*message.Message) error {
	if p.fail {
		return errors.New("broker down")
	}
	return nil
}
func (p *failingPublisher) Close() error { return nil }

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, body)
	}
	return string(body)
}

func TestMetricsCountWhatHappens(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	es := m.Store(memory.New())
	for i, typ := range []string{"run.created.v1", "run.log_written.v1", "run.log_written.v1"} {
		if _, _, err := es.Append(ctx, "run-a", int64(i), eventstore.EventData{ID: typ + string(rune('a'+i)), Type: typ, Data: []byte(`{}`), Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := es.Append(ctx, "run-a", 0, eventstore.EventData{ID: "x", Type: "run.created.v1", Data: []byte(`{}`), Actor: "t"}); err == nil {
		t.Fatal("append at a wrong version succeeded")
	}

	fp := &failingPublisher{}
	pub := m.Publisher(fp)
	msg := messaging.ToMessage(eventstore.Event{ID: "1", Stream: "run-a", Type: "run.restored.v1", Version: 1, Position: 1, Data: []byte(`{}`)})
	_ = pub.Publish("t", msg, msg)
	fp.fail = true
	_ = pub.Publish("t", msg)

	h := m.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if msg.Metadata.Get("fail") != "" {
			return nil, errors.New("handler failed")
		}
		return nil, nil
	})
	bad := msg.Copy()
	bad.Metadata.Set("fail", "yes")
	foreign := message.NewMessage("f", nil)
	foreign.Metadata.Set(messaging.MetaType, "com.example.Something Else")
	for _, x := range []*message.Message{msg, bad, foreign} {
		_, _ = h(x)
	}
	m.Duplicate(msg)
	m.RestoreDone(1500*time.Millisecond, true)
	m.RestoreDone(20*time.Millisecond, false)

	head := int64(10)
	m.WatchRelay(func(context.Context) (int64, error) { return head, nil }, func() int64 { return 7 })

	body := scrape(t, m)
	for _, want := range []string{
		`piperun_events_appended_total{type="run.created.v1"} 1`,
		`piperun_events_appended_total{type="run.log_written.v1"} 2`,
		`piperun_relay_published_total 2`,
		`piperun_relay_publish_errors_total 1`,
		`piperun_messages_consumed_total{type="run.restored.v1"} 2`,
		`piperun_messages_consumed_total{type="other"} 1`,
		`piperun_handler_errors_total{type="run.restored.v1"} 1`,
		`piperun_messages_duplicate_total 1`,
		`piperun_restore_duration_seconds_count{outcome="restored"} 1`,
		`piperun_restore_duration_seconds_bucket{outcome="restored",le="2.5"} 1`,
		`piperun_restore_duration_seconds_bucket{outcome="restored",le="1"} 0`,
		`piperun_restore_duration_seconds_count{outcome="failed"} 1`,
		`piperun_relay_lag_events 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := testutil.CollectAndCount(m.Registry(), "piperun_handler_errors_total"); n != 1 {
		t.Errorf("%d handler error series, want 1", n)
	}
	// Two processes' metrics do not collide.
	metrics.New()
}
