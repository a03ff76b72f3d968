package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/e2ekit"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/messaging/kafka"
)

const runName = "kafka_restore_run"

// TestDistributedRestore runs the restore scenario on two API replicas
// sharing one data directory and a worker process, all talking through
// Kafka; then reads the topic with franz-go; then kills the worker in the
// middle of a restore.
func TestDistributedRestore(t *testing.T) {
	vast := vastdata.VASTDir(t)
	c := newCluster(t, vast)
	a := c.startAPI("api-1")
	b := c.startAPI("api-2")
	worker, workerURL := c.startWorker("worker")

	var first, added runView
	ok := t.Run("restore scenario", func(t *testing.T) {
		a.T, b.T = t, t
		defer func() { a.T, b.T = c.t, c.t }()
		a.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs",
			map[string]string{"name": runName, "description": "restore over kafka", "config": vastConfig("01", "02", "03")}, nil)
		b.Must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs",
			map[string]string{"name": runName, "config": vastConfig("01")}, nil)
		b.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/process", map[string]bool{"debug": false}, nil)
		first = a.waitStatus(runName, "Completed", "Error")
		if first.Status != "Completed" || first.NImages != 3 {
			t.Fatalf("first processing: %s with %d images", first.Status, first.NImages)
		}

		b.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+runName+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
		var proc struct {
			Mode string `json:"mode"`
		}
		a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/process", map[string]bool{}, &proc)
		if proc.Mode != "add" {
			t.Fatalf("processing after adding epoch 04 is in %q mode, want add", proc.Mode)
		}
		added = b.waitStatus(runName, "Completed", "Error")
		if added.Status != "Completed" || added.NImages != 4 || !added.RestoreAvailable {
			t.Fatalf("after the addition: %s with %d images, restore available %v", added.Status, added.NImages, added.RestoreAvailable)
		}
		b.Must(http.StatusForbidden, "bob", http.MethodPost, "/api/v1/runs/"+runName+"/restore", map[string]bool{}, nil)

		// A restore whose backup was tampered with fails, says why, and
		// changes nothing.
		victim := first.Products[0]
		restoreArtifact := replaceArtifact(t, c.dataDir, victim.Digest, func(path string, content []byte) error {
			return os.WriteFile(path, append([]byte("tampered"), content...), 0o444)
		})
		a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/restore", map[string]bool{}, nil)
		failed := b.waitStatus(runName, "Completed", "Error")
		if failed.Status != "Completed" || failed.NImages != 4 || !failed.RestoreAvailable || fmt.Sprint(failed.Products) != fmt.Sprint(added.Products) {
			t.Fatalf("after a failed restore: %s with %d images, restore available %v", failed.Status, failed.NImages, failed.RestoreAvailable)
		}
		if log := b.logText(runName, failed.Logs[0].Name); !strings.Contains(log, "ERROR Restore failed") || !strings.Contains(log, victim.Name) {
			t.Fatalf("failed restore log does not give the reason:\n%s", log)
		}
		restoreArtifact()

		// Simultaneous restore requests on both replicas: one wins.
		codes := make([]int, 16)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				on := a
				if i%2 == 1 {
					on = b
				}
				codes[i], _ = on.Do("alice", http.MethodPost, "/api/v1/runs/"+runName+"/restore", map[string]bool{"debug": true}, nil)
			}()
		}
		wg.Wait()
		accepted := 0
		for _, code := range codes {
			switch code {
			case http.StatusAccepted:
				accepted++
			case http.StatusConflict:
			default:
				t.Errorf("simultaneous restore got status %d", code)
			}
		}
		if accepted != 1 {
			t.Fatalf("%d of %d simultaneous restores on two replicas were accepted, want 1 (%v)", accepted, len(codes), codes)
		}
		restored := a.waitStatus(runName, "Completed", "Error")
		if restored.Status != "Completed" || restored.NImages != 3 || restored.RestoreAvailable {
			t.Fatalf("after the restore: %s with %d images, restore available %v", restored.Status, restored.NImages, restored.RestoreAvailable)
		}
		if fmt.Sprint(restored.Products) != fmt.Sprint(first.Products) {
			t.Fatal("restored products are not the pre-addition ones")
		}
		if restored.Logs[0].Kind != "restore" {
			t.Fatalf("newest log is %+v, want the restore log", restored.Logs[0])
		}
		if log := b.logText(runName, restored.Logs[0].Name); !strings.Contains(log, "INFO Restore complete") || !strings.Contains(log, " DEBUG ") {
			t.Fatalf("debug restore log lacks DEBUG lines or the outcome:\n%s", log)
		}

		// Add again, then restore with the CLI, as restorepiperun does.
		a.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+runName+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
		b.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/process", map[string]bool{}, nil)
		if v := a.waitStatus(runName, "Completed", "Error"); v.Status != "Completed" || v.NImages != 4 {
			t.Fatalf("second addition: %s with %d images", v.Status, v.NImages)
		}
		out, err := exec.Command(binary, "restorepiperun", runName, "--no-confirm", "--server", b.URL, "--token", c.tokens["alice"]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "epoch03.fits") || !strings.Contains(string(out), "Restore complete") {
			t.Fatalf("piperun restorepiperun: %v\n%s", err, out)
		}
		if v := a.Run(runName); v.Status != "Completed" || v.NImages != 3 {
			t.Fatalf("after the CLI restore: %s with %d images", v.Status, v.NImages)
		}

		// An addition whose processing fails leaves the run in Error with
		// its backup; the restore brings back the pre-addition run.
		b.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+runName+"/config", map[string]string{"config": vastConfig("01", "02", "03", "-invalid")}, nil)
		a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/process", map[string]bool{}, nil)
		if v := b.waitStatus(runName, "Completed", "Error"); v.Status != "Error" || !v.RestoreAvailable {
			t.Fatalf("failed addition: %s, restore available %v", v.Status, v.RestoreAvailable)
		}
		a.Must(http.StatusAccepted, "root", http.MethodPost, "/api/v1/runs/"+runName+"/restore", map[string]bool{}, nil)
		if v := b.waitStatus(runName, "Completed", "Error"); v.Status != "Completed" || v.NImages != 3 || fmt.Sprint(v.Products) != fmt.Sprint(first.Products) {
			t.Fatalf("restore after the failed addition: %s with %d images", v.Status, v.NImages)
		}
		evs := a.events(runName)
		if n := countType(evs, domain.TypeRunRestored, 0); n != 3 {
			t.Fatalf("%d %s events, want 3", n, domain.TypeRunRestored)
		}
		if n := countType(evs, domain.TypeRestoreFailed, 0); n != 1 {
			t.Fatalf("%d %s events, want 1", n, domain.TypeRestoreFailed)
		}

		for _, r := range []*api{a, b} {
			if code, body := r.get("/readyz"); code != http.StatusOK {
				t.Errorf("%s /readyz: %d %s", r.Proc.Name, code, body)
			}
		}
		_, apiMetrics := a.get("/metrics")
		if v := metric(apiMetrics, "piperun_relay_published_total"); v < 1 {
			t.Errorf("api-1 published %v events:\n%s", v, grep(apiMetrics, "piperun_"))
		}
		if code, body := httpGet(t, workerURL+"/readyz"); code != http.StatusOK {
			t.Errorf("worker /readyz: %d %s", code, body)
		}
		var m string
		e2ekit.WaitFor(t, 10*time.Second, "the worker's metrics to count the restore", func() bool {
			_, m = httpGet(t, workerURL+"/metrics")
			return metric(m, `piperun_restore_duration_seconds_count{outcome="restored"}`) == 3 &&
				metric(m, `piperun_restore_duration_seconds_count{outcome="failed"}`) == 1 &&
				metric(m, `piperun_messages_consumed_total{type="run.restore_requested.v1"}`) >= 1
		}, func() string { return grep(m, "piperun_") })
	})
	if !ok {
		t.FailNow()
	}

	ok = t.Run("kgo reads the run's events as CloudEvents", func(t *testing.T) {
		a.T = t
		defer func() { a.T = c.t }()
		rd := e2ekit.StartReader(t, c.broker.Addr)
		stored := a.events(runName)
		var recs []*kgo.Record
		e2ekit.WaitFor(t, 30*time.Second, "every event of the run on the topic", func() bool {
			recs = firstCopies(t, rd.Records(), runName)
			return len(recs) >= len(stored)
		})
		if len(recs) != len(stored) {
			t.Fatalf("%d events of the run on the topic, %d in the store", len(recs), len(stored))
		}
		// The two replicas are in the relay group: the one assigned its
		// control partition publishes, the other stands by, so with both
		// alive no event is on the topic twice.
		if raw := countKey(rd.Records(), runName); raw != len(recs) {
			t.Fatalf("%d records of the run on the topic for %d events: the log was published twice", raw, len(recs))
		}
		requested, restoredAt := -1, -1
		for i, r := range recs {
			want := stored[i]
			if got := e2ekit.Header(r, "ce_type") + "/" + e2ekit.Header(r, "ce_piperunversion") + "/" + e2ekit.Header(r, "ce_piperunposition"); got != fmt.Sprintf("%s/%d/%d", want.Type, want.Version, want.Position) {
				t.Fatalf("record %d is %s, the store's event %d is %+v: not in order", i, got, i, want)
			}
			if string(r.Key) != runName || e2ekit.Header(r, "ce_specversion") != "1.0" || e2ekit.Header(r, "ce_source") != "piperun" ||
				e2ekit.Header(r, "ce_subject") != runName || e2ekit.Header(r, "content-type") != "application/json" || e2ekit.Header(r, "ce_id") == "" {
				t.Fatalf("record %d lacks the CloudEvents headers or the key: key %q headers %v", i, r.Key, r.Headers)
			}
			if _, err := time.Parse(time.RFC3339Nano, e2ekit.Header(r, "ce_time")); err != nil {
				t.Errorf("record %d: ce_time: %v", i, err)
			}
			if !json.Valid(r.Value) {
				t.Errorf("record %d: body is not JSON: %s", i, r.Value)
			}
			for _, h := range r.Headers {
				if !strings.HasPrefix(h.Key, "ce_") && h.Key != "content-type" {
					t.Errorf("record %d has a header %q that is not CloudEvents", i, h.Key)
				}
			}
			switch e2ekit.Header(r, "ce_type") {
			case domain.TypeRestoreRequested:
				requested = i
			case domain.TypeRunRestored:
				restoredAt = i
			}
		}
		if requested < 0 || restoredAt < requested {
			t.Fatalf("restore requested at record %d, restored at %d: want both, in that order", requested, restoredAt)
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("worker killed mid-restore", func(t *testing.T) {
		a.T, b.T = t, t
		defer func() { a.T, b.T = c.t, c.t }()
		a.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+runName+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
		a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/process", map[string]bool{}, nil)
		if v := b.waitStatus(runName, "Completed", "Error"); v.Status != "Completed" || !v.RestoreAvailable {
			t.Fatalf("second addition: %s, restore available %v", v.Status, v.RestoreAvailable)
		}

		// A backup artifact becomes a named pipe that nobody writes: the
		// worker's check of the backup blocks opening it, for ever. Once
		// the worker has taken the request (its metrics count it), it is
		// somewhere between the start of the restore and that pipe.
		restoreArtifact := replaceArtifact(t, c.dataDir, first.Products[0].Digest, func(p string, _ []byte) error {
			return syscall.Mkfifo(p, 0o644)
		})
		const taken = `piperun_messages_consumed_total{type="run.restore_requested.v1"}`
		_, m := httpGet(t, workerURL+"/metrics")
		takenBefore := metric(m, taken)
		before := a.Run(runName).Version
		b.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+runName+"/restore", map[string]bool{}, nil)
		e2ekit.WaitFor(t, 30*time.Second, "the worker to take the restore request", func() bool {
			_, m = httpGet(t, workerURL+"/metrics")
			return metric(m, taken) > takenBefore
		}, func() string { return grep(m, "piperun_") })
		worker.Kill()
		if v := a.Run(runName); v.Status != "Restoring" {
			t.Fatalf("run is %s after the worker died mid-restore, want Restoring", v.Status)
		}
		restoreArtifact()

		worker, _ = c.startWorker("worker (restarted)")
		done := a.waitStatus(runName, "Completed", "Error")
		if done.Status != "Completed" || done.NImages != 3 || done.RestoreAvailable {
			t.Fatalf("restore after the restart: %s with %d images, restore available %v", done.Status, done.NImages, done.RestoreAvailable)
		}
		// Once the group has committed everything, the redelivered request
		// has been handled too: still exactly one outcome.
		cfg := kafka.Config{Brokers: []string{c.broker.Addr}}
		e2ekit.WaitFor(t, 60*time.Second, "the consumer group to catch up", func() bool {
			lag, err := kafka.GroupLag(context.Background(), cfg)
			return err == nil && lag.Waiting == 0
		})
		evs := a.events(runName)
		if n := countType(evs, domain.TypeRunRestored, before); n != 1 {
			t.Fatalf("%d %s events after the restore request, want exactly 1", n, domain.TypeRunRestored)
		}
		if n := countType(evs, domain.TypeRestoreFailed, before); n != 0 {
			t.Fatalf("%d %s events after the restore request", n, domain.TypeRestoreFailed)
		}
		rd := e2ekit.StartReader(t, c.broker.Addr)
		e2ekit.WaitFor(t, 30*time.Second, "the outcome on the topic", func() bool {
			n := 0
			for _, r := range firstCopies(t, rd.Records(), runName) {
				v, _ := strconv.ParseInt(e2ekit.Header(r, "ce_piperunversion"), 10, 64)
				if v > before && e2ekit.Header(r, "ce_type") == domain.TypeRunRestored {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("%d distinct %s events on the topic after the request", n, domain.TypeRunRestored)
			}
			return n == 1
		})
	})
}

// TestBrokerRestartWhilePublishing stops the broker while events are being
// appended and published, and starts it again on the same port: every
// event reaches the topic, in order per run.
func TestBrokerRestartWhilePublishing(t *testing.T) {
	vast := vastdata.VASTDir(t)
	c := newCluster(t, vast)
	a := c.startAPI("api")
	c.startWorker("worker")
	rd := e2ekit.StartReader(t, c.broker.Addr)

	runs := []string{"r0", "r1", "r2", "r3"}
	for _, r := range runs {
		a.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": r, "config": vastConfig("01", "02")}, nil)
	}
	// Each configuration change is one event of its run.
	changes := 0
	change := func() {
		r := runs[changes%len(runs)]
		cfg := vastConfig("01", "02")
		if (changes/len(runs))%2 == 0 {
			cfg = vastConfig("01", "02", "03")
		}
		a.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+r+"/config", map[string]string{"config": cfg}, nil)
		changes++
	}
	for range 12 {
		change()
	}
	e2ekit.WaitFor(t, 30*time.Second, "the first events on the topic", func() bool { return len(rd.Records()) >= 8 })

	c.broker.Stop()
	for range 12 {
		change()
	}
	// The API replica stays ready: its commands are stored and relayed
	// once the broker is back. /healthz tells what is wrong, and the lag.
	var h healthView
	e2ekit.WaitFor(t, 60*time.Second, "/healthz to report the broker down", func() bool {
		h = a.health()
		return h.Bus.Broker == "down" && h.Bus.Lag > 0
	}, func() string { return fmt.Sprintf("%+v", h) })
	if code, body := a.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of the API replica while the broker is down: %d %s", code, body)
	}
	lagBefore := h.Bus.Lag
	for range 4 {
		change()
	}
	// Let the relay group's membership fail a few times (the leader loses
	// its session with the broker, and with it the leadership), so that it
	// is the rejoining, not one lucky reconnect, that brings the events
	// over. The metrics tell the same as /healthz.
	var m string
	e2ekit.WaitFor(t, 60*time.Second, "the metrics to show the broker down and the lag", func() bool {
		_, m = a.get("/metrics")
		return metric(m, "piperun_kafka_up") == 0 && metric(m, "piperun_relay_lag_events") >= float64(lagBefore+4)
	}, func() string { return grep(m, "piperun_") })
	a.Proc.Await(60*time.Second, "the relay group to be rejoined in vain", func(log string) bool {
		return strings.Count(log, `msg="consumer group membership failed; will rejoin" component=relay`) >= 3
	})
	if h = a.health(); h.Bus.Lag < lagBefore+4 || h.Bus.LastPublishError == "" && h.Bus.BrokerError == "" {
		t.Fatalf("/healthz after 4 more changes with the broker down: %+v (lag was %d)", h, lagBefore)
	}
	if code, body := a.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of the API replica while the broker is down: %d %s", code, body)
	}
	c.broker.Start()
	for range 8 {
		change()
	}

	want := map[string][]eventView{}
	total := 0
	for _, r := range runs {
		want[r] = a.events(r)
		total += len(want[r])
	}
	e2ekit.WaitFor(t, 60*time.Second, "every event on the topic", func() bool {
		n := 0
		recs := rd.Records()
		for _, r := range runs {
			n += len(firstCopies(t, recs, r))
		}
		return n >= total
	})
	recs := rd.Records()
	for _, r := range runs {
		got := firstCopies(t, recs, r)
		if len(got) != len(want[r]) {
			t.Fatalf("run %s: %d events on the topic, %d in the store", r, len(got), len(want[r]))
		}
		for i, rec := range got {
			w := want[r][i]
			if g := e2ekit.Header(rec, "ce_type") + "/" + e2ekit.Header(rec, "ce_piperunversion") + "/" + e2ekit.Header(rec, "ce_piperunposition"); g != fmt.Sprintf("%s/%d/%d", w.Type, w.Version, w.Position) {
				t.Fatalf("run %s: record %d is %s, want %+v", r, i, g, w)
			}
		}
	}
	// piperun's own consumer group recovers too.
	cfg := kafka.Config{Brokers: []string{c.broker.Addr}}
	e2ekit.WaitFor(t, 60*time.Second, "the workers' consumer group to catch up", func() bool {
		lag, err := kafka.GroupLag(context.Background(), cfg)
		return err == nil && lag.Waiting == 0
	})
	e2ekit.WaitFor(t, 60*time.Second, "/healthz to report the broker up and no lag", func() bool {
		h = a.health()
		return h.Bus.Broker == "up" && h.Bus.Lag == 0 && h.Bus.Relay == "leader"
	}, func() string { return fmt.Sprintf("%+v", h) })
}

