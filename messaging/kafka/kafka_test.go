package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// event is a stored run event as the relay would read it.
func event(run string, version, position int64) eventstore.Event {
	return eventstore.Event{
		ID: fmt.Sprintf("ev-%s-%d", run, version), Stream: "run-" + run, Type: "run.log_written.v1",
		Version: version, Position: position, Data: []byte(fmt.Sprintf(`{"n":%d}`, version)),
		Actor: "alice", Time: time.Date(2024, 5, 1, 12, 0, 0, int(version), time.UTC),
	}
}

// consumeAll reads n records of topic with an independent franz-go client.
func consumeAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(recs), n)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     kafka.Config
		wantErr string
	}{
		{name: "defaults", cfg: kafka.Config{Brokers: []string{"localhost:9092"}}},
		{name: "no broker", cfg: kafka.Config{}, wantErr: "no broker"},
		{name: "broker without port", cfg: kafka.Config{Brokers: []string{"localhost"}}, wantErr: "host:port"},
		{name: "bad topic", cfg: kafka.Config{Brokers: []string{"k:1"}, Topic: "run events"}, wantErr: "topic"},
		{name: "negative partitions", cfg: kafka.Config{Brokers: []string{"k:1"}, Partitions: -2}, wantErr: "negative"},
		{name: "negative stall", cfg: kafka.Config{Brokers: []string{"k:1"}, StallAfter: -time.Second}, wantErr: "negative"},
		{name: "tiny max message", cfg: kafka.Config{Brokers: []string{"k:1"}, MaxMessageBytes: 10}, wantErr: "max message bytes"},
		{name: "huge max message", cfg: kafka.Config{Brokers: []string{"k:1"}, MaxMessageBytes: 200 << 20}, wantErr: "max message bytes"},
		{name: "negative batch", cfg: kafka.Config{Brokers: []string{"k:1"}, BatchSize: -1}, wantErr: "batch size"},
		{name: "relay group is the workers'", cfg: kafka.Config{Brokers: []string{"k:1"}, RelayGroup: "piperun-workers"}, wantErr: "must differ"},
		{name: "TLS file without TLS", cfg: kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{CAFile: "/ca.pem"}}, wantErr: "TLS is not enabled"},
		{name: "insecure without TLS", cfg: kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{InsecureSkipVerify: true}}, wantErr: "TLS is not enabled"},
		{name: "insecure with a CA", cfg: kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, InsecureSkipVerify: true, CAFile: "/ca.pem"}}, wantErr: "contradict"},
		{name: "certificate without key", cfg: kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CertFile: "/c.pem"}}, wantErr: "needs its key"},
		{name: "missing CA file", cfg: kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, wantErr: "read TLS CA file"},
		{name: "SASL without password", cfg: kafka.Config{Brokers: []string{"k:1"}, SASL: kafka.SASLConfig{Mechanism: kafka.SASLSCRAMSHA256, User: "u"}}, wantErr: "needs a user and a password"},
		{name: "SASL user without mechanism", cfg: kafka.Config{Brokers: []string{"k:1"}, SASL: kafka.SASLConfig{User: "u", Password: "p"}}, wantErr: "no SASL mechanism"},
		{name: "unknown SASL mechanism", cfg: kafka.Config{Brokers: []string{"k:1"}, SASL: kafka.SASLConfig{Mechanism: "PLAIN", User: "u", Password: "p"}}, wantErr: "SCRAM-SHA-256 or SCRAM-SHA-512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				c := tt.cfg
				if c.Topic != messaging.DefaultTopic || c.ConsumerGroup != "piperun-workers" || c.Partitions <= 0 ||
					c.StallAfter != 30*time.Second || c.CheckEvery <= 0 || c.CheckEvery > c.StallAfter ||
					c.MaxMessageBytes != kafka.DefaultMaxMessageBytes || c.BatchSize != kafka.DefaultBatchSize || c.RelayGroup != kafka.DefaultRelayGroup {
					t.Fatalf("defaults not filled: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	// A CA file that holds no certificate is refused; the password never
	// shows in the configuration's text.
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CAFile: notPEM}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without a certificate: %v", err)
	}
	sasl := kafka.Config{Brokers: []string{"k:1"}, SASL: kafka.SASLConfig{Mechanism: kafka.SASLSCRAMSHA512, User: "u", Password: "hunter2"}}
	if err := sasl.Validate(); err != nil {
		t.Fatal(err)
	}
	if text := fmt.Sprintf("%v %+v", sasl, sasl.SASL); strings.Contains(text, "hunter2") {
		t.Errorf("the SASL password shows in %s", text)
	}
	if got := kafka.ParseBrokers(" a:1, ,b:2,"); fmt.Sprint(got) != "[a:1 b:2]" {
		t.Errorf("ParseBrokers = %v", got)
	}
}

