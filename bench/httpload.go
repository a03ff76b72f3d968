package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// Request kinds the load generator sends.
const (
	KindRestore = "restore"
	KindCreate  = "create"
	KindProcess = "process"
)

// Mix weighs the kinds of request the load generator sends.
type Mix struct {
	Restore, Create, Process int
}

// DefaultMix is mostly restores, with some runs created and processed.
var DefaultMix = Mix{Restore: 90, Create: 5, Process: 5}

// ParseMix reads "restore=90,create=5,process=5"; kinds left out weigh 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return Mix{}, fmt.Errorf("mix %q: want kind=weight pairs such as restore=90,create=5,process=5", s)
		}
		switch k {
		case KindRestore:
			m.Restore = n
		case KindCreate:
			m.Create = n
		case KindProcess:
			m.Process = n
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown kind %q (restore, create, process)", s, k)
		}
	}
	if m.Restore+m.Create+m.Process == 0 {
		return Mix{}, fmt.Errorf("mix %q: every weight is 0", s)
	}
	return m, nil
}

func (m Mix) String() string {
	return fmt.Sprintf("restore=%d,create=%d,process=%d", m.Restore, m.Create, m.Process)
}

// HTTPOptions configure the HTTP load generator. Zero fields take the
// defaults noted.
type HTTPOptions struct {
	// Server is the URL of a running server to load; empty starts one in
	// this process on a loopback port, over DataDir.
	Server string
	// Token is an administrator's API token for Server.
	Token string
	// ImagesDir is Server's images root, on this machine: the benchmark
	// writes its synthetic survey under ImagesDir/piperun-bench for the
	// runs it creates there. In-process, it is <DataDir>/images.
	ImagesDir string
	// DataDir is the in-process server's data directory; a temporary one
	// (removed afterwards) when empty.
	DataDir string
	// Runs is the number of restorable runs prepared beforehand (default
	// 20,000); each restore request goes to a run of its own.
	Runs int
	// Concurrency is the number of clients sending requests back to back
	// (default 64).
	Concurrency int
	// Duration bounds the load (default 10s); Requests, if positive, bounds
	// the number of requests too. The load also ends when the prepared
	// runs are all restored.
	Duration time.Duration
	Requests int
	// Mix weighs the kinds of request (default DefaultMix).
	Mix Mix
	// Drain bounds the wait, after the load, for the workers to finish the
	// accepted restores (default 2 minutes; negative: do not wait).
	Drain time.Duration
	// CPUProfile, if set, receives a CPU profile of the load phase (of the
	// whole process: the in-process server and the clients).
	CPUProfile string
	// MemProfile, if set, receives a heap profile taken when the load
	// ends, and MemProfile+".base" one taken when it starts: 'go tool pprof
	// -sample_index=alloc_space -base FILE.base FILE' shows what the load
	// allocated, by where.
	MemProfile string
	// APIOnly runs the in-process server without workers during the load,
	// as an API replica runs (`serve --workers=false`), so that the figures
	// are the API's alone; the restores accepted are then carried out by a
	// server with workers started on the same data directory afterwards.
	APIOnly bool
	// RespondAsync sends the commands with "Prefer: respond-async": the
	// server answers once their events are stored, without waiting for
	// its read models to show them.
	RespondAsync bool
	// GoClient sends the load's requests with Go's net/http client. By
	// default the load generator speaks HTTP/1.1 itself over one keep-alive
	// connection per client, as wrk does, so that the clients' share of the
	// CPU is small; that needs an http:// server URL.
	GoClient bool
	// CacheBytes is the in-process server's command cache budget
	// (server.Config.CacheBytes; 0: its default). A run the cache cannot
	// hold is loaded from its snapshot and events on each command.
	CacheBytes int
}