// healthView is /healthz as the tests read it.
type healthView struct {
	Status string `json:"status"`
	Bus    struct {
		Role             string `json:"role"`
		Relay            string `json:"relay"`
		Lag              int64  `json:"lag"`
		Broker           string `json:"broker"`
		BrokerError      string `json:"broker_error"`
		LastPublishError string `json:"last_publish_error"`
		DeadLetters      int64  `json:"dead_letters"`
	} `json:"bus"`
}

func (a *api) health() healthView {
	a.T.Helper()
	code, body := a.get("/healthz")
	var h healthView
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK {
		a.T.Fatalf("/healthz: %d %s (%v)", code, body, err)
	}
	return h
}

// replaceArtifact replaces the stored file of an artifact with what put
// writes at its path, and returns a function that puts the original back.
func replaceArtifact(t *testing.T, dataDir, digest string, put func(path string, content []byte) error) func() {
	t.Helper()
	path := filepath.Join(dataDir, "artifacts", "sha256", digest[7:9], digest[9:])
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("artifact %s is not where the artifact store keeps it: %v", digest, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := put(path, content); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

func countType(evs []eventView, typ string, after int64) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && e.Version > after {
			n++
		}
	}
	return n
}

// metric returns the value of a sample line of Prometheus' text format, or
// -1.
func metric(text, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLiveWorkerTakesUpADeadWorkersJob runs two worker processes in the
// consumer group. One of them runs a processing job and is held there (the
// job adds an image, and the previous run's images product is a named pipe
// nobody writes: inputs that are not regular files are refused, products
// are not checked that way); the other, looking for abandoned work every
// 300 ms, leaves the job alone, since the first owns the run's partition. When the
// first is killed, the second takes the job up and finishes it, with
// nothing restarted.
func TestLiveWorkerTakesUpADeadWorkersJob(t *testing.T) {
	vast := vastdata.VASTDir(t)
	images := t.TempDir()
	if err := os.MkdirAll(filepath.Join(images, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"01", "02"} {
		for _, suffix := range []string{".fits", ".selavy.components.txt", ".noiseMap.fits", ".meanMap.fits"} {
			name := "epoch" + e + suffix
			b, err := os.ReadFile(filepath.Join(vast, "data", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(images, "data", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := newCluster(t, images)
	a := c.startAPI("api")
	w1, _ := c.startWorker("worker-1", "--recover-every", "300ms")
	w2, _ := c.startWorker("worker-2", "--recover-every", "300ms")
	const run = "takeover"
	a.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01")}, nil)
	a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
	first := a.waitStatus(run, "Completed", "Error")
	if first.Status != "Completed" {
		t.Fatalf("first job: %s", first.Status)
	}
	var imagesProduct string
	for _, p := range first.Products {
		if p.Name == "images.parquet" {
			imagesProduct = p.Digest
		}
	}
	if imagesProduct == "" {
		t.Fatalf("the first job's products have no images.parquet: %+v", first.Products)
	}
	// Adding an image reads the previous images product first.
	restoreArtifact := replaceArtifact(t, c.dataDir, imagesProduct, func(p string, _ []byte) error {
		return syscall.Mkfifo(p, 0o644)
	})
	a.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02")}, nil)
	a.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
	var runner, other *e2ekit.Proc
	e2ekit.WaitFor(t, 60*time.Second, "a worker to reach the pipe", func() bool {
		for _, p := range [][2]*e2ekit.Proc{{w1, w2}, {w2, w1}} {
			if testserver.BlockedOnPipe(p[0].Cmd.Process.Pid) {
				runner, other = p[0], p[1]
				return true
			}
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond) // five of the other's recovery rounds
	if testserver.BlockedOnPipe(other.Cmd.Process.Pid) {
		t.Fatalf("%s took up the job %s runs", other.Name, runner.Name)
	}
	if v := a.Run(run); v.Status != "Running" {
		t.Fatalf("run is %s while %s runs its job, want Running", v.Status, runner.Name)
	}
	runner.Kill()
	restoreArtifact()
	done := a.waitStatus(run, "Completed", "Error")
	if done.Status != "Completed" || done.NImages != 2 {
		t.Fatalf("after %s died: %s with %d images", runner.Name, done.Status, done.NImages)
	}
	if n := countType(a.events(run), domain.TypeProcessingCompleted, first.Version); n != 1 {
		t.Fatalf("%d %s events, want 1", n, domain.TypeProcessingCompleted)
	}
}

// countKey counts the records with key.
func countKey(recs []*kgo.Record, key string) int {
	n := 0
	for _, r := range recs {
		if string(r.Key) == key {
			n++
		}
	}
	return n
}

// TestRelayFailover runs two API replicas: one leads the relay group and
// relays the log to Kafka, the other stands by. When the leader is
// killed, the other takes the relay over (after the group's session
// timeout), resumes after the group's checkpoint, not from the start of
// the log, and events appended after the kill reach the topic.
func TestRelayFailover(t *testing.T) {
	vast := vastdata.VASTDir(t)
	c := newCluster(t, vast)
	a := c.startAPI("api-1")
	b := c.startAPI("api-2")
	rd := e2ekit.StartReader(t, c.broker.Addr)
	const run = "failover"
	var leader, standby *api
	e2ekit.WaitFor(t, 60*time.Second, "one replica to lead the relay group and the other to stand by", func() bool {
		ha, hb := a.health(), b.health()
		switch {
		case ha.Bus.Relay == "leader" && hb.Bus.Relay == "standby":
			leader, standby = a, b
		case hb.Bus.Relay == "leader" && ha.Bus.Relay == "standby":
			leader, standby = b, a
		}
		return leader != nil
	})
	standby.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02")}, nil)
	e2ekit.WaitFor(t, 30*time.Second, "the run's creation on the topic", func() bool { return len(firstCopies(t, rd.Records(), run)) == 1 })
	// Once the leader has checkpointed it, a takeover must not publish
	// it again.
	e2ekit.WaitFor(t, 30*time.Second, "the leader to checkpoint the creation", func() bool { return leader.health().Bus.Lag == 0 })
	_, sm := standby.get("/metrics")
	if v := metric(sm, "piperun_relay_published_total"); v != 0 || standby.health().Bus.Relay != "standby" {
		t.Fatalf("the standby published %v events, or does not stand by", v)
	}
	leader.Proc.Kill()
	standby.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02", "03")}, nil)
	stored := standby.events(run)
	e2ekit.WaitFor(t, 60*time.Second, "the event appended after the kill on the topic", func() bool {
		return len(firstCopies(t, rd.Records(), run)) == len(stored)
	}, func() string { return standby.Proc.Tail(20) })
	if h := standby.health(); h.Bus.Relay != "leader" {
		t.Fatalf("/healthz of the new leader: %+v", h)
	}
	resumed := strings.Contains(standby.Proc.Log(), `msg="relay resumes after the group's checkpoint"`)
	if !resumed {
		t.Fatalf("the new leader did not resume after the group's checkpoint:\n%s", standby.Proc.Tail(20))
	}
	if n := countKey(rd.Records(), run); n != len(stored) {
		t.Fatalf("%d records of the run on the topic for %d events: the takeover published the log again", n, len(stored))
	}
}
