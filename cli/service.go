package cli

import (
	"flag"
	"log/slog"
	"strconv"
	"time"

	commandpkg "github.com/piperun/piperun/command"
	"github.com/piperun/piperun/handlers/web"
	"github.com/piperun/piperun/wiring"
)

// Version is piperun's version, set at build time with
// -ldflags "-X github.com/piperun/piperun/cli.Version=v1.2.3"; when unset
// the module's build information is used.
var Version = ""

var serveHelp = help{
	usage: []string{"serve [--data-dir DIR] [--artifacts-url URL] [--addr HOST:PORT] [--images-dir DIR] [--kafka-brokers HOST:PORT,...] [--kafka-topic TOPIC] [--workers=false] [--recover-every D] [--cache-mb N] [--session-idle D] [--read-timeout D] [--write-timeout D] [--idle-timeout D] [--max-header-kb N] [--max-streams N] [--max-streams-per-user N]"},
	description: `
Runs the piperun service on a data directory: the HTTP API (and web pages)
on --addr, and the workers that process runs, restore them and delete them.
It keeps running until interrupted (SIGINT or SIGTERM), then stops cleanly:
jobs that were cut short are picked up again at the next start.

The data directory is created if needed. On the first start, when there is
no user yet, an administrator "admin" is created and its API token printed
once on standard output.

Input paths in run configurations are relative to --images-dir, and may not
leave it.

Work a previous process left pending (a job, a restore, a deletion) is
picked up in the background once the server serves, and again every
--recover-every: a worker runs a job or a restore only while it holds its
lease (an flock in <data-dir>/artifacts/leases, freed when its holder dies),
so a live process's work is left alone and a dead one's taken up. With
--kafka-brokers no directory is shared: a run's jobs and restores belong to
the worker assigned the run's partition, which takes up the pending work
of its partitions as soon as it is assigned them. Every 6 hours the
workers delete stored artifacts that no run uses and that are more than a
day old ('piperun artifacts sweep' does it on demand).

Commands decide on the runs' states kept in memory, up to --cache-mb
megabytes (the least recently used go first). At start the cache is filled
from the read models, the most recently updated runs first, beside the
serving: a first command on a run then need not read its snapshot and
events. A state kept here that another process has changed since costs a
retry, never a wrong decision: the event store's expected version decides.
Go's garbage collector runs with GOGC=400 rather than 100 (measured: a
quarter more commands per second), so the heap may grow to five times the
live data; past a soft limit of half the memory it collects more often.
GOGC and GOMEMLIMIT in the environment override both.

With --kafka-brokers the run events travel on Kafka (topic --kafka-topic,
created if missing) instead of inside the process: the API replicas elect
one of them, through the Kafka consumer group --kafka-relay-group, to
publish them (leadership and checkpoint live in Kafka: the replicas need
no shared directory, and a new leader resumes after the last acknowledged
batch); its workers, unless --workers=false, consume them in the group
piperun-workers beside any 'piperun worker'. An event larger than
--kafka-max-message-bytes goes to the topic TOPIC.dead-letter and the
relay goes on. /readyz stays ready while Kafka is down (commands are
stored and relayed later); /healthz details the relay (leader or standby,
lag, last publish error, dead letters) and the brokers; /metrics serves
Prometheus metrics. TLS and SASL/SCRAM are set with the --kafka-tls* and
--kafka-sasl-* flags.

Every connection is bounded: a request, body included, must arrive within
--read-timeout and its answer leave within --write-timeout; a keep-alive
connection is closed after --idle-timeout without a request; a header
over --max-header-kb gets 431, and a body over 2 MiB (two configurations
of up to 1 MiB) 413. The run pages' live streams are exempt from the
timeouts but must take each event within --write-timeout; at most
--max-streams are open in all and --max-streams-per-user per user, past
which a stream is refused with 429 (the page then says that live updates
are unavailable and a refresh updates it).
` + artifactsHelp,
	env: []string{
		dataDirEnv,
		esdbEnv,
		artifactsEnv,
		EnvAddr + "        listen address, when --addr is not given (default " + DefaultAddr + ")",
		EnvSessionKeyFile + "  web session key file, when --session-key-file is not given",
		EnvSessionIdle + "      web session idle limit, when --session-idle is not given (default 12h)",
		EnvImagesDir + "  images root, when --images-dir is not given (default " + DefaultImagesDir + ")",
		kafkaBrokersEnv,
		kafkaTopicEnv,
		kafkaSettingsEnv[0],
		kafkaSettingsEnv[1],
		EnvWorkers + "     \"false\" for an API-only replica, when --workers is not given",
		gogcEnv,
		gomemlimitEnv,
	},
	examples: `
piperun serve --data-dir /srv/piperun --images-dir /data/vast --addr 0.0.0.0:8080
PIPERUN_DATA_DIR=/srv/piperun piperun serve
AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... piperun serve \
  --artifacts-url 's3://piperun-artifacts?endpoint=http://minio:9000&region=us-east-1&use_path_style=true'`,
}