func (o *HTTPOptions) defaults() {
	if o.Runs <= 0 {
		o.Runs = 20_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Mix == (Mix{}) {
		o.Mix = DefaultMix
	}
	if o.Drain == 0 {
		o.Drain = 2 * time.Minute
	}
}

// HTTPResult are the figures of a load.
type HTTPResult struct {
	Elapsed time.Duration
	// Kinds summarises each kind of request: latencies and HTTP statuses
	// ("error" for a request that got no answer).
	Kinds map[string]Summary
	// Accepted counts the 2xx answers of each kind.
	Accepted map[string]int
	// Drained is the time from the end of the load until the last accepted
	// restore was Completed (0 when not waited for); Restored is the number
	// of restores accepted by then.
	Drained  time.Duration
	Restored int
	// CPU is this process's CPU time during the load (0 where it cannot be
	// measured).
	CPU time.Duration
	// Written is the number of bytes this process wrote to storage during
	// the load (0 where it cannot be measured).
	Written int64
	// MinorFaults counts the page faults of this process during the load
	// that read nothing from disk (first touches of memory, mostly), and
	// UserCPU and SystemCPU split CPU (0 where they cannot be measured).
	MinorFaults        int64
	UserCPU, SystemCPU time.Duration
	// Allocated is the number of bytes this process allocated on Go's
	// heap during the load.
	Allocated int64
}

// Rate is the number of accepted requests of kind per second of load.
func (r HTTPResult) Rate(kind string) float64 {
	return float64(r.Accepted[kind]) / r.Elapsed.Seconds()
}

// HTTP drives create, process and restore requests at a server (started in
// this process unless opts.Server is set) from opts.Concurrency clients,
// and reports rates and latencies per kind.
func HTTP(ctx context.Context, opts HTTPOptions, out io.Writer) (HTTPResult, error) {
	opts.defaults()
	prefix := "bench-" + randomSuffix()
	var cl *client
	var fx fixture
	var drainer func() (*client, func() error, error)
	if opts.Server == "" {
		dataDir := opts.DataDir
		if dataDir == "" {
			tmp, err := os.MkdirTemp("", "piperun-bench-http-")
			if err != nil {
				return HTTPResult{}, fmt.Errorf("http benchmark: %w", err)
			}
			defer os.RemoveAll(tmp)
			dataDir = tmp
		}
		srv, f, token, err := prepareLocal(ctx, dataDir, prefix, opts, out)
		if err != nil {
			return HTTPResult{}, err
		}
		defer srv.Close()
		fx = f
		cl = newClient(srv.URL, token, opts.Concurrency)
		cl.respondAsync = opts.RespondAsync
		if opts.APIOnly {
			drainer = func() (*client, func() error, error) {
				if err := srv.Close(); err != nil {
					return nil, nil, fmt.Errorf("stop the API-only server: %w", err)
				}
				full, err := startLocal(ctx, dataDir, filepath.Join(dataDir, "images"), true, opts.CacheBytes)
				if err != nil {
					return nil, nil, err
				}
				fmt.Fprintf(out, "API-only server stopped; a server with workers started on the same data directory (%s)\n", full.URL)
				return newClient(full.URL, token, 4), full.Close, nil
			}
		}
	} else {
		if opts.Token == "" || opts.ImagesDir == "" {
			return HTTPResult{}, errors.New("http benchmark: a server URL needs an administrator's token and the server's images directory")
		}
		cl = newClient(opts.Server, opts.Token, opts.Concurrency)
		cl.respondAsync = opts.RespondAsync
		f, err := prepareRemote(ctx, cl, prefix, opts, out)
		if err != nil {
			return HTTPResult{}, err
		}
		fx = f
	}
	if !opts.APIOnly { // without workers there is no relay to wait for
		if err := cl.waitRelay(ctx, out); err != nil {
			return HTTPResult{}, err
		}
	}
	return load(ctx, cl, prefix, fx, opts, drainer, out)
}

func printHTTP(out io.Writer, r HTTPResult) {
	fmt.Fprintf(out, "\nload ran %s\n", r.Elapsed.Round(time.Millisecond))
	var rows [][]string
	for _, k := range []string{KindRestore, KindCreate, KindProcess} {
		s := r.Kinds[k]
		if s.Count == 0 {
			continue
		}
		rows = append(rows, []string{k, strconv.Itoa(s.Count), fmt.Sprintf("%.0f", r.Rate(k)), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), outcomeList(s.Outcomes)})
	}
	writeTable(out, []string{"kind", "requests", "accepted/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "statuses"}, rows)
}

// writeHeapProfile writes the heap profile (with what was allocated since
// the process started) to path, after a collection, so that it is up to
// date.
func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}
