package distributed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/piperun/piperun/artifacts/artifactstest"
	"github.com/piperun/piperun/eventstore/esdb/esdbfake"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/server"
)

// binary is the piperun binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	path, cleanup, err := testserver.BuildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binary = path
	return m.Run()
}

// broker is a kfake cluster of one broker that keeps its log in a
// directory, so that it can be stopped and started again on its port
// with everything it had acknowledged.
type broker struct {
	t    *testing.T
	dir  string
	port int
	addr string
	c    *kfake.Cluster
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, dir: t.TempDir()}
	b.start()
	b.addr = b.c.ListenAddrs()[0]
	p, err := strconv.Atoi(b.addr[strings.LastIndex(b.addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	b.port = p
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(b.dir)}
	if b.port != 0 {
		opts = append(opts, kfake.Ports(b.port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.t.Fatalf("start kfake: %v", err)
	}
	b.c = c
}

func (b *broker) stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// proc is a piperun subprocess.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
}

// startProc starts the binary with env added to the test's and args, and
// waits until its log has a line matching ready; it returns the
// submatches of that line.
func startProc(t *testing.T, name string, ready *regexp.Regexp, env []string, args ...string) (*proc, []string) {
	t.Helper()
	p := &proc{t: t, name: name}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "PIPERUN_KAFKA_BROKERS=", "PIPERUN_KAFKA_TOPIC=", "PIPERUN_WORKERS=",
		"PIPERUN_METRICS_ADDR=", "PIPERUN_ESDB_URL=", "PIPERUN_ARTIFACTS_URL=", "PIPERUN_SESSION_KEY_FILE="), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !testserver.Stop(p.cmd, p.done, 20*time.Second) {
			t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		}
		if t.Failed() || os.Getenv("PIPERUN_E2E_LOGS") != "" {
			t.Logf("log of %s:\n%s", p.name, p.tail(60))
		}
	})
	var m []string
	waitFor(t, 60*time.Second, name+" to start", func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before it started; log:\n%s", name, cmd.ProcessState, p.tail(60))
		default:
		}
		m = ready.FindStringSubmatch(p.logText())
		return m != nil
	})
	return p, m
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

var (
	servingLine = regexp.MustCompile(`msg="piperun serving" url=(http://\S+)`)
	workerLine  = regexp.MustCompile(`msg="piperun metrics" url=(http://\S+)/metrics[\s\S]*msg="piperun worker running"`)
)

// deployment is distributed mode as deployed: services that share the
// event store, Kafka and the bucket, and no directory.
type deployment struct {
	t      *testing.T
	esdb   string
	broker *broker
	s3     *artifactstest.S3
	vast   string
	tokens map[string]string
	dirs   []string // every process's directories, to check none is shared
}

// newDeployment starts the shared services (a real EventStoreDB when
// PIPERUN_TEST_ESDB_URL is set) and adds the users.
func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{t: t, broker: startBroker(t), s3: artifactstest.NewS3(t), vast: vastdata.VASTDir(t), tokens: map[string]string{}}
	d.esdb = os.Getenv("PIPERUN_TEST_ESDB_URL")
	if d.esdb == "" {
		f := esdbfake.New("127.0.0.1:0")
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Stop)
		d.esdb = f.URL()
	}
	// User names unique to this test, for a real server that outlives it.
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"root", true}} {
		tok, err := server.AddUser(context.Background(), server.Storage{DataDir: t.TempDir(), ESDBURL: d.esdb, ArtifactsURL: d.s3.URL}, u.name+"-"+suffix, u.admin)
		if err != nil {
			t.Fatalf("add user %s: %v", u.name, err)
		}
		d.tokens[u.name] = tok
	}
	return d
}

// ownDirs makes a process's data directory and its own copy of the input
// images.
func (d *deployment) ownDirs() (data, images string) {
	d.t.Helper()
	data, images = d.t.TempDir(), d.t.TempDir()
	src := filepath.Join(d.vast, "data")
	entries, err := os.ReadDir(src)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(images, "data"), 0o755); err != nil {
		d.t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			d.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(images, "data", e.Name()), b, 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	d.dirs = append(d.dirs, data, images)
	return data, images
}

func (d *deployment) args(data, images string) []string {
	return []string{"--data-dir", data, "--images-dir", images, "--esdb-url", d.esdb, "--artifacts-url", d.s3.URL, "--kafka-brokers", d.broker.addr}
}

