package cli

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/handlers/web"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/server"
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
	cfg := server.Config{
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
	return server.Run(e.ctx, cfg)
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
	return server.Run(e.ctx, server.Config{
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

// subcommand is a command of a group such as "user".
type subcommand struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// dispatch runs the subcommand named by args[0].
func (e *env) dispatch(subs []subcommand, args []string) error {
	list := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage: piperun %s SUBCOMMAND [ARGS] [FLAGS]\n\nSubcommands:\n", e.path)
		for _, s := range subs {
			fmt.Fprintf(&b, "  %-10s%s\n", s.name, s.summary)
		}
		fmt.Fprintf(&b, "\nRun 'piperun %s SUBCOMMAND --help' for its flags and examples.\n", e.path)
		return b.String()
	}
	if len(args) == 0 {
		fmt.Fprint(e.stderr, list())
		return usagef("missing subcommand")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, list())
		return errHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			e.path += " " + s.name
			return s.run(e, args[1:])
		}
	}
	return usagef("unknown subcommand %q", args[0])
}

func cmdUser(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "add", summary: "create a user and print its API token", run: cmdUserAdd},
		{name: "revoke", summary: "withdraw a user's API token and end their web sessions", run: cmdUserRevoke},
		{name: "rotate", summary: "give a user a new API token (printed once); the old one stops working", run: cmdUserRotate},
	}, args)
}

var userAddHelp = help{
	usage: []string{"user add NAME [--admin] [--data-dir DIR]"},
	description: `
Creates the user NAME in a data directory and prints its API token, and
only the token, on standard output: it is shown this once (the service
keeps only its hash). Works whether or not a server is running on the data
directory; a running server accepts the token at once.

User names have 1 to 64 ASCII letters, digits, '.', '_' and '-', and start
with a letter or a digit. Administrators may change any run; other users
only the runs they created. 'piperun user revoke' and 'piperun user rotate'
withdraw or replace a token.`,
	env: []string{dataDirEnv, esdbEnv},
	examples: `
TOKEN=$(piperun user add alice --data-dir /srv/piperun)
piperun user add bob --admin`,
}

func cmdUserAdd(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	admin := fs.Bool("admin", false, "make the user an administrator")
	pos, err := e.parse(fs, userAddHelp, args, 1, 1, "the user NAME")
	if err != nil {
		return err
	}
	token, err := server.AddUser(e.ctx, e.storage(fs), pos[0], *admin)
	if err != nil {
		return fmt.Errorf("add user %s: %w", pos[0], err)
	}
	fmt.Fprintln(e.stdout, token)
	return nil
}

func cmdProjections(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "rebuild", summary: "drop the read models and rebuild them from the event log", run: cmdProjectionsRebuild},
	}, args)
}

var rebuildHelp = help{
	usage: []string{"projections rebuild [--data-dir DIR]"},
	description: `
Drops the read models of a data directory (run list, run details, logs,
users) and rebuilds them from the event log, which is the only source of
truth. Use it after a change to how events are projected, or if the read
model file was damaged. Stop the service on the data directory first.`,
	env: []string{dataDirEnv, esdbEnv},
	examples: `
piperun projections rebuild --data-dir /srv/piperun`,
}

func cmdProjectionsRebuild(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	if _, err := e.parse(fs, rebuildHelp, args, 0, 0, ""); err != nil {
		return err
	}
	return server.RebuildProjections(e.ctx, e.storage(fs), e.stdout)
}

// cacheFlag is --cache-mb, the command cache's budget.
func cacheFlag(fs *flag.FlagSet) {
	fs.String("cache-mb", strconv.Itoa(app.DefaultCacheBytes>>20), "megabytes `N` of run states kept in memory for commands (warmed from the read models at start)")
}

