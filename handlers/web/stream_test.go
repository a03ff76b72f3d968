package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/projections"
)

// seedProcessedRun creates a run whose processing produced n images and n
// products, as a worker would have recorded it.
func (s *site) seedProcessedRun(owner, name string, n int) {
	s.t.Helper()
	cfg, err := parseConfig([]byte(configFor("epoch01")))
	if err != nil {
		s.t.Fatal(err)
	}
	p := domain.Products{Figures: domain.Figures{NImages: n, NSources: 10 * n}}
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		p.Images = append(p.Images, domain.ImageSummary{
			Name: fmt.Sprintf("epoch%05d.fits", i), Path: fmt.Sprintf("data/epoch%05d.fits", i), Epoch: fmt.Sprint(i),
			DateTime: day.Add(time.Duration(i) * time.Hour), FrequencyMHz: 887.5, BMajDeg: 0.003, BMinDeg: 0.002, BPADeg: 45,
			RADeg: 320.5, DecDeg: -4.2, NMeasurements: 1000 + i,
		})
		p.Artifacts = append(p.Artifacts, domain.Artifact{
			Name: fmt.Sprintf("measurements/epoch%05d.parquet", i), Digest: fmt.Sprintf("sha256:%064x", i), Size: int64(4096 + i),
		})
	}
	res, err := s.svc.ExecRun(context.Background(), name, owner, func(*domain.Run) ([]domain.Event, error) {
		return []domain.Event{
			domain.RunCreated{Name: name, Owner: owner, Config: cfg},
			domain.ProcessingRequested{JobID: "j1", Mode: domain.ModeFull, Config: cfg, Log: "2024-01-01-00-00-00_log.txt", PreviousStatus: domain.StatusInitialised},
			domain.ProcessingCompleted{JobID: "j1", Products: p},
		}, nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.settle(res.Position)
}

// TestStreamSendsTheRunOnceThenChanges follows a small and a large run
// through the same change: each stream starts with the whole run, then
// sends only what changed, in as many bytes for the large run as for the
// small one; applied to what the stream sent first, it gives the run as
// the read models have it.
func TestStreamSendsTheRunOnceThenChanges(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn("bob")
	ctx := context.Background()
	firsts, changes := map[string]int{}, map[string]int{}
	for _, tt := range []struct {
		name string
		n    int
	}{{"small", 10}, {"large", 5000}} {
		s.seedProcessedRun("alice", tt.name, tt.n)
		st := b.stream("/runs/" + tt.name + "/events/stream")
		ev, data := st.next()
		if ev != "run" {
			t.Fatalf("%s: first event %q, want run", tt.name, ev)
		}
		firsts[tt.name] = len(data)
		var first projections.RunDetail
		if err := json.Unmarshal([]byte(data), &first); err != nil {
			t.Fatal(err)
		}
		if len(first.Images) != tt.n || len(first.Products) != tt.n {
			t.Fatalf("%s: first event has %d images and %d products, want %d", tt.name, len(first.Images), len(first.Products), tt.n)
		}

		// One change: an addition is queued (status, mode, a new log).
		cfg, _ := parseConfig([]byte(configFor("epoch01", "epoch02")))
		if _, err := s.svc.ExecRun(ctx, tt.name, "alice", func(*domain.Run) ([]domain.Event, error) {
			return []domain.Event{domain.ProcessingRequested{JobID: "j2", Mode: domain.ModeAdd, Config: cfg, Log: "2024-01-02-00-00-00_log.txt", PreviousStatus: domain.StatusCompleted}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		ev, data = st.next()
		if ev != "change" {
			t.Fatalf("%s: event after the change %q, want change", tt.name, ev)
		}
		changes[tt.name] = len(data)
		got, err := applyChange(first, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.read.GetRun(ctx, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%s: the run with the change applied differs from the read model:\n got %.300s\nwant %.300s", tt.name, gotJSON, wantJSON)
		}
		if got.Status != domain.StatusQueued || got.Mode != domain.ModeAdd || len(got.Logs) != 2 {
			t.Errorf("%s: after the change: %s, mode %q, %d logs", tt.name, got.Status, got.Mode, len(got.Logs))
		}
		if strings.Contains(data, "epoch00001.fits") {
			t.Errorf("%s: the change carries images: %.200s", tt.name, data)
		}
	}
	t.Logf("first event %v bytes, change %v bytes", firsts, changes)
	if firsts["large"] < 100*firsts["small"] {
		t.Fatalf("the large run's first event (%d bytes) is not much larger than the small one's (%d)", firsts["large"], firsts["small"])
	}
	// Timestamps may differ in width by a few digits; the runs' sizes
	// differ 500-fold.
	if d := changes["large"] - changes["small"]; d < -16 || d > 16 || changes["large"] > 1024 {
		t.Errorf("change of the large run %d bytes, of the small one %d: it should depend on the change only", changes["large"], changes["small"])
	}
}

// TestFeedResendsTheRunToALaggingStream fills a stream's queue without
// reading it: the feed drops the stream, which then starts again from the
// whole run as it is now.
func TestFeedResendsTheRunToALaggingStream(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "lag", "", "epoch01")
	fs := &feeds{read: s.read, heartbeat: time.Hour, log: slog.New(slog.NewTextHandler(io.Discard, nil)), byRun: map[string]*feed{}}
	f, err := fs.join(context.Background(), "lag")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.release(f)
	fl, _, err := f.follow()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	d := f.last
	f.mu.Unlock()
	for i := range followerBuffer + 1 {
		d.Version++
		d.Description = fmt.Sprint("description ", i)
		if err := f.update(d); err != nil {
			t.Fatal(err)
		}
	}
	// The queue holds followerBuffer events, then the feed closed it.
	for range followerBuffer {
		if _, ok := <-fl.ch; !ok {
			t.Fatal("the queue ended before it was full")
		}
	}
	select {
	case _, ok := <-fl.ch:
		if ok {
			t.Fatal("more events than the queue holds")
		}
	default:
		t.Fatal("the queue of the lagging stream is still open")
	}
	if fl.end != errLagged {
		t.Fatalf("the stream ended with %v, want %v", fl.end, errLagged)
	}
	f.mu.Lock()
	_, still := f.followers[fl]
	f.mu.Unlock()
	if still {
		t.Error("the lagging follower is still in the feed")
	}
	_, full, err := f.follow()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(full), "event: run\n") || !strings.Contains(string(full), fmt.Sprintf(`"description":"description %d"`, followerBuffer)) {
		t.Errorf("resent run: %.200s", full)
	}
}

// openStream opens a live stream and returns its answer; a stream that was
// accepted is closed at the end of the test.
func (b *browser) openStream(path string) (*http.Response, func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.site.srv.URL+path, nil)
	c := *b.c
	c.Timeout = 0
	res, err := c.Do(req)
	if err != nil {
		cancel()
		b.t.Fatal(err)
	}
	closeIt := func() { cancel(); res.Body.Close() }
	b.t.Cleanup(closeIt)
	if res.StatusCode == http.StatusOK {
		// Wait for the first event: the stream is counted by then.
		if _, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil {
			b.t.Fatal(err)
		}
	}
	return res, closeIt
}

// refusal checks that res refuses a stream with 429 and a JSON error.
func refusal(t *testing.T, res *http.Response, what string) {
	t.Helper()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d, want 429", what, res.StatusCode)
	}
	var body map[string]string
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("%s: the refusal is not JSON: %v", what, err)
	}
	if !strings.HasPrefix(body["error"], "too many live streams: ") {
		t.Errorf("%s: error %q", what, body["error"])
	}
}

