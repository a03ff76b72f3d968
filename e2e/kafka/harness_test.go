package kafka

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/piperun/piperun/internal/testserver"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
	t.Cleanup(func() { b.stop() })
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
	args []string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
}

// startProc starts the binary with args and waits until its log has a
// line matching ready; it returns the submatches of that line.
func startProc(t *testing.T, name string, ready *regexp.Regexp, args ...string) (*proc, []string) {
	t.Helper()
	p := &proc{t: t, name: name, args: args}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("PIPERUN_E2E_LOGS") != "" {
			t.Logf("log of %s:\n%s", p.name, p.tail(60))
		}
	})
	var m []string
	p.await(60*time.Second, "start", func(log string) bool {
		m = ready.FindStringSubmatch(log)
		return m != nil
	})
	return p, m
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(binary, p.args...)
	cmd.Env = append(os.Environ(), "PIPERUN_KAFKA_BROKERS=", "PIPERUN_KAFKA_TOPIC=", "PIPERUN_WORKERS=", "PIPERUN_METRICS_ADDR=", "PIPERUN_ESDB_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
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
}

// await waits until the process's log satisfies cond.
func (p *proc) await(limit time.Duration, what string, cond func(log string) bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		p.mu.Lock()
		log := p.log.String()
		p.mu.Unlock()
		if cond(log) {
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before %s; log:\n%s", p.name, p.cmd.ProcessState, what, p.tail(60))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %s; log:\n%s", p.name, what, limit, p.tail(60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
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

// stop asks the process to stop and waits for it.
func (p *proc) stop() {
	if !testserver.Stop(p.cmd, p.done, 20*time.Second) {
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
}

var (
	servingLine = regexp.MustCompile(`msg="piperun serving" url=(http://\S+)`)
	workerLine  = regexp.MustCompile(`msg="piperun metrics" url=(http://\S+)/metrics[\s\S]*msg="piperun worker running"`)
)

// cluster is a distributed deployment on one data directory.
type cluster struct {
	t       *testing.T
	broker  *broker
	dataDir string
	images  string
	tokens  map[string]string
}

func newCluster(t *testing.T, images string) *cluster {
	t.Helper()
	c := &cluster{t: t, broker: startBroker(t), dataDir: t.TempDir(), images: images, tokens: map[string]string{}}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		tok, err := server.AddUser(context.Background(), server.Storage{DataDir: c.dataDir}, u.name, u.admin)
		if err != nil {
			t.Fatalf("add user %s: %v", u.name, err)
		}
		c.tokens[u.name] = tok
	}
	return c
}

func (c *cluster) common() []string {
	return []string{"--data-dir", c.dataDir, "--images-dir", c.images, "--kafka-brokers", c.broker.addr}
}

// startAPI starts an API replica that relays but runs no workers.
func (c *cluster) startAPI(name string) *api {
	c.t.Helper()
	p, m := startProc(c.t, name, servingLine, append([]string{"serve", "--addr", "127.0.0.1:0", "--workers=false"}, c.common()...)...)
	return &api{t: c.t, proc: p, url: m[1], tokens: c.tokens}
}

// startWorker starts a worker process, with extra flags; it returns it and
// the URL of its metrics server.
func (c *cluster) startWorker(name string, extra ...string) (*proc, string) {
	c.t.Helper()
	args := append(append([]string{"worker", "--metrics-addr", "127.0.0.1:0"}, c.common()...), extra...)
	p, m := startProc(c.t, name, workerLine, args...)
	return p, m[1]
}

// api is an API replica.
type api struct {
	t      *testing.T
	proc   *proc
	url    string
	tokens map[string]string
}

// do sends a request as user and decodes a JSON answer into out.
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

// runView is a run as the API shows it, read by the tests.
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
	deadline := time.Now().Add(90 * time.Second)
	for {
		v := a.run(name)
		for _, w := range want {
			if v.Status == w {
				return v
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("run %s is %s after 90s, want %v", name, v.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *api) logText(run, name string) string {
	a.t.Helper()
	return string(a.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+run+"/logs/"+name, nil, nil))
}

type eventView struct {
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
	Type     string `json:"type"`
}

func (a *api) events(name string) []eventView {
	a.t.Helper()
	var out struct {
		Events []eventView `json:"events"`
	}
	a.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &out)
	return out.Events
}

func (a *api) get(path string) (int, string) {
	a.t.Helper()
	return httpGet(a.t, a.url+path)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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

func (r *reader) records() []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*kgo.Record(nil), r.recs...)
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// firstCopies returns the run's records in topic order, each event once
// (its first copy: relays on several replicas publish the log each), and
// checks that every copy of an event is the same record.
func firstCopies(t *testing.T, recs []*kgo.Record, run string) []*kgo.Record {
	t.Helper()
	seen := map[string]*kgo.Record{}
	var out []*kgo.Record
	for _, r := range recs {
		if string(r.Key) != run {
			continue
		}
		id := header(r, "ce_id")
		if first, ok := seen[id]; ok {
			if !bytes.Equal(first.Value, r.Value) || header(first, "ce_piperunversion") != header(r, "ce_piperunversion") {
				t.Errorf("two different records with ce_id %s", id)
			}
			continue
		}
		seen[id] = r
		out = append(out, r)
	}
	return out
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
func vastConfig(epochs ...string) string { return testserver.VASTConfig("kafka_run", epochs...) }
