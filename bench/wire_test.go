package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wireServer is an httptest server that records what it receives.
type wireServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seenRequest
	// conns counts the connections the server accepted.
	conns atomic.Int32
}

type seenRequest struct {
	method, uri, remote string
	header              http.Header
	body                string
	contentLength       int64
}

func newWireServer(t *testing.T, h http.HandlerFunc) *wireServer {
	t.Helper()
	s := &wireServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: read the body: %v", err)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, seenRequest{r.Method, r.RequestURI, r.RemoteAddr, r.Header.Clone(), string(b), r.ContentLength})
		s.mu.Unlock()
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *wireServer) seen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.reqs...)
}

// newWire makes a wire connection to base with token, closed at the end
// of the test.
func newWire(t *testing.T, base string, respondAsync bool) *wireConn {
	t.Helper()
	cl := newClient(base, "tok-123", 1)
	cl.respondAsync = respondAsync
	target, err := newWireTarget(cl)
	if err != nil {
		t.Fatal(err)
	}
	c := target.newConn()
	t.Cleanup(c.Close)
	return c
}

func mustDo(t *testing.T, c *wireConn, method, path string, body any) int {
	t.Helper()
	code, err := c.do(context.Background(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code
}

// TestWireSendsWhatClientDoSends compares the requests the server gets
// from the wire client with those it gets from client.do, with and
// without respond-async, under a base URL with a path.
func TestWireSendsWhatClientDoSends(t *testing.T) {
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	base := srv.URL + "/prefix/"
	type call struct {
		method, path string
		body         any
	}
	calls := []call{
		{http.MethodPost, "/api/v1/runs/r-1/restore", map[string]bool{}},
		{http.MethodPost, "/api/v1/runs", map[string]string{"name": "r-2", "config": "a: <b> & \"c\"\nd: é\u2028\n"}},
		{http.MethodPut, "/api/v1/runs/r-2/config", map[string]string{"config": "x: 1\n"}},
		{http.MethodGet, "/api/v1/runs/r-2", nil},
		{http.MethodPost, "/api/v1/runs/r-2/process", nil},
	}
	for _, async := range []bool{false, true} {
		wc := newWire(t, base, async)
		gc := newClient(base, "tok-123", 1)
		gc.respondAsync = async
		for _, c := range calls {
			before := len(srv.seen())
			code, err := wc.do(context.Background(), c.method, c.path, c.body)
			if err != nil || code != http.StatusAccepted {
				t.Fatalf("wire %s %s = %d, %v", c.method, c.path, code, err)
			}
			if code, err := gc.do(context.Background(), c.method, c.path, c.body, nil); err != nil || code != http.StatusAccepted {
				t.Fatalf("client.do %s %s = %d, %v", c.method, c.path, code, err)
			}
			seen := srv.seen()[before:]
			if len(seen) != 2 {
				t.Fatalf("%s %s: the server got %d requests, want 2", c.method, c.path, len(seen))
			}
			got, want := seen[0], seen[1]
			if got.method != c.method || got.uri != "/prefix"+c.path {
				t.Errorf("wire sent %s %s, want %s /prefix%s", got.method, got.uri, c.method, c.path)
			}
			if got.method != want.method || got.uri != want.uri || got.body != want.body || got.contentLength != want.contentLength {
				t.Errorf("wire sent %s %s (length %d) %q; client.do %s %s (length %d) %q",
					got.method, got.uri, got.contentLength, got.body, want.method, want.uri, want.contentLength, want.body)
			}
			if c.body != nil {
				b, _ := json.Marshal(c.body)
				if got.body != string(b) {
					t.Errorf("wire body %q, want %q", got.body, b)
				}
			}
			want.header.Del("User-Agent") // net/http's own
			if fmt.Sprint(got.header) != fmt.Sprint(want.header) {
				t.Errorf("%s %s (async %v): wire headers %v, client.do's %v", c.method, c.path, async, got.header, want.header)
			}
			if got.header.Get("Authorization") != "Bearer tok-123" {
				t.Errorf("Authorization %q", got.header.Get("Authorization"))
			}
			if pref := got.header.Get("Prefer"); (pref == "respond-async") != (async && c.method != http.MethodGet) {
				t.Errorf("%s with async %v: Prefer %q", c.method, async, pref)
			}
		}
	}
	// One connection for each client (Go's clients' pools keep one each,
	// used back to back).
	if n := srv.conns.Load(); n != 4 {
		t.Errorf("the server accepted %d connections, want 4 (one per client, kept alive)", n)
	}
}

func TestWireContentLengthAndStatuses(t *testing.T) {
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	c := newWire(t, srv.URL, false)
	for _, tc := range []struct{ code, n int }{
		{200, 0}, {201, 17}, {202, 100_000}, {400, 30}, {401, 0}, {404, 5000}, {409, 12}, {500, 21}, {503, 0}, {204, 0},
	} {
		got := mustDo(t, c, http.MethodPost, fmt.Sprintf("/x?code=%d&n=%d", tc.code, tc.n), map[string]bool{})
		if got != tc.code {
			t.Errorf("status %d, want %d", got, tc.code)
		}
	}
	if got := mustDo(t, c, http.MethodHead, "/x?code=200&n=50", nil); got != 200 {
		t.Errorf("HEAD: status %d", got)
	}
	if got := mustDo(t, c, http.MethodGet, "/x?code=200&n=3", nil); got != 200 {
		t.Errorf("GET after HEAD: status %d", got)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 kept alive across all answers", n)
	}
}

func TestWireChunked(t *testing.T) {
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		parts, _ := strconv.Atoi(r.URL.Query().Get("parts"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if r.URL.Query().Has("trailer") {
			w.Header().Set("Trailer", "X-Sum")
		}
		w.WriteHeader(http.StatusCreated)
		for i := range parts {
			_, _ = w.Write([]byte(strings.Repeat(string(rune('a'+i%26)), size)))
			w.(http.Flusher).Flush()
		}
		if r.URL.Query().Has("trailer") {
			w.Header().Set("X-Sum", "42")
		}
	})
	c := newWire(t, srv.URL, false)
	// Check that the answers are chunked, through a raw connection.
	raw, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /x?parts=2&size=3 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("the test server's answer has transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	for _, q := range []string{"parts=0&size=0", "parts=1&size=5", "parts=3&size=1000", "parts=5&size=9000", "parts=2&size=10&trailer=1", "parts=40&size=300&trailer=1"} {
		if got := mustDo(t, c, http.MethodPost, "/x?"+q, map[string]bool{}); got != http.StatusCreated {
			t.Errorf("%s: status %d", q, got)
		}
	}
	if n := srv.conns.Load(); n != 2 { // the raw one and the wire client's
		t.Errorf("%d connections, want 2: the wire client's kept alive across chunked answers", n)
	}
}

func TestWireConnectionClose(t *testing.T) {
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte("ok"))
	})
	c := newWire(t, srv.URL, false)
	for _, p := range []string{"/a", "/close", "/b", "/c", "/close", "/d"} {
		if got := mustDo(t, c, http.MethodPost, p, map[string]bool{}); got != 200 {
			t.Fatalf("%s: status %d", p, got)
		}
	}
	seen := srv.seen()
	// /a and /close on the first connection, /b, /c and /close on the
	// second, /d on the third.
	if seen[0].remote != seen[1].remote || seen[1].remote == seen[2].remote || seen[2].remote != seen[4].remote || seen[4].remote == seen[5].remote {
		var remotes []string
		for _, s := range seen {
			remotes = append(remotes, s.uri+" from "+s.remote)
		}
		t.Errorf("connections used: %v; want a new one after each Connection: close", remotes)
	}
	if n := srv.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// TestWireBrokenAnswers has the server break off its answers in various