// cacheBytes reads --cache-mb.
func cacheBytes(fs *flag.FlagSet) (int, error) {
	mb, err := strconv.Atoi(fs.Lookup("cache-mb").Value.String())
	if err != nil || mb < 1 || mb > 1<<20 {
		return 0, usagef("--cache-mb must be a whole number of megabytes from 1 to 1048576")
	}
	return mb << 20, nil
}

// httpFlags are the bounds of every HTTP connection (server.HTTPLimits).
func httpFlags(fs *flag.FlagSet) {
	fs.String("read-timeout", server.DefaultReadTimeout.String(), "time `D` a client has to send a whole request, body included")
	fs.String("write-timeout", server.DefaultWriteTimeout.String(), "time `D` a client has to take an answer (for a live stream: each of its events)")
	fs.String("idle-timeout", server.DefaultIdleTimeout.String(), "time `D` a keep-alive connection may wait for its next request")
	fs.String("max-header-kb", strconv.Itoa(server.DefaultMaxHeaderBytes>>10), "kibibytes `N` a request's header may have (431 past it)")
}

// httpLimits reads httpFlags.
func httpLimits(fs *flag.FlagSet) (server.HTTPLimits, error) {
	var l server.HTTPLimits
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
	fs.String("recover-every", server.DefaultRecoverEvery.String(), "how often `D` to take up work a process that died left (a job or restore whose lease is free)")
}

func cmdArtifacts(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "sweep", summary: "delete stored products no run uses any more", run: cmdArtifactsSweep},
	}, args)
}

var sweepHelp = help{
	usage: []string{"artifacts sweep [--data-dir DIR] [--artifacts-url URL] [--grace D]"},
	description: `
Deletes the stored artifacts (products, backups) of a data directory that no
run uses any more, in its current products or its backup, and that are
older than --grace; and the leftovers of writes a crash cut short. A restore
or a deletion removes what it abandons, but not while a processing job is
pending anywhere, and a process that dies between writing products and
recording them leaves files that no run names: this finds them. A server
with workers sweeps on its own every 6 hours.

It deletes nothing while a processing job is pending (its products are not
recorded yet). It is safe while a server runs on the data directory.
Give it the servers' --artifacts-url when their products are in a bucket.`,
	env: []string{dataDirEnv, esdbEnv, artifactsEnv},
	examples: `
piperun artifacts sweep --data-dir /srv/piperun
piperun artifacts sweep --grace 1h`,
}

func cmdArtifactsSweep(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	artifactsFlag(fs)
	fs.String("grace", server.DefaultSweepGrace.String(), "leave files younger than `D`, e.g. 24h or 30m")
	if _, err := e.parse(fs, sweepHelp, args, 0, 0, ""); err != nil {
		return err
	}
	grace, err := positiveDuration(fs, "grace")
	if err != nil {
		return err
	}
	_, err = server.SweepArtifacts(e.ctx, e.storage(fs), grace, e.stdout)
	return err
}

var versionHelp = help{
	usage:       []string{"version"},
	description: `Prints piperun's version, and the Go version and source revision it was built from.`,
	examples:    `piperun version`,
}

func cmdVersion(e *env, args []string) error {
	fs := e.flagSet()
	if _, err := e.parse(fs, versionHelp, args, 0, 0, ""); err != nil {
		return err
	}
	v, extra := Version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		extra = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				extra += ", revision " + s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if extra != "" {
		v += " (" + extra + ")"
	}
	fmt.Fprintf(e.stdout, "piperun %s\n", v)
	return nil
}

var helpHelp = help{
	usage:       []string{"help [COMMAND [SUBCOMMAND]]"},
	description: `Shows the list of commands, or the help of one command (the same as 'piperun COMMAND --help').`,
	examples:    "piperun help restorepiperun\npiperun help user add",
}