func cmdServe(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	artifactsFlag(fs)
	fs.String("addr", DefaultAddr, "`HOST:PORT` the HTTP API listens on")
	fs.String("session-key-file", "", "`FILE` holding the web session key (default <data-dir>/session.key; with --esdb-url the key is kept in the event store, shared by every replica)")
	fs.Duration("session-idle", web.DefaultSessionIdle, "end a web session unused for this `DURATION` (sessions end after 7 days whatever their use)")
	fs.String("images-dir", DefaultImagesDir, "`DIR`: the root that input paths are relative to")
	kafkaFlags(fs)
	fs.Bool("workers", true, "run the workers in this process (false: only the API and the relay, with Kafka)")
	recoverFlag(fs)
	cacheFlag(fs)
	httpFlags(fs)
	fs.String("max-streams", strconv.Itoa(web.DefaultMaxStreams), "live streams `N` of the run pages open at most in all (429 past it)")
	fs.String("max-streams-per-user", strconv.Itoa(web.DefaultMaxStreamsPerUser), "live streams `N` of the run pages one user may have open (429 past it)")
	if _, err := e.parse(fs, serveHelp, args, 0, 0, ""); err != nil {
		return err
	}
	limits, err := httpLimits(fs)
	if err != nil {
		return err
	}
	maxStreams, err := positiveInt(fs, "max-streams")
	if err != nil {
		return err
	}
	maxStreamsPerUser, err := positiveInt(fs, "max-streams-per-user")
	if err != nil {
		return err
	}
	recoverEvery, err := positiveDuration(fs, "recover-every")
	if err != nil {
		return err
	}
	cache, err := cacheBytes(fs)
	if err != nil {
		return err
	}
	sessionIdle, err := time.ParseDuration(e.fromEnv(fs, "session-idle", EnvSessionIdle))
	if err != nil || sessionIdle <= 0 {
		return usagef("--session-idle (or %s) must be a positive duration such as 12h", EnvSessionIdle)
	}
	workers, err := strconv.ParseBool(e.fromEnv(fs, "workers", EnvWorkers))
	if err != nil {
		return usagef("--workers (or %s) must be true or false", EnvWorkers)
	}
	kcfg, err := e.kafkaConfig(fs)
	if err != nil {
		return err
	}
	cfg := wiring.Config{
		DataDir:        e.fromEnv(fs, "data-dir", EnvDataDir),
		ESDBURL:        e.fromEnv(fs, "esdb-url", EnvESDBURL),
		ArtifactsURL:   e.fromEnv(fs, "artifacts-url", EnvArtifactsURL),
		Addr:           e.fromEnv(fs, "addr", EnvAddr),
		SessionKeyFile: e.fromEnv(fs, "session-key-file", EnvSessionKeyFile),
		SessionIdle:    sessionIdle,
		ImagesDir:      e.fromEnv(fs, "images-dir", EnvImagesDir),
		Workers:        workers,
		RecoverEvery:   recoverEvery,
		CacheBytes:     cache,
		HTTP:           limits,
		MaxStreams:     maxStreams,
		Kafka:          kcfg,
		Logger:         slog.New(slog.NewTextHandler(e.stderr, nil)),
		Stdout:         e.stdout,
	}
	cfg.MaxStreamsPerUser = maxStreamsPerUser
	if !workers && len(cfg.Kafka.Brokers) == 0 {
		return usagef("--workers=false needs --kafka-brokers: without Kafka, nothing else would process this server's runs")
	}
	if cfg.Addr == "" {
		return usagef("--addr must not be empty (use 'piperun worker' for a process without the HTTP API)")
	}
	logGC(cfg.Logger)
	return wiring.Run(e.ctx, cfg)
}

var workerHelp = help{
	usage: []string{"worker [--data-dir DIR] [--artifacts-url URL] [--images-dir DIR] [--kafka-brokers HOST:PORT,...] [--kafka-topic TOPIC] [--metrics-addr HOST:PORT] [--recover-every D] [--cache-mb N] [--read-timeout D] [--write-timeout D] [--idle-timeout D] [--max-header-kb N]"},
	description: `
Runs only the workers (processing, restore, deletion, artifact clean-up) on
a data directory, without the HTTP API: a way to add processing capacity
next to a 'piperun serve' on the same data directory. It keeps running until
interrupted (SIGINT or SIGTERM).

--images-dir must be the same images root as the server's.

With --kafka-brokers the worker consumes the run events from Kafka in the
group piperun-workers (it publishes nothing: the API servers relay the
event log, its own events included); run as many as needed. Without it,
it relays the log to its own workers. --metrics-addr serves /metrics,
/healthz and /readyz, which fails while the consumer group makes no
progress. Its connections are bounded by --read-timeout, --write-timeout,
--idle-timeout and --max-header-kb, as 'piperun serve' bounds its own. The
--kafka-* settings are those of 'piperun serve'.
` + artifactsHelp,
	env: []string{
		dataDirEnv,
		esdbEnv,
		artifactsEnv,
		EnvImagesDir + "  images root, when --images-dir is not given (default " + DefaultImagesDir + ")",
		kafkaBrokersEnv,
		kafkaTopicEnv,
		kafkaSettingsEnv[0],
		kafkaSettingsEnv[1],
		EnvMetricsAddr + "  metrics listen address, when --metrics-addr is not given (default: none)",
		gogcEnv,
		gomemlimitEnv,
	},
	examples: `
piperun worker --data-dir /srv/piperun --images-dir /data/vast`,
}

