package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/internal/syncbuf"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/relay"
)

// testLog is quiet unless PIPERUN_TEST_LOG is set.
var testLog = func() *slog.Logger {
	if os.Getenv("PIPERUN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return quiet
}()

// fileCheckpoints keeps a candidate's own checkpoints as files in its own
// data directory, as the read models do.
type fileCheckpoints struct{ dir string }

func (c fileCheckpoints) LoadCheckpoint(_ context.Context, name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (c fileCheckpoints) SaveCheckpoint(_ context.Context, name string, p int64) error {
	return os.WriteFile(filepath.Join(c.dir, name), []byte(strconv.FormatInt(p, 10)), 0o644)
}

// gate passes publishes to the real publisher and records them. Once
// holdAfter calls have succeeded, the next call is published for real
// and then held (its acknowledgement "lost") until release is closed,
// when it fails: a leader that dies with a batch in flight.
type gate struct {
	message.Publisher
	holdAfter int // 0: never hold
	inFlight  chan struct{}
	release   chan struct{}

	mu    sync.Mutex
	calls int
	first int64 // position of the first message published
	count int   // messages handed to the real publisher and stored
}

func newGate(pub message.Publisher, holdAfter int) *gate {
	return &gate{Publisher: pub, holdAfter: holdAfter, inFlight: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Publish(topic string, msgs ...*message.Message) error {
	err := g.Publisher.Publish(topic, msgs...)
	g.mu.Lock()
	if err == nil {
		if g.count == 0 {
			g.first, _ = strconv.ParseInt(msgs[0].Metadata.Get(messaging.MetaPosition), 10, 64)
		}
		g.count += len(msgs)
	}
	g.calls++
	hold := err == nil && g.holdAfter > 0 && g.calls == g.holdAfter+1
	g.mu.Unlock()
	if hold {
		close(g.inFlight)
		<-g.release
		return errors.New("connection to the broker lost before the acknowledgement")
	}
	return err
}

func (g *gate) published() (first int64, count int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first, g.count
}

// candidate is one process that may relay, with its own data directory.
type candidate struct {
	leader *kafka.RelayLeader
	gate   *gate
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
}

func startCandidate(t *testing.T, cfg kafka.Config, es eventstore.Store, holdAfter int) *candidate {
	t.Helper()
	pub := newPublisher(t, &cfg)
	g := newGate(pub, holdAfter)
	relay := &relay.Relay{Store: es, Publisher: g, Topic: cfg.Topic, Checkpoints: fileCheckpoints{dir: t.TempDir()},
		Name: "relay:kafka", Logger: testLog, Poll: 10 * time.Millisecond, BatchSize: cfg.BatchSize,
		DeadLetterTopic: kafka.DeadLetterTopic(cfg.Topic)}
	c := &candidate{leader: &kafka.RelayLeader{Config: cfg, Relay: relay, Logger: testLog}, gate: g, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		if err := c.leader.Run(ctx); err != nil {
			t.Errorf("relay candidate: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.release:
		default:
			close(g.release)
		}
		<-c.done
	})
	return c
}

// waitUntil polls cond: the group's rebalances take the broker's time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayTakeoverResumesAfterTheLastAcknowledgedBatch runs two relay
// candidates with no directory in common on one cluster and one event
// log: only the leader publishes; when it dies with a batch in flight, the
// other takes over and resumes after the last batch the brokers
// acknowledged, so only that batch is on the topic twice, nothing is
// missing and every run's events keep their order.
func TestRelayTakeoverResumesAfterTheLastAcknowledgedBatch(t *testing.T) {
	c := newCluster(t)
	const batch, acked = 10, 5
	cfg := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 3, BatchSize: batch, CheckEvery: 200 * time.Millisecond}
	es := memory.New()
	a := startCandidate(t, cfg, es, acked)
	b := startCandidate(t, cfg, es, acked)
	waitUntil(t, "both candidates in the relay group, one leading", func() bool {
		sa, sb := a.leader.Status(), b.leader.Status()
		return sa.InGroup && sb.InGroup && sa.Leader != sb.Leader
	})
	leader, standby := a, b
	if b.leader.Status().Leader {
		leader, standby = b, a
	}
	standby.gate.mu.Lock()
	standby.gate.holdAfter = 0 // the new leader's publishes all go through
	standby.gate.mu.Unlock()

	const runs, perRun = 3, 50
	for v := 1; v <= perRun; v++ {
		for r := range runs {
			stream := fmt.Sprintf("run-r%d", r)
			if _, _, err := es.Append(context.Background(), stream, int64(v-1), eventstore.EventData{
				ID: fmt.Sprintf("r%d-%d", r, v), Type: "run.log_written.v1", Data: []byte(`{}`), Actor: "t", Time: time.Now(),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-leader.gate.inFlight:
	case <-time.After(60 * time.Second):
		t.Fatalf("the leader did not publish %d batches: status %+v, relay %+v", acked+1, leader.leader.Status(), leader.leader.Relay.Status())
	}
	if _, n := standby.gate.published(); n != 0 {
		t.Fatalf("the standby published %d events while the other led", n)
	}
	lastAcked := leader.leader.Status().Checkpoint
	if lastAcked <= 0 {
		t.Fatalf("the leader's checkpoint is %d after %d acknowledged batches", lastAcked, acked)
	}
	leader.cancel()
	close(leader.gate.release)
	<-leader.done

	head, err := es.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the standby to take over and relay the rest", func() bool {
		s := standby.leader.Status()
		return s.Leader && s.Checkpoint == head
	})
	first, n := standby.gate.published()
	if first != lastAcked+1 {
		t.Fatalf("the new leader started at position %d, want %d (after the last acknowledged batch)", first, lastAcked+1)
	}
	_, ln := leader.gate.published()
	recs := consumeAll(t, cfg.Brokers, messaging.DefaultTopic, ln+n)
	copies := map[string]int{}
	lastVersion := map[string]int64{}
	for _, r := range recs {
		id := header(r, "ce_id")
		copies[id]++
		if copies[id] > 1 {
			continue
		}
		v, _ := strconv.ParseInt(header(r, "ce_piperunversion"), 10, 64)
		if v != lastVersion[string(r.Key)]+1 {
			t.Fatalf("run %s: version %d follows %d on the topic", r.Key, v, lastVersion[string(r.Key)])
		}
		lastVersion[string(r.Key)] = v
	}
	twice := 0
	for _, k := range copies {
		if k > 2 {
			t.Fatalf("an event is on the topic %d times", k)
		}
		if k == 2 {
			twice++
		}
	}
	if len(copies) != runs*perRun {
		t.Fatalf("%d distinct events on the topic, %d in the log", len(copies), runs*perRun)
	}
	if twice > batch {
		t.Fatalf("%d events on the topic twice: more than the one batch of %d in flight", twice, batch)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestOversizedEventGoesToTheDeadLetterTopic: an event the producer must
// refuse does not stop the relay: it is recorded on the dead-letter topic
// (without its body, which does not fit), counted, and the events after
// it are published.
func TestOversizedEventGoesToTheDeadLetterTopic(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), MaxMessageBytes: 2048, BatchSize: 5}
	es := memory.New()
	big := `{"config":"` + strings.Repeat("x", 4096) + `"}`
	for i, data := range []string{`{"n":1}`, big, `{"n":3}`, `{"n":4}`} {
		if _, _, err := es.Append(context.Background(), "run-a", int64(i), eventstore.EventData{
			ID: fmt.Sprintf("a-%d", i+1), Type: "run.config_changed.v1", Data: []byte(data), Actor: "t", Time: time.Now(),
		}); err != nil {
			t.Fatal(err)
		}
	}
	var dead []relay.DeadLetter
	var mu sync.Mutex
	cand := startCandidate(t, cfg, es, 0)
	cand.leader.Relay.OnDeadLetter = func(d relay.DeadLetter) {
		mu.Lock()
		dead = append(dead, d)
		mu.Unlock()
	}
	waitUntil(t, "the relay to pass the oversized event", func() bool { return cand.leader.Status().Checkpoint == 4 })
	recs := consumeAll(t, cfg.Brokers, messaging.DefaultTopic, 3)
	var ids []string
	for _, r := range recs {
		ids = append(ids, header(r, "ce_id"))
	}
	if strings.Join(ids, ",") != "a-1,a-3,a-4" {
		t.Fatalf("published %v, want a-1,a-3,a-4", ids)
	}
	dl := consumeAll(t, cfg.Brokers, kafka.DeadLetterTopic(messaging.DefaultTopic), 1)
	var rec relay.DeadLetter
	if err := json.Unmarshal(dl[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventID != "a-2" || rec.Stream != "run-a" || rec.Position != 2 || rec.Type != "run.config_changed.v1" ||
		!strings.Contains(rec.Error, "MaxMessageBytes") || rec.Body != nil {
		t.Fatalf("dead letter %+v", rec)
	}
	st := cand.leader.Relay.Status()
	mu.Lock()
	defer mu.Unlock()
	if st.DeadLetters != 1 || len(dead) != 1 || dead[0].EventID != "a-2" {
		t.Fatalf("dead letters counted %d, reported %v", st.DeadLetters, dead)
	}
}

// TestRelayThroughSASLSCRAM relays to a cluster that demands SCRAM, and
// is refused with a wrong password.
func TestRelayThroughSASLSCRAM(t *testing.T) {
	for _, mech := range []string{kafka.SASLSCRAMSHA256, kafka.SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "piperun", "s3cret"))
			cfg := kafka.Config{Brokers: c.ListenAddrs(), SASL: kafka.SASLConfig{Mechanism: mech, User: "piperun", Password: "s3cret"}}
			es := memory.New()
			if _, _, err := es.Append(context.Background(), "run-a", 0, eventstore.EventData{ID: "a-1", Type: "run.created.v1", Data: []byte(`{}`), Actor: "t", Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			cand := startCandidate(t, cfg, es, 0)
			waitUntil(t, "the relay to publish through SASL", func() bool { return cand.leader.Status().Checkpoint == 1 })
			auth := scram.Auth{User: "piperun", Pass: "s3cret"}
			mechanism := auth.AsSha256Mechanism()
			if mech == kafka.SASLSCRAMSHA512 {
				mechanism = auth.AsSha512Mechanism()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.SASL(mechanism), kgo.ConsumeTopics(messaging.DefaultTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var got []string
			for len(got) == 0 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, header(r, "ce_id")) })
			}
			if fmt.Sprint(got) != "[a-1]" {
				t.Fatalf("read %v through SASL, want [a-1]", got)
			}

			bad := cfg
			bad.SASL.Password = "wrong"
			pub, err := kafka.NewPublisher(bad, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			if err := pub.Publish("", messaging.ToMessage(event("a", 2, 2))); err == nil {
				t.Fatal("published with a wrong SASL password")
			}
		})
	}
}

// TestExistingTopicWithFewerPartitionsIsLogged: piperun leaves an existing
// topic as it is, and says when it has fewer partitions than configured.
func TestExistingTopicWithFewerPartitionsIsLogged(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	small := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 2}
	if err := kafka.EnsureTopic(ctx, small, ""); err != nil {
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	more := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 6}
	if err := kafka.EnsureTopicPartitions(ctx, more, "", 0, log); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "fewer partitions than configured") || !strings.Contains(out, "partitions=2 configured=6") {
		t.Fatalf("log: %q", out)
	}
}
