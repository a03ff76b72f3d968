package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/server"
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

// prepareLocal seeds a data directory with opts.Runs restorable runs and
// starts a server on it.
func prepareLocal(ctx context.Context, dataDir, prefix string, opts HTTPOptions, out io.Writer) (*localServer, fixture, string, error) {
	imagesDir := filepath.Join(dataDir, "images")
	if err := os.MkdirAll(imagesDir, 0o750); err != nil {
		return nil, fixture{}, "", fmt.Errorf("http benchmark: %w", err)
	}
	c, err := server.Open(ctx, server.Storage{DataDir: dataDir})
	if err != nil {
		return nil, fixture{}, "", err
	}
	start := time.Now()
	fx, err := processedFixture(ctx, c.Artifacts, imagesDir, 4)
	if err == nil {
		err = seedMany(ctx, seeder(c.Store), opts.Runs, 64, func(i int) string { return seededName(prefix, i) }, domain.Actor{Name: "alice"}, fx, func(done int) {
			fmt.Fprintf(out, "  seeded %d runs\n", done)
		})
	}
	var token string
	if err == nil {
		token, err = c.Svc.CreateUser(ctx, prefix, true, "system:bench")
	}
	if err == nil {
		err = c.Read.CatchUp(ctx, c.Store)
	}
	if err = errors.Join(err, c.Close()); err != nil {
		return nil, fixture{}, "", err
	}
	fmt.Fprintf(out, "seeded %d restorable runs in %s: each created over 4 images of a synthetic survey, processed, a 5th image added and processed in add mode (taking the backup) and completed, every step a command of the service (snapshots included) with the processing itself skipped; products are real artifacts, from processing the survey once\n",
		opts.Runs, time.Since(start).Round(time.Millisecond))
	srv, err := startLocal(ctx, dataDir, imagesDir, !opts.APIOnly, opts.CacheBytes)
	if err != nil {
		return nil, fixture{}, "", err
	}
	if opts.APIOnly {
		fmt.Fprintf(out, "API-only server (no workers, as serve --workers=false) on %s, data directory %s\n", srv.URL, dataDir)
	} else {
		fmt.Fprintf(out, "server on %s, data directory %s\n", srv.URL, dataDir)
	}
	fmt.Fprintf(out, "the server warmed its command cache with %d runs' states from the read models in %s (as serve does at start, beside serving)\n",
		srv.Warmed, srv.WarmTook.Round(time.Millisecond))
	return srv, fx, token, nil
}

// prepareRemote makes opts.Runs restorable runs on a running server
// through its API, processing each twice.
func prepareRemote(ctx context.Context, cl *client, prefix string, opts HTTPOptions, out io.Writer) (fixture, error) {
	var fx fixture
	var err error
	if fx.Before, fx.After, err = surveyConfigs(opts.ImagesDir, 4); err != nil {
		return fx, err
	}
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, opts.Concurrency)
	for range min(opts.Concurrency, opts.Runs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= opts.Runs {
					return
				}
				if err := makeRestorable(ctx, cl, seededName(prefix, i), fx); err != nil {
					errs <- err
					return
				}
				if d := done.Add(1); d%500 == 0 {
					fmt.Fprintf(out, "  prepared %d runs\n", d)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fx, err
	}
	fmt.Fprintf(out, "prepared %d restorable runs through the API in %s: each created over 4 images of a synthetic survey, processed, a 5th image added and processed in add mode\n",
		opts.Runs, time.Since(start).Round(time.Millisecond))
	return fx, nil
}