func cmdWorker(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	artifactsFlag(fs)
	fs.String("images-dir", DefaultImagesDir, "`DIR`: the root that input paths are relative to")
	kafkaFlags(fs)
	fs.String("metrics-addr", "", "`HOST:PORT` to serve /metrics, /healthz and /readyz on (default: none)")
	recoverFlag(fs)
	cacheFlag(fs)
	httpFlags(fs)
	if _, err := e.parse(fs, workerHelp, args, 0, 0, ""); err != nil {
		return err
	}
	limits, err := httpLimits(fs)
	if err != nil {
		return err
	}
	recoverEvery, err := positiveDuration(fs, "recover-every")
	if err != nil {
		return err
	}
	cache, err := cacheBytes(fs)
	if err != nil {
		return err
	}
	kcfg, err := e.kafkaConfig(fs)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	logGC(log)
	return wiring.Run(e.ctx, wiring.Config{
		RecoverEvery: recoverEvery,
		CacheBytes:   cache,
		HTTP:         limits,
		DataDir:      e.fromEnv(fs, "data-dir", EnvDataDir),
		ESDBURL:      e.fromEnv(fs, "esdb-url", EnvESDBURL),
		ArtifactsURL: e.fromEnv(fs, "artifacts-url", EnvArtifactsURL),
		ImagesDir:    e.fromEnv(fs, "images-dir", EnvImagesDir),
		Workers:      true,
		Kafka:        kcfg,
		MetricsAddr:  e.fromEnv(fs, "metrics-addr", EnvMetricsAddr),
		Logger:       log,
		Stdout:       e.stdout,
	})
}

// cacheFlag is --cache-mb, the command cache's budget.
func cacheFlag(fs *flag.FlagSet) {
	fs.String("cache-mb", strconv.Itoa(commandpkg.DefaultCacheBytes>>20), "megabytes `N` of run states kept in memory for commands (warmed from the read models at start)")
}

// cacheBytes reads --cache-mb.
func cacheBytes(fs *flag.FlagSet) (int, error) {
	mb, err := strconv.Atoi(fs.Lookup("cache-mb").Value.String())
	if err != nil || mb < 1 || mb > 1<<20 {
		return 0, usagef("--cache-mb must be a whole number of megabytes from 1 to 1048576")
	}
	return mb << 20, nil
}

// httpFlags are the bounds of every HTTP connection (wiring.HTTPLimits).
func httpFlags(fs *flag.FlagSet) {
	fs.String("read-timeout", wiring.DefaultReadTimeout.String(), "time `D` a client has to send a whole request, body included")
	fs.String("write-timeout", wiring.DefaultWriteTimeout.String(), "time `D` a client has to take an answer (for a live stream: each of its events)")
	fs.String("idle-timeout", wiring.DefaultIdleTimeout.String(), "time `D` a keep-alive connection may wait for its next request")
	fs.String("max-header-kb", strconv.Itoa(wiring.DefaultMaxHeaderBytes>>10), "kibibytes `N` a request's header may have (431 past it)")
}

// httpLimits reads httpFlags.
func httpLimits(fs *flag.FlagSet) (wiring.HTTPLimits, error) {
	var l wiring.HTTPLimits
	var err error
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"read-timeout", &l.ReadTimeout}, {"write-timeout", &l.WriteTimeout}, {"idle-timeout", &l.IdleTimeout}} {
		if *d.to, err = positiveDuration(fs, d.name); err != nil {
			return l, err
		}
	}
	kb, err := positiveInt(fs, "max-header-kb")
	if err != nil {
		return l, err
	}
	if kb > 1<<20 {
		return l, usagef("--max-header-kb must be at most 1048576")
	}
	l.MaxHeaderBytes = kb << 10
	return l, nil
}

// recoverFlag is --recover-every, for the processes that run workers.
func recoverFlag(fs *flag.FlagSet) {
	fs.String("recover-every", wiring.DefaultRecoverEvery.String(), "how often `D` to take up work a process that died left (a job or restore whose lease is free)")
}

// EnvSessionKeyFile names the web session key file.
const EnvSessionKeyFile = "PIPERUN_SESSION_KEY_FILE"

// EnvSessionIdle is the web session idle limit (a Go duration, e.g. 12h).
const EnvSessionIdle = "PIPERUN_SESSION_IDLE"