// TestPublishedRecordsAreCloudEvents reads what the publisher wrote with
// franz-go, not our code: key = run, the CloudEvents headers and nothing
// of watermill's, the event's JSON, each run on one partition in order.
func TestPublishedRecordsAreCloudEvents(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 4}
	pub, err := kafka.NewPublisher(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var evs []eventstore.Event
	pos := int64(0)
	for v := int64(1); v <= 5; v++ {
		for _, run := range []string{"alpha", "beta", "gamma"} {
			pos++
			evs = append(evs, event(run, v, pos))
		}
	}
	for _, ev := range evs {
		// The topic does not exist before the first publish.
		if err := pub.Publish(messaging.DefaultTopic, messaging.ToMessage(ev)); err != nil {
			t.Fatal(err)
		}
	}
	recs := consumeAll(t, cfg.Brokers, messaging.DefaultTopic, len(evs))
	partitions := map[string]int32{}
	next := map[string]int64{}
	byID := map[string]eventstore.Event{}
	for _, ev := range evs {
		byID[ev.ID] = ev
	}
	for _, r := range recs {
		h := map[string]string{}
		for _, hd := range r.Headers {
			if _, dup := h[hd.Key]; dup {
				t.Errorf("header %s twice", hd.Key)
			}
			h[hd.Key] = string(hd.Value)
		}
		ev, ok := byID[h["ce_id"]]
		if !ok {
			t.Fatalf("record with ce_id %q not published", h["ce_id"])
		}
		run := messaging.RunName(ev.Stream)
		want := map[string]string{
			"ce_specversion": "1.0", "ce_id": ev.ID, "ce_type": ev.Type, "ce_source": "piperun",
			"ce_subject": run, "ce_time": ev.Time.Format(time.RFC3339Nano), "content-type": "application/json",
			"ce_piperunstream": ev.Stream, "ce_piperunversion": fmt.Sprint(ev.Version),
			"ce_piperunposition": fmt.Sprint(ev.Position), "ce_piperunactor": ev.Actor,
		}
		if fmt.Sprint(h) != fmt.Sprint(want) {
			t.Errorf("headers\n got %v\nwant %v", h, want)
		}
		if string(r.Key) != run || string(r.Value) != string(ev.Data) {
			t.Errorf("record key %q value %s, want %q %s", r.Key, r.Value, run, ev.Data)
		}
		if p, seen := partitions[run]; seen && p != r.Partition {
			t.Errorf("run %s on partitions %d and %d", run, p, r.Partition)
		}
		partitions[run] = r.Partition
		if next[run]++; next[run] != ev.Version {
			t.Errorf("run %s: version %d arrived as number %d", run, ev.Version, next[run])
		}
	}
}

// TestGroupConsumesFromOldestOnceAndInOrder publishes before any consumer
// exists, with the duplicates two relays make, and checks that the group
// gets everything and the guarded handler each event once, in order.
func TestGroupConsumesFromOldestOnceAndInOrder(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 3, ConsumerGroup: "test-workers"}
	pub := newPublisher(t, &cfg)
	// Relay A publishes a1..a4, relay B (started from an older
	// checkpoint) a2..a4 again, interleaved; b has one copy.
	order := []eventstore.Event{event("a", 1, 1), event("a", 2, 2), event("b", 1, 3), event("a", 2, 2), event("a", 3, 4),
		event("a", 3, 4), event("b", 2, 5), event("a", 4, 6), event("a", 4, 6)}
	for _, ev := range order {
		if err := pub.Publish(cfg.Topic, messaging.ToMessage(ev)); err != nil {
			t.Fatal(err)
		}
	}

	sub, err := kafka.NewSubscriber(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string][]int64{}
	var dups atomic.Int32
	failOnce := atomic.Bool{}
	failOnce.Store(true)
	h := router.AddConsumerHandler("workers", cfg.Topic, sub, func(msg *message.Message) error {
		env, err := messaging.FromMessage(msg)
		if err != nil {
			return err
		}
		if env.Run == "b" && env.Version == 2 && failOnce.Swap(false) {
			return errors.New("transient failure") // redelivered, and then handled
		}
		mu.Lock()
		handled[env.Run] = append(handled[env.Run], env.Version)
		mu.Unlock()
		return nil
	})
	guard := &kafka.Dedupe{OnDuplicate: func(*message.Message) { dups.Add(1) }}
	h.AddMiddleware(guard.Middleware)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	waitFor(t, 30*time.Second, "the group to commit every record", func() bool {
		lag, err := kafka.GroupLag(context.Background(), cfg)
		return err == nil && lag.Waiting == 0 && dups.Load() == 3
	})
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(handled); got != "map[a:[1 2 3 4] b:[1 2]]" {
		t.Fatalf("handled %s, want each event once in order", got)
	}
}

