package replicas_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/piperun/piperun/cli"
	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/runconfig"
)

// Backends of the proxy.
const (
	fresh = 0 // replica A: takes the commands, follows the log closely
	stale = 1 // replica B: its projector reads the log once an hour
)

// roundRobin is a reverse proxy that sends each request to the next of its
// backends in turn, as a load balancer does. to sets which one is next, so
// that a test knows which replica serves a request.
type roundRobin struct {
	backends []*url.URL
	next     atomic.Int64
	// served counts the requests each backend served.
	served []atomic.Int64
	URL    string
}

func newRoundRobin(t *testing.T, backends ...string) *roundRobin {
	t.Helper()
	p := &roundRobin{served: make([]atomic.Int64, len(backends))}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		p.backends = append(p.backends, u)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int((p.next.Add(1) - 1) % int64(len(p.backends)))
		p.served[i].Add(1)
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.backends[i])
			pr.Out.Host = pr.In.Host
		}}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// to makes backend i serve the next request.
func (p *roundRobin) to(i int) { p.next.Store(int64(i)) }

// replicas is a service of two API replicas on one shared event store,
// each with its own data directory (read models), behind a round-robin
// proxy. Replica B's projector polls the log once an hour, and B takes no
// command, so nothing wakes it: what it shows is what it read at its start,
// unless a request makes it catch up.
type replicas struct {
	proxy  *roundRobin
	a, b   *testserver.Server
	images string
	tokens map[string]string
}

func startReplicas(t *testing.T) *replicas {
	t.Helper()
	shared := t.TempDir()
	images := testserver.EmptyInputFiles(t, 2)
	opts := testserver.Options{
		EventsPath: filepath.Join(shared, "events.db"), SessionKeyFile: filepath.Join(shared, "session.key"),
		NoWorkers: true, Poll: 20 * time.Millisecond,
	}
	a := testserver.Start(t, images, []testserver.User{{Name: "alice"}}, opts)
	opts.Poll = time.Hour
	b := testserver.Start(t, images, nil, opts)
	if a.DataDir == b.DataDir {
		t.Fatal("the replicas share a data directory")
	}
	return &replicas{proxy: newRoundRobin(t, a.URL, b.URL), a: a, b: b, images: images, tokens: a.Tokens}
}

// config is a valid configuration of run name over the placeholder inputs.
func config(name string) string {
	return runconfig.Render(testserver.PlaceholderInputs(2), name)
}