// ways: each is an error, and the next request goes through on a new
// connection.
func TestWireBrokenAnswers(t *testing.T) {
	var hits atomic.Int32
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var raw string
		switch r.URL.Path {
		case "/short":
			raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
		case "/chunk-cut":
			raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc"
		case "/head-cut":
			raw = "HTTP/1.1 200 OK\r\nContent-Le"
		case "/nothing":
			raw = ""
		case "/garbage":
			raw = "SMTP ready\r\n\r\n"
		case "/bad-chunk":
			raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
		case "/until-close": // no length: the body ends with the connection
			raw = "HTTP/1.1 200 OK\r\n\r\nthe whole body"
		case "/interim":
			raw = "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
		default:
			_, _ = w.Write([]byte("fine"))
			return
		}
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_, _ = bw.WriteString(raw)
		_ = bw.Flush()
		if r.URL.Path == "/interim" {
			// Keep the connection: the wire client must read the answer
			// after the interim one, then use the connection again.
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					t.Errorf("after /interim: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnext"))
			}()
			return
		}
		_ = conn.Close()
	})
	c := newWire(t, srv.URL, false)
	for _, tc := range []struct {
		path string
		want string // in the error; "" for none
		code int
	}{
		{"/short", "unexpected EOF", 0},
		{"/ok", "", 200},
		{"/chunk-cut", "unexpected EOF", 0},
		{"/ok", "", 200},
		{"/ok", "", 200},
		{"/head-cut", "unexpected EOF", 0},
		{"/ok", "", 200},
		{"/nothing", "closed the connection without answering", 0},
		{"/ok", "", 200},
		{"/garbage", "malformed status line", 0},
		{"/ok", "", 200},
		{"/bad-chunk", "bad chunk size", 0},
		{"/ok", "", 200},
		{"/until-close", "", 200},
		{"/ok", "", 200},
		{"/interim", "", 202},
		{"/after-interim", "", 200}, // answered by the hijacker
		{"/ok", "", 200},
	} {
		before := hits.Load()
		code, err := c.do(context.Background(), http.MethodPost, tc.path, map[string]bool{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "POST "+tc.path)):
			t.Errorf("%s: error %v, want one about %s %q", tc.path, err, "POST "+tc.path, tc.want)
		case code != tc.code:
			t.Errorf("%s: status %d, want %d", tc.path, code, tc.code)
		}
		// POST is not sent twice, even where the server closed a kept-alive
		// connection without answering (/nothing).
		if d := hits.Load() - before; tc.path != "/after-interim" && d != 1 {
			t.Errorf("%s: the server's handler ran %d times, want 1", tc.path, d)
		}
	}
}