func makeRestorable(ctx context.Context, cl *client, name string, fx fixture) error {
	steps := []struct {
		method, path string
		body         any
		want         int
		wait         bool
	}{
		{http.MethodPost, "/api/v1/runs", map[string]string{"name": name, "config": fx.Before.YAML}, http.StatusCreated, false},
		{http.MethodPost, "/api/v1/runs/" + name + "/process", map[string]bool{}, http.StatusAccepted, true},
		{http.MethodPut, "/api/v1/runs/" + name + "/config", map[string]string{"config": fx.After.YAML}, http.StatusOK, false},
		{http.MethodPost, "/api/v1/runs/" + name + "/process", map[string]bool{}, http.StatusAccepted, true},
	}
	for _, st := range steps {
		code, err := cl.do(ctx, st.method, st.path, st.body, nil)
		if err != nil {
			return err
		}
		if code != st.want {
			return fmt.Errorf("prepare run %s: %s %s: HTTP %d, want %d", name, st.method, st.path, code, st.want)
		}
		if st.wait {
			if err := waitStatus(ctx, cl, name, domain.StatusCompleted, 10*time.Minute, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitStatus polls run until its status is want.
func waitStatus(ctx context.Context, cl *client, run string, want domain.Status, limit, every time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := cl.runStatus(ctx, run)
		if err != nil {
			return err
		}
		switch domain.Status(st) {
		case want:
			return nil
		case domain.StatusError:
			return fmt.Errorf("run %s is in Error (see its logs)", run)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %s is %s after %s, want %s", run, st, limit, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func seededName(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }

// load is the measured phase. drainer, if not nil, is called after the load
// for the client of the server that is to carry out the accepted restores,
// and a function that stops that server.
func load(ctx context.Context, cl *client, prefix string, fx fixture, opts HTTPOptions, drainer func() (*client, func() error, error), out io.Writer) (HTTPResult, error) {
	var wire *wireTarget
	how := "Go's net/http client"
	if !opts.GoClient {
		var err error
		if wire, err = newWireTarget(cl); err != nil {
			return HTTPResult{}, err
		}
		how = "an HTTP/1.1 keep-alive connection each"
	}
	fmt.Fprintf(out, "load: %d clients (%s), mix %s, for at most %s", opts.Concurrency, how, opts.Mix, opts.Duration)
	if opts.Requests > 0 {
		fmt.Fprintf(out, " or %d requests", opts.Requests)
	}
	fmt.Fprintln(out)
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return HTTPResult{}, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return HTTPResult{}, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if opts.MemProfile != "" {
		if err := writeHeapProfile(opts.MemProfile + ".base"); err != nil {
			return HTTPResult{}, err
		}
	}
	lat := map[string]*Latencies{KindRestore: {}, KindCreate: {}, KindProcess: {}}
	g := &generator{prefix: prefix, fx: fx, runs: opts.Runs, created: make(chan string, 1<<16)}
	g.lastRestore.Store(-1)
	loadCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var sent atomic.Int64
	start := time.Now()
	wrote0, wroteOK := processWrites()
	faults0, user0, sys0, faultsOK := processFaults()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	alloc0 := mem.TotalAlloc
	var wg sync.WaitGroup
	for w := range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := func(req request) (int, error) { return cl.do(ctx, req.method, req.path, req.body, nil) }
			if wire != nil {
				conn := wire.newConn()
				defer conn.Close()
				send = func(req request) (int, error) { return conn.do(ctx, req.method, req.path, req.body) }
			}
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for loadCtx.Err() == nil {
				if opts.Requests > 0 && sent.Add(1) > int64(opts.Requests) {
					return
				}
				req, ok := g.next(opts.Mix.pick(rng))
				if !ok {
					cancel() // every prepared run has had its restore
					return
				}
				t0 := time.Now()
				// ctx, not loadCtx: a request under way when the time is up
				// is answered and counted.
				code, err := send(req)
				lat[req.kind].Add(time.Since(t0), outcome(code, err))
				if err == nil {
					req.done(code)
				}
			}
		}()
	}
	wg.Wait()
	res := HTTPResult{Elapsed: time.Since(start), Kinds: map[string]Summary{}, Accepted: map[string]int{}}
	if wrote1, ok := processWrites(); ok && wroteOK {
		res.Written = wrote1 - wrote0
	}
	runtime.ReadMemStats(&mem)
	res.Allocated = int64(mem.TotalAlloc - alloc0)
	if faults1, user1, sys1, ok := processFaults(); ok && faultsOK {
		res.MinorFaults, res.UserCPU, res.SystemCPU = faults1-faults0, user1-user0, sys1-sys0
		res.CPU = res.UserCPU + res.SystemCPU
	}
	pprof.StopCPUProfile()
	if opts.MemProfile != "" {
		if err := writeHeapProfile(opts.MemProfile); err != nil {
			return HTTPResult{}, err
		}
	}
	for k, l := range lat {
		s := l.Summary()
		res.Kinds[k] = s
		for o, n := range s.Outcomes {
			if strings.HasPrefix(o, "2") {
				res.Accepted[k] += n
			}
		}
	}
	res.Restored = res.Accepted[KindRestore]
	printHTTP(out, res)
	if accepted := res.Accepted[KindRestore] + res.Accepted[KindCreate] + res.Accepted[KindProcess]; res.CPU > 0 && accepted > 0 {
		who := "clients only: the server is another process"
		switch {
		case opts.Server == "" && opts.APIOnly:
			who = "the API-only server and the clients"
		case opts.Server == "":
			who = "the server, its workers and the clients"
		}
		fmt.Fprintf(out, "CPU time of this process during the load (%s): %s, %.2f cores, %.0f µs per accepted request\n",
			who, res.CPU.Round(time.Millisecond), res.CPU.Seconds()/res.Elapsed.Seconds(), float64(res.CPU.Microseconds())/float64(accepted))
		if res.CPU > 0 {
			fmt.Fprintf(out, "of which user %s, system %s; %d minor page faults, %.1f per accepted request\n",
				res.UserCPU.Round(time.Millisecond), res.SystemCPU.Round(time.Millisecond), res.MinorFaults, float64(res.MinorFaults)/float64(accepted))
		}
		fmt.Fprintf(out, "Go heap allocations of this process during the load: %.1f MB, %.1f KB per accepted request\n",
			float64(res.Allocated)/1e6, float64(res.Allocated)/1e3/float64(accepted))
		if res.Written > 0 {
			fmt.Fprintf(out, "storage writes this process caused during the load (/proc/self/io write_bytes: pages it dirtied that were clean): %.1f MB, %.1f KB per accepted request\n",
				float64(res.Written)/1e6, float64(res.Written)/1e3/float64(accepted))
		}
	}
	if last := g.lastRestore.Load(); last >= 0 && opts.Drain > 0 {
		// The relay hands events to the workers in log order: once the
		// last accepted restore is done, so are the others.
		drainStart := time.Now()
		if drainer != nil {
			var stop func() error
			var err error
			if cl, stop, err = drainer(); err != nil {
				return res, err
			}
			defer stop()
		}
		if err := waitStatus(ctx, cl, seededName(prefix, int(last)), domain.StatusCompleted, opts.Drain, 50*time.Millisecond); err != nil {
			fmt.Fprintf(out, "the workers did not finish the accepted restores: %v\n", err)
		} else {
			res.Drained = time.Since(drainStart)
			fmt.Fprintf(out, "the workers finished the %d accepted restores %s after the load ended: %.0f restores completed/s over the whole run\n",
				res.Restored, res.Drained.Round(time.Millisecond), float64(res.Restored)/(res.Elapsed+res.Drained).Seconds())
		}
	}
	return res, nil
}

// pick draws a kind of request by weight.
func (m Mix) pick(rng *rand.Rand) string {
	switch x := rng.IntN(m.Restore + m.Create + m.Process); {
	case x < m.Create:
		return KindCreate
	case x < m.Create+m.Process:
		return KindProcess
	}
	return KindRestore
}

// generator makes the requests of a load.
type generator struct {
	prefix string
	fx     fixture
	runs   int
	// nextRestore is the index of the next prepared run to restore;
	// lastRestore the highest index whose restore was accepted (-1: none).
	nextRestore, lastRestore, nextCreate atomic.Int64
	// created holds runs created by the load and not yet processed.
	created chan string
}

type request struct {
	kind, method, path string
	body               any
	done               func(code int)
}

// next returns a request of kind, or of another when kind has nothing to
// act on (process before any create); false when the prepared runs are
// used up.
func (g *generator) next(kind string) (request, bool) {
	switch kind {
	case KindRestore:
		i := g.nextRestore.Add(1) - 1
		if i >= int64(g.runs) {
			return request{}, false
		}
		return request{kind: kind, method: http.MethodPost, path: "/api/v1/runs/" + seededName(g.prefix, int(i)) + "/restore", body: map[string]bool{},
			done: func(code int) {
				if code != http.StatusAccepted {
					return
				}
				for prev := g.lastRestore.Load(); i > prev && !g.lastRestore.CompareAndSwap(prev, i); prev = g.lastRestore.Load() {
				}
			}}, true
	case KindProcess:
		select {
		case name := <-g.created:
			return request{kind: kind, method: http.MethodPost, path: "/api/v1/runs/" + name + "/process", body: map[string]bool{}, done: func(int) {}}, true
		default: // nothing to process yet: create
		}
	}
	name := fmt.Sprintf("%s-new-%06d", g.prefix, g.nextCreate.Add(1))
	return request{kind: KindCreate, method: http.MethodPost, path: "/api/v1/runs", body: map[string]string{"name": name, "config": g.fx.Before.YAML},
		done: func(code int) {
			if code != http.StatusCreated {
				return
			}
			select {
			case g.created <- name:
			default: // enough runs waiting to be processed
			}
		}}, true
}

// outcome names a request's result: its status code, or "error".
func outcome(code int, err error) string {
	if err != nil {
		return "error"
	}
	return strconv.Itoa(code)
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
