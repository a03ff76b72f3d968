package cli

import (
	"fmt"
	"net/url"

	"github.com/piperun/piperun/bench"
)

var benchHTTPHelp = help{
	usage: []string{"bench http [--runs N] [--clients C] [--duration D] [--requests N] [--mix restore=90,create=5,process=5] [--data-dir DIR] [--api-only] [--respond-async] [--go-client] [--cache-mb MB] [--cpuprofile FILE] [--memprofile FILE]",
		"bench http --server URL --token TOKEN --images-dir DIR [FLAGS]"},
	description: `
Loads a piperun server with create, process and restore requests from
--clients clients sending requests back to back, and reports, per kind of
request, how many were accepted per second and their latency percentiles
(p50, p90, p99, max), with the HTTP statuses they got. --mix weighs the
kinds; every restore goes to a run of its own.

Without --server, a server is started in this process on a loopback port
over --data-dir (default: a temporary directory), after --runs restorable
runs are seeded into its event store: each run is created, processed, an
image added and processed in add mode, every step a command of the service
(as its API and workers give them, snapshots included) with the processing
itself skipped; the products are real, from processing a small synthetic
survey once. The server starts after the seeding, with nothing in memory,
as after a restart. The load starts once the server has handed its whole
event log to its workers. Its command cache holds --cache-mb of run states
(as serve's flag; a state of the seeded runs takes about 10 KB): runs it
cannot hold are loaded from their snapshots and events on each command,
which costs far more than the command.
With --api-only the in-process server runs without workers during the
load, as an API replica does (serve --workers=false), so that the figures
are the API's own, not shared with the restores' work on the same cores;
after the load it is stopped and a server with workers, started on the same
data directory, carries out the accepted restores (the drain).
With --respond-async the commands are sent with "Prefer: respond-async":
the server answers once their events are stored, without waiting for its
read models to show them (what a client does that does not read the run
right after).

By default the load generator speaks HTTP/1.1 itself over one keep-alive
connection per client, as wrk does, so that the clients' share of the CPU
(taken from the in-process server on the same cores) is small; it reads
only the status of each answer. --go-client sends the load's requests with
Go's net/http client instead, whose clients take more than twice the CPU
per request; it is also the only way to load an https:// --server.
(The preparation and the drain use Go's client either way.)

With --server, the runs are made through the API instead (each processed
twice), which is slower; --token must be an administrator's, and
--images-dir the server's images root on this machine: the synthetic
survey is written under it, in piperun-bench/.

The load stops after --duration, after --requests requests, or when every
prepared run has been restored, whichever comes first; then the command
waits (at most --drain) for the workers to finish the accepted restores and
reports how long that took. --cpuprofile writes a CPU profile of the load
(server and clients, when in-process) for 'go tool pprof'. --memprofile
writes heap profiles when the load starts (FILE.base) and ends (FILE);
'go tool pprof -sample_index=alloc_space -base FILE.base FILE' shows what
the load allocated, by where.`,
	env: []string{EnvToken + "   API token, when --server is given without --token"},
	examples: `
piperun bench http --runs 20000 --duration 10s --mix restore=1
piperun bench http --runs 20000 --duration 10s --mix restore=1 --api-only
piperun bench http --clients 16 --cpuprofile http.prof
piperun bench http --runs 20000 --duration 10s --mix restore=1 --api-only --go-client
piperun bench http --server http://127.0.0.1:8080 --token "$TOKEN" --images-dir /data/vast --runs 500`,
}

