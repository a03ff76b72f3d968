package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The load generator's own HTTP/1.1 client. Go's net/http client costs
// tens of CPU-µs per request (its connection's read and write loops,
// header maps, hand-offs between goroutines), taken from the server under
// test when both share the machine. As wrk does, each load client instead
// owns one keep-alive connection and writes its requests as bytes, reading
// only what the load needs of the answer: its status code.

// wireTimeout bounds each request, as the net/http client's Timeout does.
const wireTimeout = 60 * time.Second

// wireTarget is what the connections to one server share: where to dial,
// and the fixed part of every request's head.
type wireTarget struct {
	addr string // host:port to dial
	// prefix is the path of the base URL, put before every request's path.
	prefix string
	// head holds the Host and Authorization header lines.
	head         []byte
	respondAsync bool
	timeout      time.Duration
}

// newWireTarget makes the target of cl's server for wire connections: cl's
// base URL, token and respondAsync. The base URL must be plain http://.
func newWireTarget(cl *client) (*wireTarget, error) {
	u, err := url.Parse(cl.base)
	if err != nil {
		return nil, fmt.Errorf("load client: server URL %q: %w", cl.base, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("load client: server URL %q: the load generator's own HTTP/1.1 client speaks plain http:// only; use Go's net/http client (--go-client) for %s", cl.base, u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("load client: server URL %q: want http://host[:port][/path]", cl.base)
	}
	if strings.ContainsAny(cl.token, "\r\n") {
		return nil, errors.New("load client: the API token has a line break")
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	host := strings.TrimSuffix(u.Host, ":") // "host:" means the default port
	head := "Host: " + host + "\r\nAuthorization: Bearer " + cl.token + "\r\n"
	return &wireTarget{
		addr:         net.JoinHostPort(u.Hostname(), port),
		prefix:       strings.TrimRight(u.EscapedPath(), "/"),
		head:         []byte(head),
		respondAsync: cl.respondAsync,
		timeout:      wireTimeout,
	}, nil
}

// wireConn is one load client's keep-alive connection to the target,
// dialled on the first request and again after the server closed it (or
// it broke). It is used by one goroutine at a time; Close releases it.
type wireConn struct {
	t      *wireTarget
	dialer net.Dialer

	// mu guards conn and watched against the function that cuts the
	// connection off when the context of the requests is cancelled; the
	// owner, the only one to change them, reads them freely.
	mu   sync.Mutex
	conn net.Conn
	// reused says conn has carried a whole request and answer.
	reused bool
	br     *bufio.Reader

	req  []byte       // the request being sent, head and body
	body bytes.Buffer // its JSON body
	enc  *json.Encoder

	// watched is the Done channel of the context whose cancellation cuts
	// the connection off (through stopWatch's AfterFunc).
	watched   <-chan struct{}
	stopWatch func() bool
}

// wireBufSize is the size of the answer's read buffer, and so the longest
// status, header or chunk-size line.
const wireBufSize = 4 << 10

func (t *wireTarget) newConn() *wireConn {
	w := &wireConn{t: t, req: make([]byte, 0, 1024)}
	w.enc = json.NewEncoder(&w.body)
	return w
}

// errNoAnswer is a connection closed by the server before any byte of the
// answer.
var errNoAnswer = errors.New("the server closed the connection without answering")

// do sends a request with body (JSON-encoded, if not nil) and reads the
// whole answer, returning its status code; a non-2xx status is not an
// error. Headers are those client.do sends.
func (w *wireConn) do(ctx context.Context, method, path string, body any) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if err := w.format(method, path, body); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	w.watch(ctx)
	for retried := false; ; retried = true {
		fresh := w.conn == nil
		if fresh {
			if err := w.dial(ctx); err != nil {
				return 0, w.fail(ctx, method, path, err)
			}
		}
		code, retry, err := w.roundTrip(ctx, method)
		if err == nil {
			return code, nil
		}
		w.closeConn()
		// A kept-alive connection that the server had closed: send the
		// request again, once, on a new one when the server cannot have
		// acted on it (as net/http does).
		if retry && !fresh && !retried && ctx.Err() == nil {
			continue
		}
		return 0, w.fail(ctx, method, path, err)
	}
}

// fail wraps err, the failure of a request, saying when the context or
// the request's time limit caused it.
func (w *wireConn) fail(ctx context.Context, method, path string, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded // the connection's deadline, the context's, came first
	}
	if cerr != nil {
		return fmt.Errorf("%s %s: %w (%v)", method, path, cerr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s %s: no answer within %s: %w", method, path, w.t.timeout, err)
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// format writes the request into w.req.
func (w *wireConn) format(method, path string, body any) error {
	if method == "" || strings.ContainsAny(method, " \r\n") {
		return fmt.Errorf("bad method %q", method)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("bad path %q: want /...", path)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("bad path %q: a space or control character", path)
		}
	}
	w.body.Reset()
	if body != nil {
		if err := w.enc.Encode(body); err != nil {
			return fmt.Errorf("encode the body: %w", err)
		}
		w.body.Truncate(w.body.Len() - 1) // Encode ends with a newline, json.Marshal does not
	}
	b := append(w.req[:0], method...)
	b = append(b, ' ')
	b = append(b, w.t.prefix...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\n"...)
	b = append(b, w.t.head...)
	switch {
	case body != nil:
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(w.body.Len()), 10)
		b = append(b, "\r\n"...)
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...) // as net/http sends for no body
	}
	if w.t.respondAsync && method != http.MethodGet {
		b = append(b, "Prefer: respond-async\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.req = append(b, w.body.Bytes()...)
	return nil
}

// aLongTimeAgo, as a deadline, makes the connection's pending and future
// reads and writes fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// watch makes the cancellation of ctx cut the connection off. The watch
// stays for the following requests of the same context, so a load
// client's loop registers it once.
func (w *wireConn) watch(ctx context.Context) {
	done := ctx.Done()
	if done == w.watched {
		return
	}
	w.unwatch()
	w.mu.Lock()
	w.watched = done
	w.mu.Unlock()
	if done == nil { // never cancelled
		return
	}
	w.stopWatch = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		// Unless the connection has moved on to another context (this
		// function may run after stopWatch was called).
		if w.watched == done && w.conn != nil {
			_ = w.conn.SetDeadline(aLongTimeAgo)
		}
	})
}

func (w *wireConn) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, w.t.timeout)
	defer cancel()
	conn, err := w.dialer.DialContext(dctx, "tcp", w.t.addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	w.reused = false
	if w.br == nil {
		w.br = bufio.NewReaderSize(conn, wireBufSize)
	} else {
		w.br.Reset(conn)
	}
	return nil
}

func (w *wireConn) closeConn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// unwatch stops the watch of the context watched last.
func (w *wireConn) unwatch() {
	if w.stopWatch != nil {
		w.stopWatch()
		w.stopWatch = nil
	}
}

// Close closes the connection and stops watching the requests' context.
func (w *wireConn) Close() {
	w.unwatch()
	w.mu.Lock()
	w.watched = nil
	w.mu.Unlock()
	w.closeConn()
}

// roundTrip sends w.req on the connection and reads the answer. retry
// says the request may be sent again on a new connection: nothing of it
// was written, or the server closed the connection without answering a
// request that may be repeated.
func (w *wireConn) roundTrip(ctx context.Context, method string) (code int, retry bool, err error) {
	deadline := time.Now().Add(w.t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := w.conn.SetDeadline(deadline); err != nil {
		return 0, false, fmt.Errorf("set the connection's deadline: %w", err)
	}
	// After the deadline, so that a cancellation from now on, which
	// sets a deadline long gone, is not undone by it.
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if n, err := w.conn.Write(w.req); err != nil {
		return 0, n == 0, fmt.Errorf("send the request: %w", err)
	}
	code, keep, err := w.readAnswer(method)
	if err != nil {
		return 0, errors.Is(err, errNoAnswer) && replayable(method), err
	}
	if !keep || w.br.Buffered() > 0 { // bytes nobody asked for: the connection is out of step
		w.closeConn()
	} else {
		w.reused = true
	}
	return code, false, nil
}

// replayable methods may be sent twice, as net/http replays them.
func replayable(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
