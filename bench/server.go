package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/wiring"
)

// localServer is a piperun server run in this process, as `piperun serve`
// runs it, on a free loopback port.
type localServer struct {
	URL  string
	done chan error
	stop context.CancelFunc
	// Warmed and WarmTook say how the server warmed its command cache
	// (startLocal waits for it).
	Warmed   int
	WarmTook time.Duration

	closeOnce sync.Once
	closeErr  error
}

// startLocal runs wiring.Run on dataDir and imagesDir, with or without
// workers. Its own log goes to <dataDir>/server.log.
func startLocal(ctx context.Context, dataDir, imagesDir string, workers bool, cacheBytes int) (*localServer, error) {
	logFile, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	type warm struct {
		runs int
		took time.Duration
	}
	warmed := make(chan warm, 1)
	s := &localServer{done: make(chan error, 1), stop: cancel}
	go func() {
		defer logFile.Close()
		s.done <- wiring.Run(ctx, wiring.Config{
			DataDir: dataDir, Addr: "127.0.0.1:0", ImagesDir: imagesDir, Workers: workers, CacheBytes: cacheBytes,
			Stdout: io.Discard, Ready: ready,
			CacheWarmed: func(runs int, took time.Duration) { warmed <- warm{runs, took} },
			Logger:      slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	}()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("start the server: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The load starts on a warmed cache, as it would some time after a
	// start.
	select {
	case w := <-warmed:
		s.Warmed, s.WarmTook = w.runs, w.took
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("start the server: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the server and waits for it. Calls after the first return
// the first one's result.
func (s *localServer) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		select {
		case s.closeErr = <-s.done:
		case <-time.After(60 * time.Second):
			s.closeErr = errors.New("the server did not stop within 60s")
		}
	})
	return s.closeErr
}

// client talks to a piperun server's API with a token, over a connection
// pool sized for the load.
type client struct {
	base  string
	token string
	http  *http.Client
	// respondAsync sends commands with "Prefer: respond-async".
	respondAsync bool
}

func newClient(base, token string, conns int) *client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// do sends a JSON request and decodes a 2xx JSON answer into out (if not
// nil). It returns the status code; a non-2xx status is not an error.
func (c *client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.respondAsync && method != http.MethodGet {
		req.Header.Set("Prefer", "respond-async")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body) // reuse the connection
	return resp.StatusCode, nil
}

// runStatus returns a run's status as the read models show it.
func (c *client) runStatus(ctx context.Context, name string) (string, error) {
	var v struct {
		Status string `json:"status"`
	}
	code, err := c.do(ctx, http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("get run %s: HTTP %d", name, code)
	}
	return v.Status, nil
}

// relayLag reads piperun_relay_lag_events from /metrics: how many events
// of the log the server has not yet handed to its workers.
func (c *client) relayLag(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "piperun_relay_lag_events "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("the server's /metrics has no piperun_relay_lag_events")
}

// waitRelay waits until the server's relay has handed every event of the
// log to the workers, so that a measurement does not share the machine
// with the server working through its backlog.
func (c *client) waitRelay(ctx context.Context, out io.Writer) error {
	start, last := time.Now(), time.Now()
	for {
		lag, err := c.relayLag(ctx)
		if err != nil {
			return err
		}
		if lag == 0 {
			return nil
		}
		if time.Since(last) > 5*time.Second {
			fmt.Fprintf(out, "  the server's relay is %d events behind (%s)\n", lag, time.Since(start).Round(time.Second))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// randomSuffix keeps names of users and runs a benchmark creates apart
// from those of an earlier run on the same data directory.
func randomSuffix() string { return uuid.NewString()[:8] }