func cmdBenchHTTP(e *env, args []string) error {
	fs := e.flagSet()
	server := fs.String("server", "", "`URL` of a running server to load (default: start one in this process)")
	fs.String("token", "", "administrator's API `TOKEN` for --server")
	imagesDir := fs.String("images-dir", "", "`DIR`: the images root of --server, where the synthetic survey is written")
	dataDir := fs.String("data-dir", "", "`DIR` for the in-process server's data (default: a temporary directory)")
	fs.Int("runs", 20000, "number `N` of restorable runs prepared before the load")
	fs.Int("clients", 64, "number `C` of concurrent clients")
	fs.String("duration", "10s", "longest `D`uration of the load")
	requests := fs.Int("requests", 0, "most requests `N` to send (default: no limit)")
	mix := fs.String("mix", bench.DefaultMix.String(), "weights of the request kinds, `restore=W,create=W,process=W`")
	fs.String("drain", "2m", "longest wait `D` for the workers to finish the accepted restores after the load")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the load to `FILE`")
	memProfile := fs.String("memprofile", "", "write heap profiles of the load's start and end to `FILE`.base and FILE")
	respondAsync := fs.Bool("respond-async", false, "send the commands with \"Prefer: respond-async\": answered once stored, without waiting for the read models")
	goClient := fs.Bool("go-client", false, "send the load's requests with Go's net/http client (default: the benchmark's own HTTP/1.1 client, one keep-alive connection per client, as wrk does)")
	cacheMB := fs.Int("cache-mb", 0, "command cache of the in-process server, in `MB` (default: serve's, 256): a run it cannot hold is loaded from the store on each command")
	apiOnly := fs.Bool("api-only", false, "run the in-process server without workers during the load (as serve --workers=false); a server with workers carries out the accepted restores afterwards")
	if _, err := e.parse(fs, benchHTTPHelp, args, 0, 0, ""); err != nil {
		return err
	}
	var opts bench.HTTPOptions
	var err error
	if opts.Runs, err = positiveInt(fs, "runs"); err != nil {
		return err
	}
	if opts.Concurrency, err = positiveInt(fs, "clients"); err != nil {
		return err
	}
	if opts.Duration, err = positiveDuration(fs, "duration"); err != nil {
		return err
	}
	if opts.Drain, err = positiveDuration(fs, "drain"); err != nil {
		return err
	}
	if *requests < 0 {
		return usagef("--requests must not be negative")
	}
	if *cacheMB < 0 {
		return usagef("--cache-mb must not be negative")
	}
	opts.CacheBytes = *cacheMB << 20
	if opts.Mix, err = bench.ParseMix(*mix); err != nil {
		return usagef("--mix: %v", err)
	}
	opts.MemProfile = *memProfile
	opts.Requests, opts.DataDir, opts.CPUProfile, opts.APIOnly, opts.RespondAsync, opts.GoClient = *requests, *dataDir, *profile, *apiOnly, *respondAsync, *goClient
	if *server != "" {
		u, err := url.Parse(*server)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			return usagef("--server %q: want an http:// or https:// URL", *server)
		case u.Scheme == "https" && !*goClient:
			return usagef("--server %q: the load generator's own client speaks plain http:// only; add --go-client to load an https:// server", *server)
		}
		opts.Server, opts.ImagesDir = *server, *imagesDir
		opts.Token = e.fromEnv(fs, "token", EnvToken)
		if opts.Token == "" || opts.ImagesDir == "" {
			return usagef("--server needs --token (or %s) and --images-dir", EnvToken)
		}
		if *dataDir != "" {
			return usagef("--data-dir is for the in-process server; with --server the data stays on the server")
		}
		if *apiOnly {
			return usagef("--api-only is for the in-process server; start --server with --workers=false instead")
		}
	} else if *imagesDir != "" {
		return usagef("--images-dir goes with --server (the in-process server's images are under --data-dir)")
	}
	if *server == "" {
		// The in-process server's collector is set as serve sets it.
		gogc, limit := tuneGC()
		fmt.Fprintf(e.stdout, "garbage collector of this process as serve sets it: GOGC %s, soft memory limit %s\n", gogc, limitText(limit))
	}
	_, err = bench.HTTP(e.ctx, opts, e.stdout)
	return err
}