// startAPI starts an API replica that relays but runs no workers.
func (d *deployment) startAPI(name string) *api {
	d.t.Helper()
	data, images := d.ownDirs()
	p, m := startProc(d.t, name, servingLine, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--workers=false"}, d.args(data, images)...)...)
	return &api{t: d.t, proc: p, url: m[1], tokens: d.tokens}
}

// startWorker starts a worker process that signs its requests to the
// bucket with its own name as access key id (so that the bucket tells
// which worker reads); periodic recovery is rare, so that a takeover
// comes from the consumer group.
func (d *deployment) startWorker(name string) *proc {
	d.t.Helper()
	data, images := d.ownDirs()
	args := append([]string{"worker", "--metrics-addr", "127.0.0.1:0", "--recover-every", "10m"}, d.args(data, images)...)
	p, _ := startProc(d.t, name, workerLine, []string{"AWS_ACCESS_KEY_ID=" + name}, args...)
	return p
}

// api is an API replica.
type api struct {
	t      *testing.T
	proc   *proc
	url    string
	tokens map[string]string
}

func (a *api) do(user, method, path string, body, out any) (int, []byte) {
	a.t.Helper()
	return testserver.Do(a.t, a.url, a.tokens[user], method, path, body, out)
}

func (a *api) must(want int, user, method, path string, body, out any) []byte {
	a.t.Helper()
	code, raw := a.do(user, method, path, body, out)
	if code != want {
		a.t.Fatalf("%s %s on %s as %s: status %d, want %d: %s", method, path, a.proc.name, user, code, want, raw)
	}
	return raw
}

type runView = testserver.RunView

func (a *api) run(name string) runView {
	a.t.Helper()
	var v runView
	a.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	return v
}

// waitStatus polls the run until its status is one of want.
func (a *api) waitStatus(name string, want ...string) runView {
	a.t.Helper()
	var v runView
	waitFor(a.t, 90*time.Second, fmt.Sprintf("run %s to be %v", name, want), func() bool {
		code, _ := a.do("alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
		for _, w := range want {
			if code == http.StatusOK && v.Status == w {
				return true
			}
		}
		return false
	}, func() string { return "status " + v.Status })
	return v
}

type eventView struct {
	Version int64  `json:"version"`
	Type    string `json:"type"`
}

func (a *api) events(name string) []eventView {
	a.t.Helper()
	var out struct {
		Events []eventView `json:"events"`
	}
	a.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &out)
	return out.Events
}

// relayLag reads the replica's piperun_relay_lag_events: the events of
// the log it has still to publish (none when it stands by).
func (a *api) relayLag() int {
	a.t.Helper()
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^piperun_relay_lag_events (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -1
	}
	return int(v)
}

// relayLeader reports whether the replica leads the relay group now
// (its piperun_relay_leader gauge).
func (a *api) relayLeader() bool {
	a.t.Helper()
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return regexp.MustCompile(`(?m)^piperun_relay_leader 1$`).Match(b)
}

// reader is an independent consumer of the topic: franz-go, not piperun.
type reader struct {
	mu   sync.Mutex
	recs []*kgo.Record
}

func startReader(t *testing.T, brokers ...string) *reader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(messaging.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			r.mu.Lock()
			fs.EachRecord(func(rec *kgo.Record) { r.recs = append(r.recs, rec) })
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return r
}

// copies counts the records of each event of run, by version.
func (r *reader) copies(run string) map[int64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int64]int{}
	for _, rec := range r.recs {
		if string(rec.Key) == run {
			v, _ := strconv.ParseInt(header(rec, messaging.MetaVersion), 10, 64)
			out[v]++
		}
	}
	return out
}

// versions returns the run's event versions in topic order, each event
// once (its first copy).
func (r *reader) versions(run string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []int64
	for _, rec := range r.recs {
		id := header(rec, messaging.MetaID)
		if string(rec.Key) != run || seen[id] {
			continue
		}
		seen[id] = true
		v, _ := strconv.ParseInt(header(rec, messaging.MetaVersion), 10, 64)
		out = append(out, v)
	}
	return out
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// waitFor polls cond until it holds; explain, if given, says what was
// seen when it times out.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var seen []string
			for _, f := range explain {
				seen = append(seen, f())
			}
			t.Fatalf("timed out after %s waiting for %s\n%s", limit, what, strings.Join(seen, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vastConfig is a VAST run configuration over epochs of the test data.
func vastConfig(epochs ...string) string { return testserver.VASTConfig("distributed_run", epochs...) }