// TestClientReadsItsWritesOnAnyReplica: a command taken by replica A, then
// a read served by replica B. A client that does not send the command's
// position reads B's stale read models (the run is missing, then Queued is
// still Initialised); the client that sent the command sends its position
// and reads the run as the command left it, every time.
func TestClientReadsItsWritesOnAnyReplica(t *testing.T) {
	rs := startReplicas(t)
	ctx := context.Background()
	c := client.New(rs.proxy.URL, rs.tokens["alice"], nil)
	forgetful := func() *client.Client { return client.New(rs.proxy.URL, rs.tokens["alice"], nil) }

	rs.proxy.to(fresh)
	created, err := c.CreateRun(ctx, "r1", "", config("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Position() <= 0 {
		t.Fatalf("client position after a command: %d, want the command's position", c.Position())
	}

	rs.proxy.to(stale)
	if _, err := forgetful().GetRun(ctx, "r1"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("GET of the new run from replica B without a position: %v; want 404 (B has not read the log since it started)", err)
	}
	rs.proxy.to(stale)
	d, err := c.GetRun(ctx, "r1")
	if err != nil || d.Status != "Initialised" || d.Version != created.Version {
		t.Fatalf("GET of the new run from replica B with the client's position: %+v, %v; want it Initialised at version %d", d, err, created.Version)
	}

	rs.proxy.to(fresh)
	p, err := c.Process(ctx, "r1", false, false)
	if err != nil || p.Position != c.Position() {
		t.Fatalf("process: %+v, %v; want the answer's position %d in its JSON", p, err, c.Position())
	}
	rs.proxy.to(stale)
	if d, err := forgetful().GetRun(ctx, "r1"); err != nil || d.Status != "Initialised" {
		t.Fatalf("GET from replica B without a position after processing was requested: %s, %v; want the stale Initialised", d.Status, err)
	}
	for i := range 4 { // both replicas, twice each
		rs.proxy.to(i % 2)
		if d, err := c.GetRun(ctx, "r1"); err != nil || d.Status != "Queued" {
			t.Fatalf("read %d (replica %d) with the client's position: %s, %v; want Queued", i, i%2, d.Status, err)
		}
	}
	if n := rs.proxy.served[stale].Load(); n != 5 {
		t.Fatalf("replica B served %d requests, want the 5 reads sent to it", n)
	}
}

// TestMinPositionHeader: a position that is not a number is refused with
// 400 before anything is waited for, and a position beyond the log's head
// (from another store, or made up) is taken as the head.
func TestMinPositionHeader(t *testing.T) {
	rs := startReplicas(t)
	for _, v := range []string{"x", "-1", "1.5", "99999999999999999999"} {
		code, body, _ := get(t, rs.b.URL+"/api/v1/runs", rs.tokens["alice"], v)
		if code != http.StatusBadRequest || !strings.Contains(body, `"error"`) || !strings.Contains(body, request.MinPositionHeader) {
			t.Errorf("%s: %q: %d %s; want 400 with a JSON error naming the header", request.MinPositionHeader, v, code, body)
		}
	}
	code, body, took := get(t, rs.b.URL+"/api/v1/runs", rs.tokens["alice"], "1000000")
	if code != http.StatusOK || took >= 2*time.Second {
		t.Fatalf("a position beyond the head: %d after %s: %s; want 200 at once", code, took, body)
	}
}

// get sends GET url with a token and a Piperun-Min-Position header.
func get(t *testing.T, url, token, minPos string) (int, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(request.MinPositionHeader, minPos)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

// TestCLIReadsItsWritesOnAnyReplica: one CLI invocation creates a run
// (through replica A), the next shows it (through replica B). Without the
// position the first remembered, the second finds no run; with it, it
// shows the run.
func TestCLIReadsItsWritesOnAnyReplica(t *testing.T) {
	rs := startReplicas(t)
	cfg := filepath.Join(t.TempDir(), "c1.yaml")
	if err := os.WriteFile(cfg, []byte(config("c1")), 0o600); err != nil {
		t.Fatal(err)
	}
	state, empty := t.TempDir(), t.TempDir()
	piperun := func(stateDir string, args ...string) (int, string) {
		t.Helper()
		t.Setenv(cli.EnvStateDir, stateDir)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		args = append(args, "--server", rs.proxy.URL, "--token", rs.tokens["alice"])
		code := cli.Run(ctx, args, nil, &out, &out)
		return code, out.String()
	}

	rs.proxy.to(fresh)
	if code, out := piperun(state, "initpiperun", "c1", "--config", cfg); code != 0 {
		t.Fatalf("initpiperun: exit %d: %s", code, out)
	}
	rs.proxy.to(stale)
	if code, out := piperun(empty, "status", "c1"); code == 0 || !strings.Contains(out, "c1") {
		t.Fatalf("status through replica B with no remembered position: exit %d: %s; want the run not found there", code, out)
	}
	rs.proxy.to(stale)
	code, out := piperun(state, "status", "c1")
	if code != 0 || !strings.Contains(out, "Initialised") {
		t.Fatalf("status through replica B with the position initpiperun remembered: exit %d: %s; want the run, Initialised", code, out)
	}
}

// browser is a signed-in web session: its cookies, kept by hand so that a
// test can leave the position cookie out.
type browser struct {
	t       *testing.T
	base    string
	cookies map[string]string
	csrf    string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
var runStatus = regexp.MustCompile(`id="run-status" class="[^"]*">([A-Za-z]+)<`)

// do sends a request with the browser's cookies (but the position
// cookie unless withPosition), keeps the cookies the answer sets, and
// returns its status and body. Redirects are not followed.
func (b *browser) do(method, path, contentType string, body io.Reader, header http.Header, withPosition bool) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for name, v := range b.cookies {
		if name == request.PositionCookie && !withPosition {
			continue
		}
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
			continue
		}
		b.cookies[c.Name] = c.Value
	}
	return resp.StatusCode, string(raw)
}

func signIn(t *testing.T, base, token string) *browser {
	t.Helper()
	b := &browser{t: t, base: base, cookies: map[string]string{}}
	code, page := b.do(http.MethodGet, "/login", "", nil, nil, false)
	m := csrfRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("sign-in form: %d: %s", code, page)
	}
	form := url.Values{"csrf": {m[1]}, "next": {"/"}, "token": {token}}
	if code, page := b.do(http.MethodPost, "/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil, false); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d: %s", code, page)
	}
	code, page = b.do(http.MethodGet, "/", "", nil, nil, false)
	if m := metaCSRF.FindStringSubmatch(page); code != http.StatusOK || m == nil {
		t.Fatalf("runs page after signing in: %d: %s", code, page)
	} else {
		b.csrf = m[1]
	}
	return b
}