func cmdHelp(e *env, args []string) error {
	fs := e.flagSet()
	pos, err := e.parse(fs, helpHelp, args, 0, 2, "")
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		topHelp(e.stdout)
		return nil
	}
	cmd, ok := lookup(pos[0])
	if !ok {
		return usagef("unknown command %q", pos[0])
	}
	e.path = pos[0]
	err = cmd.run(e, append(pos[1:], "--help"))
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// EnvESDBURL selects EventStoreDB as the event store.
const EnvESDBURL = "PIPERUN_ESDB_URL"

const esdbEnv = EnvESDBURL + "  EventStoreDB URL, when --esdb-url is not given (default: the embedded store)"

func esdbFlag(fs *flag.FlagSet) {
	fs.String("esdb-url", "", "`URL` of EventStoreDB (esdb://host:2113?tls=false) to use as the event store instead of the embedded one in --data-dir")
}

// storage is where the command's state lives.
func (e *env) storage(fs *flag.FlagSet) server.Storage {
	st := server.Storage{DataDir: e.fromEnv(fs, "data-dir", EnvDataDir), ESDBURL: e.fromEnv(fs, "esdb-url", EnvESDBURL)}
	if fs.Lookup("artifacts-url") != nil {
		st.ArtifactsURL = e.fromEnv(fs, "artifacts-url", EnvArtifactsURL)
	}
	return st
}

// EnvArtifactsURL says where the products are stored.
const EnvArtifactsURL = "PIPERUN_ARTIFACTS_URL"

const artifactsEnv = EnvArtifactsURL + "  where products are stored, when --artifacts-url is not given (default <data-dir>/artifacts)"

// artifactsHelp describes --artifacts-url in the commands that take it.
const artifactsHelp = `
Products (the Parquet files of the runs) are stored by content digest in
<data-dir>/artifacts, or where --artifacts-url says: a directory, a
file:///DIR URL, or an S3 bucket (AWS, MinIO, Ceph) as
s3://BUCKET?endpoint=URL&region=REGION&use_path_style=true (add
&prefix=DIR/ to keep them under a prefix). A bucket's credentials come
from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS SDK's other
sources), never from the URL. Processes that share no disk share a bucket.
The bucket must exist: a URL that is wrong or unreachable stops the start.`

func artifactsFlag(fs *flag.FlagSet) {
	fs.String("artifacts-url", "", "where products are stored: a `URL` (s3://BUCKET?endpoint=...&region=...&use_path_style=true) or directory (default <data-dir>/artifacts)")
}

// Environment variables of the distributed mode.
const (
	EnvKafkaBrokers = "PIPERUN_KAFKA_BROKERS"
	EnvKafkaTopic   = "PIPERUN_KAFKA_TOPIC"
	EnvWorkers      = "PIPERUN_WORKERS"
	EnvMetricsAddr  = "PIPERUN_METRICS_ADDR"
)

const (
	kafkaBrokersEnv = EnvKafkaBrokers + "  Kafka brokers, when --kafka-brokers is not given (default: none, the in-process bus)"
	kafkaTopicEnv   = EnvKafkaTopic + "    Kafka topic, when --kafka-topic is not given"
	gogcEnv         = "GOGC                   Go's garbage collector target (default here 400, not Go's 100: faster, for more memory)"
	gomemlimitEnv   = "GOMEMLIMIT             Go's soft memory limit (default here: half the memory of the machine or control group)"
)

