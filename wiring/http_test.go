package wiring

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

// served is a piperun server on a loopback port, with an administrator's
// token and a run "r" owned by that administrator.
type served struct {
	addr  string
	token string
}

// serve starts a real server bounded by limits and stops it at the end of
// the test.
func serve(t *testing.T, limits HTTPLimits) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dataDir := t.TempDir()
	token, err := AddUser(ctx, Storage{DataDir: dataDir}, "root", true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, Storage{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Svc.ExecRun(ctx, "r", "root", func(*domain.Run) ([]domain.Event, error) {
		return []domain.Event{domain.RunCreated{Name: "r", Owner: "root"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			DataDir: dataDir, Addr: "127.0.0.1:0", ImagesDir: t.TempDir(), Workers: true, HTTP: limits,
			Poll: 20 * time.Millisecond, Stdout: io.Discard, Ready: ready,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return &served{addr: addr, token: token}
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
		return nil
	}
}

// dial opens a TCP connection to the server that fails the test's reads
// after failSafe, and closes at the end of the test.
func (s *served) dial(t *testing.T, failSafe time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetReadDeadline(time.Now().Add(failSafe)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// awaitClose reads conn until the server closes it; a read that times out
// (the fail-safe deadline) means the server kept the connection open.
func awaitClose(t *testing.T, r io.Reader, what string) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open", what)
	}
}

// failSafe bounds the tests' waits for the server to close a connection:
// far beyond the timeouts they set, and only reached when the server
// fails to apply them.
const failSafe = 20 * time.Second

func TestSlowBodyIsCutOffAtTheReadTimeout(t *testing.T) {
	s := serve(t, HTTPLimits{ReadTimeout: 2 * time.Second, IdleTimeout: time.Minute})
	conn := s.dial(t, failSafe)
	const body = "csrf=x&token=abcdefghijklmnopqrstuvwxyz0123456789"
	if _, err := fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: piperun\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(body)); err != nil {
		t.Fatal(err)
	}
	// Trickle the body, a byte a second, until the server hangs up.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	awaitClose(t, conn, "a body sent a byte a second")
}

func TestIdleKeepAliveIsClosedAtTheIdleTimeout(t *testing.T) {
	// The read timeout would close an idle connection too when no idle
	// timeout is set: make it long, so that only the idle timeout can.
	s := serve(t, HTTPLimits{ReadTimeout: time.Minute, IdleTimeout: time.Second})
	conn := s.dial(t, failSafe)
	br := bufio.NewReader(conn)
	if _, err := fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: piperun\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("GET /healthz: %d, close %v; want 200 on a kept-alive connection", res.StatusCode, res.Close)
	}
	awaitClose(t, br, "an idle keep-alive connection")
}

func TestTooLargeHeaderGets431(t *testing.T) {
	s := serve(t, HTTPLimits{MaxHeaderBytes: 16 << 10})
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 64<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 64 KiB header: %d, want 431", res.StatusCode)
	}
	// A header within the bound passes.
	req.Header.Set("X-Padding", strings.Repeat("x", 8<<10))
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("an 8 KiB header: %d, want 200", res.StatusCode)
	}
}

func TestTooLargeBodyGets413JSON(t *testing.T) {
	s := serve(t, HTTPLimits{MaxBodyBytes: 64 << 10})
	post := func(descriptionBytes int) (int, map[string]string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"name": "big", "description": strings.Repeat("d", descriptionBytes), "config": "x"})
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/runs", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]string
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("answer to a %d-byte description is not JSON: %v", descriptionBytes, err)
		}
		return res.StatusCode, out
	}
	if code, out := post(100 << 10); code != http.StatusRequestEntityTooLarge || !strings.Contains(out["error"], "request body larger than") {
		t.Fatalf("a 100 KiB body with a 64 KiB bound: %d %v, want 413 and an error", code, out)
	}
	// Under the bound, the body is read and judged on its content.
	if code, out := post(1 << 10); code != http.StatusBadRequest {
		t.Fatalf("a 1 KiB body with a bad configuration: %d %v, want 400", code, out)
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn returns a client signed in to the web pages as root.
func (s *served) signIn(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get("http://" + s.addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfInput.FindSubmatch(page)
	if m == nil {
		t.Fatal("the sign-in form has no CSRF field")
	}
	res, err = c.PostForm("http://"+s.addr+"/login", url.Values{"csrf": {string(m[1])}, "token": {s.token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	return c
}

// TestLiveStreamOutlivesTheTimeouts keeps a live stream open past the
// read and write timeouts: the stream lifts both, and an event sent after
// they passed still arrives.
func TestLiveStreamOutlivesTheTimeouts(t *testing.T) {
	const timeout = time.Second
	s := serve(t, HTTPLimits{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: time.Minute})
	c := s.signIn(t)
	res, err := c.Get("http://" + s.addr + "/runs/r/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	events := make(chan string, 16)
	go func() {
		defer close(events)
		br := bufio.NewReader(res.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if ev, ok := strings.CutPrefix(strings.TrimSpace(line), "event: "); ok {
				events <- ev
			}
		}
	}()
	if ev := <-events; ev != "run" {
		t.Fatalf("first event %q", ev)
	}
	// Let both deadlines of the connection pass: that is what is tested.
	time.Sleep(3 * timeout)
	req, _ := http.NewRequest(http.MethodDelete, "http://"+s.addr+"/api/v1/runs/r", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode >= 300 {
		t.Fatalf("delete the run: %d", del.StatusCode)
	}
	fail := time.After(failSafe)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended before it showed the deletion")
			}
			if ev == "change" || ev == "gone" {
				return
			}
		case <-fail:
			t.Fatal("no event after the deletion")
		}
	}
}