// TestPagesReadTheirWritesOnAnyReplica: the web pages send commands to
// replica A, by a form (new run) and by the script's fetch (process); the
// answer sets the position cookie, and the run page, loaded from replica
// B, shows the command's effect with the cookie and B's stale read models
// without it.
func TestPagesReadTheirWritesOnAnyReplica(t *testing.T) {
	rs := startReplicas(t)
	b := signIn(t, rs.proxy.URL, rs.tokens["alice"])
	runPage := func(withPosition bool) (int, string) {
		t.Helper()
		rs.proxy.to(stale)
		code, page := b.do(http.MethodGet, "/runs/p1", "", nil, nil, withPosition)
		if m := runStatus.FindStringSubmatch(page); m != nil {
			return code, m[1]
		}
		return code, ""
	}

	rs.proxy.to(fresh)
	form := url.Values{"csrf": {b.csrf}, "name": {"p1"}, "description": {"from the page"}, "config": {config("p1")}}
	code, page := b.do(http.MethodPost, "/runs", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil, true)
	if code != http.StatusSeeOther {
		t.Fatalf("new run form: %d: %s", code, page)
	}
	created, err := strconv.ParseInt(b.cookies[request.PositionCookie], 10, 64)
	if err != nil || created <= 0 {
		t.Fatalf("position cookie after the new run form: %q; want the command's position", b.cookies[request.PositionCookie])
	}
	if code, status := runPage(false); code != http.StatusNotFound {
		t.Fatalf("run page from replica B without the position cookie: %d %s; want 404 (B has not read the log)", code, status)
	}
	if code, status := runPage(true); code != http.StatusOK || status != "Initialised" {
		t.Fatalf("run page from replica B with the position cookie: %d %q; want 200 Initialised", code, status)
	}

	// The run page's script asks for processing with fetch (the session
	// cookie and the CSRF header, no token), as app.js does.
	rs.proxy.to(fresh)
	h := http.Header{}
	h.Set("X-CSRF-Token", b.csrf)
	h.Set("Accept", "application/json")
	if code, body := b.do(http.MethodPost, "/api/v1/runs/p1/process", "application/json", strings.NewReader(`{}`), h, true); code != http.StatusAccepted {
		t.Fatalf("process from the page: %d: %s", code, body)
	}
	if pos, _ := strconv.ParseInt(b.cookies[request.PositionCookie], 10, 64); pos <= created {
		t.Fatalf("position cookie after processing was requested: %d; want beyond the new run's %d", pos, created)
	}
	if code, status := runPage(false); code != http.StatusOK || status != "Initialised" {
		t.Fatalf("run page from replica B without the position cookie: %d %q; want B's stale Initialised", code, status)
	}
	if code, status := runPage(true); code != http.StatusOK || status != "Queued" {
		t.Fatalf("run page from replica B with the position cookie: %d %q; want Queued", code, status)
	}
}