func kafkaFlags(fs *flag.FlagSet) {
	fs.String("kafka-brokers", "", "comma-separated `HOST:PORT` list of Kafka brokers that carry the run events (default: none, the in-process bus)")
	fs.String("kafka-topic", messaging.DefaultTopic, "Kafka `TOPIC` of the run events (its dead letters go to TOPIC.dead-letter; TOPIC.relay elects the relay)")
	fs.Int("kafka-partitions", kafka.DefaultPartitions, "partition `COUNT` of the topic when piperun creates it (an existing topic is left as it is; fewer partitions are logged)")
	fs.Int("kafka-replication-factor", 0, "replication `FACTOR` of the topics piperun creates (default 0: the broker's default.replication.factor)")
	fs.Int("kafka-max-message-bytes", kafka.DefaultMaxMessageBytes, "largest record in `BYTES` piperun produces, and the max.message.bytes of the topics it creates; it holds the largest event the API accepts, and a larger event goes to the dead-letter topic")
	fs.Int("kafka-batch-size", kafka.DefaultBatchSize, "events per produce request of the relay (`N`, 1 to 10000)")
	fs.String("kafka-relay-group", kafka.DefaultRelayGroup, "consumer `GROUP` that elects the relay; its committed offset metadata is the relay's checkpoint")
	fs.Bool("kafka-tls", false, "speak TLS to the brokers")
	fs.String("kafka-tls-ca-file", "", "PEM `FILE` of the authorities that sign the brokers' certificates (default: the system's; needs --kafka-tls)")
	fs.String("kafka-tls-cert-file", "", "PEM `FILE` of piperun's client certificate (with --kafka-tls-key-file; needs --kafka-tls)")
	fs.String("kafka-tls-key-file", "", "PEM `FILE` of piperun's client key (with --kafka-tls-cert-file)")
	fs.Bool("kafka-tls-insecure-skip-verify", false, "accept any broker certificate: for testing only; refused with --kafka-tls-ca-file")
	fs.String("kafka-sasl-mechanism", "", "SASL `MECHANISM`: SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)")
	fs.String("kafka-sasl-user", "", "SASL `USER`")
	fs.String("kafka-sasl-password-file", "", "`FILE` holding the SASL password (or set "+EnvKafkaSASLPassword+"; never on the command line)")
}

// Environment variables of the Kafka settings.
const (
	EnvKafkaPartitions      = "PIPERUN_KAFKA_PARTITIONS"
	EnvKafkaReplication     = "PIPERUN_KAFKA_REPLICATION_FACTOR"
	EnvKafkaMaxMessageBytes = "PIPERUN_KAFKA_MAX_MESSAGE_BYTES"
	EnvKafkaBatchSize       = "PIPERUN_KAFKA_BATCH_SIZE"
	EnvKafkaRelayGroup      = "PIPERUN_KAFKA_RELAY_GROUP"
	EnvKafkaTLS             = "PIPERUN_KAFKA_TLS"
	EnvKafkaTLSCAFile       = "PIPERUN_KAFKA_TLS_CA_FILE"
	EnvKafkaTLSCertFile     = "PIPERUN_KAFKA_TLS_CERT_FILE"
	EnvKafkaTLSKeyFile      = "PIPERUN_KAFKA_TLS_KEY_FILE"
	EnvKafkaTLSInsecure     = "PIPERUN_KAFKA_TLS_INSECURE_SKIP_VERIFY"
	EnvKafkaSASLMechanism   = "PIPERUN_KAFKA_SASL_MECHANISM"
	EnvKafkaSASLUser        = "PIPERUN_KAFKA_SASL_USER"
	EnvKafkaSASLPassword    = "PIPERUN_KAFKA_SASL_PASSWORD"
	EnvKafkaSASLPassFile    = "PIPERUN_KAFKA_SASL_PASSWORD_FILE"
)

// kafkaSettingsEnv documents the environment of the Kafka settings.
var kafkaSettingsEnv = []string{
	"PIPERUN_KAFKA_<SETTING>  each --kafka-<setting> below, when the flag is not given (e.g. " + EnvKafkaTLSCAFile + ", " + EnvKafkaSASLUser + ")",
	EnvKafkaSASLPassword + "  the SASL password, when " + EnvKafkaSASLPassFile + " / --kafka-sasl-password-file is not given (never logged)",
}

