// Generating the HTTP load: the workers that send the mix of requests and time them.

package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piperun/piperun/domain"
)

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