func TestDedupe(t *testing.T) {
	msg := func(stream, version string) *message.Message {
		m := message.NewMessage(watermill.NewUUID(), nil)
		if stream != "" {
			m.Metadata.Set(messaging.MetaStream, stream)
		}
		if version != "" {
			m.Metadata.Set(messaging.MetaVersion, version)
		}
		return m
	}
	steps := []struct {
		stream, version string
		fail            bool
		wantHandled     bool
	}{
		{"run-a", "1", false, true},
		{"run-a", "1", false, false}, // duplicate
		{"run-b", "1", false, true},  // other stream
		{"run-a", "2", true, true},   // fails: not remembered
		{"run-a", "2", false, true},  // redelivery handled
		{"run-a", "1", false, false}, // stale copy
		{"run-a", "4", false, true},
		{"run-a", "3", false, false},
		{"", "", false, true},         // foreign message: no coordinates
		{"run-a", "bad", false, true}, // unreadable version: passes
	}
	d := &kafka.Dedupe{}
	for i, s := range steps {
		called := false
		h := d.Middleware(func(*message.Message) ([]*message.Message, error) {
			called = true
			if s.fail {
				return nil, errors.New("fail")
			}
			return nil, nil
		})
		_, err := h(msg(s.stream, s.version))
		if called != s.wantHandled {
			t.Errorf("step %d (%s v%s): handled %v, want %v", i, s.stream, s.version, called, s.wantHandled)
		}
		if (err != nil) != (s.fail && s.wantHandled) {
			t.Errorf("step %d: err %v", i, err)
		}
	}
}

// TestWatchdogReportsStalledGroup makes every group join fail, as an old
// sarama's did against some brokers: the subscriber retries quietly, and
// the watchdog must say so; once joins work, it must clear.
func TestWatchdogReportsStalledGroup(t *testing.T) {
	c := newCluster(t)
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("join refused by the test"), true // closes the connection
	})
	cfg := kafka.Config{Brokers: c.ListenAddrs(), ConsumerGroup: "stalled", StallAfter: 500 * time.Millisecond, CheckEvery: 50 * time.Millisecond}
	pub := newPublisher(t, &cfg)
	if err := pub.Publish(cfg.Topic, messaging.ToMessage(event("a", 1, 1))); err != nil {
		t.Fatal(err)
	}
	wd, err := kafka.NewWatchdog(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := kafka.NewSubscriber(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	go wd.Run(ctx)

	waitFor(t, 20*time.Second, "the watchdog to report the stall", func() bool { return wd.Health() != nil })
	if msg := wd.Health().Error(); !strings.Contains(msg, "committed nothing") || !strings.Contains(msg, "1 messages wait") {
		t.Errorf("stall reason: %s", msg)
	}
	if refused.Load() == 0 {
		t.Fatal("no join was attempted")
	}

	refuse.Store(false)
	select {
	case m := <-msgs:
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("no message after joins were allowed again")
	}
	waitFor(t, 20*time.Second, "the watchdog to clear", func() bool { return wd.Health() == nil })
}

// TestWatchdogNeedsTheBrokers reports a broker that cannot be asked.
func TestWatchdogNeedsTheBrokers(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), StallAfter: 300 * time.Millisecond, CheckEvery: 50 * time.Millisecond}
	if err := kafka.EnsureTopic(context.Background(), cfg, ""); err != nil {
		t.Fatal(err)
	}
	wd, err := kafka.NewWatchdog(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wd.Run(ctx)
	// An empty topic is no stall, however long.
	time.Sleep(500 * time.Millisecond) // a stretch longer than StallAfter must pass to show nothing is reported
	if err := wd.Health(); err != nil {
		t.Fatalf("empty topic reported: %v", err)
	}
	c.Close()
	waitFor(t, 30*time.Second, "the watchdog to report the missing broker", func() bool {
		err := wd.Health()
		return err != nil && strings.Contains(err.Error(), "cannot be asked")
	})
}

// TestPublisherSurvivesBrokerRestart publishes, loses the broker, and
// publishes again once a broker is back on the same address with the same
// log.
func TestPublisherSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c := newCluster(t, kfake.DataDir(dir))
	addr := c.ListenAddrs()[0]
	cfg := kafka.Config{Brokers: []string{addr}, Partitions: 1}
	pub := newPublisher(t, &cfg)
	if err := pub.Publish(cfg.Topic, messaging.ToMessage(event("a", 1, 1))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := pub.Publish(cfg.Topic, messaging.ToMessage(event("a", 2, 2))); err == nil {
		t.Fatal("publish without a broker succeeded")
	}
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	newCluster(t, kfake.DataDir(dir), kfake.Ports(port))
	waitFor(t, 30*time.Second, "a publish to the restarted broker", func() bool {
		return pub.Publish(cfg.Topic, messaging.ToMessage(event("a", 2, 2))) == nil
	})
	recs := consumeAll(t, cfg.Brokers, cfg.Topic, 2)
	for i, r := range recs {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); string(r.Value) != want {
			t.Errorf("record %d is %s, want %s", i, r.Value, want)
		}
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newPublisher validates cfg (filling its defaults) and returns a
// publisher to its brokers, closed when the test ends.
func newPublisher(t *testing.T, cfg *kafka.Config) *kafka.Publisher {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(*cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}