// kafkaConfig is the Kafka configuration from the flags and environment,
// checked; no brokers means the in-process bus (and no other setting).
func (e *env) kafkaConfig(fs *flag.FlagSet) (kafka.Config, error) {
	str := func(flag, env string) string { return strings.TrimSpace(e.fromEnv(fs, flag, env)) }
	num := func(flag, env string) (int, error) {
		v := str(flag, env)
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, usagef("--%s (or %s) must be a whole number, not %q", flag, env, v)
		}
		return n, nil
	}
	boolean := func(flag, env string) (bool, error) {
		v := str(flag, env)
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, usagef("--%s (or %s) must be true or false, not %q", flag, env, v)
		}
		return b, nil
	}
	cfg := kafka.Config{
		Brokers:    kafka.ParseBrokers(str("kafka-brokers", EnvKafkaBrokers)),
		Topic:      str("kafka-topic", EnvKafkaTopic),
		RelayGroup: str("kafka-relay-group", EnvKafkaRelayGroup),
		TLS: kafka.TLSConfig{
			CAFile:   str("kafka-tls-ca-file", EnvKafkaTLSCAFile),
			CertFile: str("kafka-tls-cert-file", EnvKafkaTLSCertFile),
			KeyFile:  str("kafka-tls-key-file", EnvKafkaTLSKeyFile),
		},
		SASL: kafka.SASLConfig{
			Mechanism: strings.ToUpper(str("kafka-sasl-mechanism", EnvKafkaSASLMechanism)),
			User:      str("kafka-sasl-user", EnvKafkaSASLUser),
		},
	}
	var err error
	var n int
	if n, err = num("kafka-partitions", EnvKafkaPartitions); err != nil {
		return cfg, err
	}
	if n < 1 || n > 10000 {
		return cfg, usagef("--kafka-partitions (or %s) must be 1 to 10000, not %d", EnvKafkaPartitions, n)
	}
	cfg.Partitions = int32(n)
	if n, err = num("kafka-replication-factor", EnvKafkaReplication); err != nil {
		return cfg, err
	}
	if n < 0 || n > 100 {
		return cfg, usagef("--kafka-replication-factor (or %s) must be 0 (the broker's default) to 100, not %d", EnvKafkaReplication, n)
	}
	cfg.ReplicationFactor = int16(n)
	if cfg.MaxMessageBytes, err = num("kafka-max-message-bytes", EnvKafkaMaxMessageBytes); err != nil {
		return cfg, err
	}
	if cfg.BatchSize, err = num("kafka-batch-size", EnvKafkaBatchSize); err != nil {
		return cfg, err
	}
	if cfg.TLS.Enabled, err = boolean("kafka-tls", EnvKafkaTLS); err != nil {
		return cfg, err
	}
	if cfg.TLS.InsecureSkipVerify, err = boolean("kafka-tls-insecure-skip-verify", EnvKafkaTLSInsecure); err != nil {
		return cfg, err
	}
	if file := str("kafka-sasl-password-file", EnvKafkaSASLPassFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, usagef("--kafka-sasl-password-file: %v", err)
		}
		cfg.SASL.Password = strings.TrimRight(string(b), "\r\n")
		if cfg.SASL.Password == "" {
			return cfg, usagef("--kafka-sasl-password-file %s is empty", file)
		}
	} else {
		cfg.SASL.Password = e.getenv(EnvKafkaSASLPassword)
	}
	if len(cfg.Brokers) == 0 {
		if cfg.TLS.Enabled || cfg.TLS != (kafka.TLSConfig{}) || cfg.SASL.Mechanism != "" || cfg.SASL.User != "" {
			return cfg, usagef("Kafka TLS and SASL settings need --kafka-brokers (or %s)", EnvKafkaBrokers)
		}
		return cfg, nil
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// EnvSessionKeyFile names the web session key file.
const EnvSessionKeyFile = "PIPERUN_SESSION_KEY_FILE"

// EnvSessionIdle is the web session idle limit (a Go duration, e.g. 12h).
const EnvSessionIdle = "PIPERUN_SESSION_IDLE"