func TestStreamCaps(t *testing.T) {
	s := newSite(t, func(p *Server) { p.MaxStreams, p.MaxStreamsPerUser = 3, 2 })
	s.createRun("alice", "capped", "", "epoch01")
	const path = "/runs/capped/events/stream"
	users := map[string]*browser{}
	for _, u := range []string{"alice", "bob", "root"} {
		users[u] = s.browser()
		users[u].signIn(u)
	}
	var bobs []func()
	for i := range 2 {
		res, closeIt := users["bob"].openStream(path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("bob's stream %d: %d", i+1, res.StatusCode)
		}
		bobs = append(bobs, closeIt)
	}
	res, _ := users["bob"].openStream(path)
	refusal(t, res, "bob's third stream")
	if res, _ := users["alice"].openStream(path); res.StatusCode != http.StatusOK {
		t.Fatalf("alice's first stream: %d", res.StatusCode)
	}
	res, _ = users["root"].openStream(path)
	refusal(t, res, "a fourth stream in all")

	// Once one of bob's streams ends, bob may open one again.
	bobs[0]()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		res, _ := users["bob"].openStream(path)
		if res.StatusCode == http.StatusOK {
			break
		}
		refusal(t, res, "bob's stream while the closed one is still counted")
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("bob's closed stream is still counted")
		}
	}
}