// TestWireReplaysOnlyWhatMayBeRepeated: on a kept-alive connection that
// the server closes without answering, a GET is sent again on a new
// connection; a POST is not (as net/http does).
func TestWireReplaysOnlyWhatMayBeRepeated(t *testing.T) {
	var nothing atomic.Bool
	var hits atomic.Int32
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/nothing" && nothing.CompareAndSwap(true, false) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte("fine"))
	})
	c := newWire(t, srv.URL, false)
	mustDo(t, c, http.MethodGet, "/warm", nil)
	nothing.Store(true)
	hits.Store(0)
	if got := mustDo(t, c, http.MethodGet, "/nothing", nil); got != 200 || hits.Load() != 2 {
		t.Errorf("GET on a connection closed without an answer: status %d after %d tries, want 200 after 2", got, hits.Load())
	}
	nothing.Store(true)
	hits.Store(0)
	if _, err := c.do(context.Background(), http.MethodPost, "/nothing", map[string]bool{}); err == nil || hits.Load() != 1 {
		t.Errorf("POST on a connection closed without an answer: error %v after %d tries, want an error after 1", err, hits.Load())
	}
	if got := mustDo(t, c, http.MethodPost, "/ok", map[string]bool{}); got != 200 {
		t.Errorf("POST after: status %d", got)
	}
}

