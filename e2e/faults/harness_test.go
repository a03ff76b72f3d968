//go:build unix

package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/internal/syncbuf"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
)

// cluster is a data directory with users, served by one `piperun serve`
// subprocess at a time: the tests kill it and start it again.
type cluster struct {
	t       *testing.T
	dataDir string
	images  string
	tokens  map[string]string
	client  *http.Client

	srv *proc
	url string
	// pre holds each armed run as it was before its addition.
	pre map[string]runView

	// logs is everything every server wrote on stderr, checked for tokens
	// when the test ends.
	logMu sync.Mutex
	logs  bytes.Buffer
}

// newCluster creates users alice and bob and the administrator root with
// `piperun user add`, then starts the server over the VAST test data.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterIn(t, t.TempDir())
}

// newClusterIn is newCluster on the data directory dataDir.
func newClusterIn(t *testing.T, dataDir string) *cluster {
	t.Helper()
	return newClusterOn(t, dataDir, vastdata.VASTDir(t))
}

// newClusterOn is newCluster on the data directory dataDir, serving the
// images under images (laid out as the VAST test data: data/epochNN.*).
func newClusterOn(t *testing.T, dataDir, images string) *cluster {
	t.Helper()
	c := &cluster{
		t: t, dataDir: dataDir, images: images, tokens: map[string]string{},
		client: &http.Client{Timeout: 30 * time.Second}, pre: map[string]runView{},
	}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		args := []string{"user", "add", u.name, "--data-dir", c.dataDir}
		if u.admin {
			args = append(args, "--admin")
		}
		out, err := c.command(args...).Output()
		if err != nil {
			t.Fatalf("piperun %s: %v %s", strings.Join(args, " "), err, stderrOf(err))
		}
		c.tokens[u.name] = strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		if c.srv != nil {
			c.srv.stop()
		}
		c.logMu.Lock()
		logs := c.logs.String()
		c.logMu.Unlock()
		for user, tok := range c.tokens {
			if strings.Contains(logs, tok) {
				t.Errorf("the API token of %s appears in the server's log", user)
			}
		}
		if t.Failed() || os.Getenv("PIPERUN_E2E_LOGS") != "" {
			t.Logf("server log (last lines):\n%s", lastLines(logs, 80))
		}
	})
	c.start()
	return c
}

// command is the piperun binary with args and a clean environment.
func (c *cluster) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIPERUN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var servingLine = regexp.MustCompile(`msg="piperun serving" url=(http://\S+)`)

// start starts the server and waits until it serves.
func (c *cluster) start() {
	c.t.Helper()
	p := c.launch()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(p.logText()); m != nil {
			c.url = m[1]
			return
		}
		select {
		case <-p.done:
			c.t.Fatalf("piperun serve exited before serving (%v):\n%s", p.cmd.ProcessState, p.logText())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("piperun serve did not serve within 60s:\n%s", p.logText())
		}
	}
}

// launch starts the server process without waiting for it to serve.
func (c *cluster) launch() *proc {
	c.t.Helper()
	p := &proc{cluster: c, done: make(chan struct{})}
	p.cmd = c.command("serve", "--data-dir", c.dataDir, "--images-dir", c.images, "--addr", "127.0.0.1:0")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd.Stdout = &p.stdout
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start piperun serve: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			c.logMu.Lock()
			c.logs.Write(sc.Bytes())
			c.logs.WriteByte('\n')
			c.logMu.Unlock()
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	c.srv = p
	return p
}

// kill ends the server with SIGKILL, as a crash or power cut would.
func (c *cluster) kill() {
	c.t.Helper()
	c.srv.kill()
}

// proc is one server process.
type proc struct {
	cluster *cluster
	cmd     *exec.Cmd
	done    chan struct{}
	stdout  syncbuf.Buffer

	mu  sync.Mutex
	log bytes.Buffer
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.cluster.t.Fatalf("kill piperun serve: %v", err)
	}
	<-p.done
}

func (p *proc) stop() {
	if !testserver.Stop(p.cmd, p.done, 30*time.Second) {
		p.cluster.t.Errorf("piperun serve did not stop within 30s of SIGTERM")
	}
}

// request sends a request as user (no Authorization header if the user is
// unknown) and returns the status and body; a transport error is returned,
// not fatal, since the tests kill the server under requests.
func (c *cluster) request(ctx context.Context, user, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := c.tokens[user]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// do is request that fails the test on a transport error, and decodes a
// 2xx JSON answer into out (if not nil).
func (c *cluster) do(user, method, path string, body, out any) (int, []byte) {
	c.t.Helper()
	code, raw, err := c.request(context.Background(), user, method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && code < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return code, raw
}

// must is do that fails unless the status is want.
func (c *cluster) must(want int, user, method, path string, body, out any) []byte {
	c.t.Helper()
	code, raw := c.do(user, method, path, body, out)
	if code != want {
		c.t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, user, code, want, raw)
	}
	return raw
}

// vastConfig is a VAST run configuration over the given epochs of the
// test data.
func vastConfig(epochs ...string) string {
	var b strings.Builder
	b.WriteString("run:\n  path: faults\ninputs:\n")
	for _, kind := range []struct{ key, suffix string }{
		{"image", ".fits"}, {"selavy", ".selavy.components.txt"},
		{"noise", ".noiseMap.fits"}, {"background", ".meanMap.fits"},
	} {
		fmt.Fprintf(&b, "  %s:\n", kind.key)
		for _, e := range epochs {
			fmt.Fprintf(&b, "  - data/epoch%s%s\n", e, kind.suffix)
		}
	}
	b.WriteString("source_association:\n  method: basic\n  radius: 10.0\n")
	return b.String()
}

// artifactView and runView are the API's, as the tests read them.
type (
	artifactView = testserver.ArtifactView
	runView      = testserver.RunView
)

func (c *cluster) run(name string) runView {
	c.t.Helper()
	var v runView
	c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	return v
}

// settled waits until the run is in none of the statuses that wait for a
// worker, and returns it.
func (c *cluster) settled(name string, limit time.Duration) runView {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v := c.run(name)
		switch v.Status {
		case "Queued", "Running", "Restoring", "Deleting":
		default:
			return v
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %s is still %s after %s", name, v.Status, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// process requests processing and waits for it to complete.
func (c *cluster) process(name string) runView {
	c.t.Helper()
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{}, nil)
	v := c.settled(name, 60*time.Second)
	if v.Status != "Completed" {
		c.t.Fatalf("processing of %s ended %s", name, v.Status)
	}
	return v
}

// eventView is an event as the API returns it.
type eventView struct {
	Version int64           `json:"version"`
	Type    string          `json:"type"`
	Actor   string          `json:"actor"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// events returns the run's stream, read from the event store.
func (c *cluster) events(name string) []eventView {
	c.t.Helper()
	var out struct {
		Events []eventView `json:"events"`
	}
	c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &out)
	return out.Events
}

// audit replays the run's stream through the domain's audit and through
// `piperun audit`, and checks that every event names its actor.
func (c *cluster) audit(name string) {
	c.t.Helper()
	var recs []domain.Recorded
	for _, e := range c.events(name) {
		ev, err := eventjson.Decode(e.Type, e.Data)
		if err != nil {
			c.t.Fatalf("run %s event %d: %v", name, e.Version, err)
		}
		if e.Actor == "" {
			c.t.Errorf("run %s event %d (%s) has no actor", name, e.Version, e.Type)
		}
		recs = append(recs, domain.Recorded{Version: e.Version, Time: e.Time, Actor: e.Actor, Event: ev})
	}
	if findings := domain.Audit(recs); len(findings) > 0 {
		c.t.Fatalf("audit of run %s: %v", name, findings)
	}
	out, err := c.command("audit", name, "--server", c.url, "--token", c.tokens["alice"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "audit passed") {
		c.t.Fatalf("piperun audit %s: %v\n%s", name, err, out)
	}
}

// checkProducts downloads each current product of the run and checks it
// against its digest: no crash may leave the run pointing at products
// that are gone or damaged.
func (c *cluster) checkProducts(v runView) {
	c.t.Helper()
	for _, p := range v.Products {
		raw := c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+v.Name+"/products/"+p.Name, nil, nil)
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != p.Digest {
			c.t.Fatalf("product %s of run %s: content %s, manifest %s", p.Name, v.Name, got, p.Digest)
		}
	}
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