func TestWireContext(t *testing.T) {
	release := make(chan struct{})
	srv := newWireServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = w.Write([]byte("ok"))
	})
	defer close(release) // before srv.Close, which waits for the handlers
	c := newWire(t, srv.URL, false)
	mustDo(t, c, http.MethodPost, "/ok", map[string]bool{})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.do(ctx, http.MethodPost, "/slow", map[string]bool{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the context's deadline", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the request took %s past a 100ms deadline", took)
		}
		if got := mustDo(t, c, http.MethodPost, "/ok", map[string]bool{}); got != 200 {
			t.Errorf("after: status %d", got)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		// The same context for a request first, as the load does: its
		// cancellation must still cut off a later request.
		if _, err := c.do(ctx, http.MethodPost, "/ok", map[string]bool{}); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := c.do(ctx, http.MethodPost, "/slow", map[string]bool{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want the context's cancellation", err)
		}
		before := len(srv.seen())
		if _, err := c.do(ctx, http.MethodPost, "/ok", map[string]bool{}); !errors.Is(err, context.Canceled) {
			t.Errorf("request on a cancelled context: %v, want the cancellation", err)
		}
		if len(srv.seen()) != before {
			t.Error("a request on a cancelled context reached the server")
		}
		if got := mustDo(t, c, http.MethodPost, "/ok", map[string]bool{}); got != 200 {
			t.Errorf("after: status %d", got)
		}
	})
	t.Run("cancelled context left behind", func(t *testing.T) {
		// A cancellation of a context the connection no longer serves
		// does not cut off the requests of another.
		ctx, cancel := context.WithCancel(context.Background())
		mustDoCtx := func(ctx context.Context) {
			if _, err := c.do(ctx, http.MethodPost, "/ok", map[string]bool{}); err != nil {
				t.Fatal(err)
			}
		}
		mustDoCtx(ctx)
		mustDoCtx(context.Background())
		cancel()
		time.Sleep(20 * time.Millisecond)
		for range 3 {
			mustDoCtx(context.Background())
		}
	})
	t.Run("request time limit", func(t *testing.T) {
		c := newWire(t, srv.URL, false)
		c.t.timeout = 100 * time.Millisecond
		_, err := c.do(context.Background(), http.MethodPost, "/slow", map[string]bool{})
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 100ms") {
			t.Errorf("error %v, want no answer within the time limit", err)
		}
	})
}

func TestWireTarget(t *testing.T) {
	for _, tc := range []struct {
		base, addr, prefix, host, err string
	}{
		{base: "http://127.0.0.1:8080", addr: "127.0.0.1:8080", host: "127.0.0.1:8080"},
		{base: "http://localhost/api/", addr: "localhost:80", prefix: "/api", host: "localhost"},
		{base: "http://[::1]:9/", addr: "[::1]:9", host: "[::1]:9"},
		{base: "https://example.test", err: "--go-client"},
		{base: "http://x/?a=b", err: "want http://host"},
	} {
		target, err := newWireTarget(newClient(tc.base, "t", 1))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one about %q", tc.base, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.base, err)
			continue
		}
		if target.addr != tc.addr || target.prefix != tc.prefix || !strings.HasPrefix(string(target.head), "Host: "+tc.host+"\r\n") {
			t.Errorf("%s: addr %q, prefix %q, head %q; want %q, %q, Host %q", tc.base, target.addr, target.prefix, target.head, tc.addr, tc.prefix, tc.host)
		}
	}
	c := newWire(t, "http://127.0.0.1:1", false)
	if _, err := c.do(context.Background(), http.MethodGet, "/a b", nil); err == nil {
		t.Error("a path with a space was sent")
	}
}

// BenchmarkRestoreRequest compares the two load clients on the requests
// the load sends most, against a handler that answers at once: the
// process's CPU per request, server included.
func BenchmarkRestoreRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"run":"bench-0000-000001","status":"Restoring"}`))
	}))
	defer srv.Close()
	cl := newClient(srv.URL, "token-0123456789", 8)
	target, err := newWireTarget(cl)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"wire", "net-http"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0, ok := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				conn := target.newConn()
				defer conn.Close()
				for pb.Next() {
					var code int
					var err error
					if name == "wire" {
						code, err = conn.do(ctx, http.MethodPost, "/api/v1/runs/bench-0000-000001/restore", map[string]bool{})
					} else {
						code, err = cl.do(ctx, http.MethodPost, "/api/v1/runs/bench-0000-000001/restore", map[string]bool{}, nil)
					}
					if err != nil || code != http.StatusAccepted {
						b.Errorf("%d, %v", code, err)
						return
					}
				}
			})
			if cpu1, ok1 := processCPU(); ok && ok1 {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
			}
		})
	}
}
