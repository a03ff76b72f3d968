package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Environment variables read by the commands.
const (
	EnvServer    = "PIPERUN_SERVER"
	EnvToken     = "PIPERUN_TOKEN"
	EnvDataDir   = "PIPERUN_DATA_DIR"
	EnvAddr      = "PIPERUN_ADDR"
	EnvImagesDir = "PIPERUN_IMAGES_DIR"
)

// Defaults of the environment-backed flags.
const (
	DefaultServer    = "http://127.0.0.1:8080"
	DefaultDataDir   = "./piperun-data"
	DefaultAddr      = "127.0.0.1:8080"
	DefaultImagesDir = "."
)

// pollInterval is how often waiting commands look for news on the server.
var pollInterval = 300 * time.Millisecond

// errHelp: the command printed its help as asked; exit 0.
var errHelp = errors.New("help shown")

// usageError is a mistake in the command line; exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  *bufio.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdinTTY: stdin is a terminal.
	stdinTTY bool
	// path is the command as typed, e.g. "user add", for messages.
	path string
}

// command is one subcommand of piperun.
type command struct {
	name    string
	aliases []string
	group   string
	summary string
	run     func(e *env, args []string) error
}

// Command groups, in the order the top-level help lists them.
const (
	groupService     = "Service"
	groupRuns        = "Run"
	groupMaintenance = "Maintenance"
)

var groups = []string{groupService, groupRuns, groupMaintenance}

// commands returns every command; a function rather than a variable so
// that commands may refer to the list (help) without an init cycle.
func commands() []command {
	return []command{
		{name: "serve", group: groupService, summary: "run the HTTP API and the workers on a data directory", run: cmdServe},
		{name: "worker", group: groupService, summary: "run only the processing, restore and deletion workers", run: cmdWorker},
		{name: "healthcheck", group: groupService, summary: "ask a piperun process whether it is ready (exit 0 on a 200)", run: cmdHealthcheck},

		{name: "initpiperun", group: groupRuns, summary: "create a run from a configuration file (or print a template)", run: cmdInit},
		{name: "runpipeline", group: groupRuns, summary: "process a run (adding new images or a full run) and follow its log", run: cmdRunPipeline},
		{name: "restorepiperun", aliases: []string{"restore"}, group: groupRuns, summary: "restore a run to its version before the last addition of images", run: cmdRestore},
		{name: "cancel", group: groupRuns, summary: "cancel a run's queued or running job", run: cmdCancel},
		{name: "clearpiperun", group: groupRuns, summary: "delete runs and their products", run: cmdClear},
		{name: "config", group: groupRuns, summary: "show or replace a run's configuration (config get|set)", run: cmdConfig},
		{name: "status", group: groupRuns, summary: "show one run: status, figures, images and logs", run: cmdStatus},
		{name: "list", group: groupRuns, summary: "list the runs", run: cmdList},
		{name: "logs", group: groupRuns, summary: "list a run's logs or print one", run: cmdLogs},
		{name: "history", group: groupRuns, summary: "show a run's event timeline", run: cmdHistory},
		{name: "audit", group: groupRuns, summary: "replay a run's events and check they form a valid history", run: cmdAudit},
		{name: "whoami", group: groupRuns, summary: "show the user the API token belongs to", run: cmdWhoAmI},

		{name: "user", group: groupMaintenance, summary: "create users and manage their API tokens (user add|revoke|rotate)", run: cmdUser},
		{name: "projections", group: groupMaintenance, summary: "rebuild the read models from the event log (projections rebuild)", run: cmdProjections},
		{name: "artifacts", group: groupMaintenance, summary: "delete stored products no run uses any more (artifacts sweep)", run: cmdArtifacts},
		{name: "bench", group: groupMaintenance, summary: "time source association on a synthetic survey (bench associate)", run: cmdBench},
		{name: "version", group: groupMaintenance, summary: "print piperun's version", run: cmdVersion},
		{name: "help", group: groupMaintenance, summary: "show help for a command", run: cmdHelp},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
		for _, a := range c.aliases {
			if a == name {
				return c, true
			}
		}
	}
	return command{}, false
}

// Run runs the piperun command line args (without the program name) and
// returns the process's exit code: 0 on success, 1 when the command
// failed, 2 for a usage error. Commands that serve stop when ctx ends.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	e := &env{ctx: ctx, stdin: bufio.NewReader(stdin), stdout: stdout, stderr: stderr, getenv: os.Getenv, stdinTTY: isTerminal(stdin)}
	if len(args) == 0 {
		topHelp(stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		topHelp(stdout)
		return ExitOK
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := lookup(name)
	if !ok {
		if strings.HasPrefix(name, "-") {
			fmt.Fprintf(stderr, "piperun: flags go after the command: %s\nRun 'piperun --help' for the list of commands.\n", name)
		} else {
			fmt.Fprintf(stderr, "piperun: unknown command %q\nRun 'piperun --help' for the list of commands.\n", name)
		}
		return ExitUsage
	}
	e.path = name
	return e.exit(cmd.run(e, args[1:]))
}

// exit reports err and turns it into an exit code.
func (e *env) exit(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "piperun %s: %s\nRun 'piperun %s --help' for usage.\n", e.path, safe(ue.msg), e.path)
		return ExitUsage
	}
	fmt.Fprintf(e.stderr, "piperun %s: %s\n", e.path, safe(err.Error()))
	return ExitFailure
}

func topHelp(w io.Writer) {
	fmt.Fprint(w, `piperun manages runs of a radio-astronomy image pipeline modelled on the
ASKAP VAST pipeline: create a run over images (FITS image, selavy catalogue,
noise and background maps), process it, add images, and restore it to its
version before the last addition.

Usage: piperun COMMAND [ARGS] [FLAGS]

`)
	names := map[string]string{}
	width := 0
	for _, c := range commands() {
		name := c.name
		if len(c.aliases) > 0 {
			name += " (" + strings.Join(c.aliases, ", ") + ")"
		}
		names[c.name] = name
		width = max(width, len(name))
	}
	for _, g := range groups {
		fmt.Fprintf(w, "%s commands:\n", g)
		for _, c := range commands() {
			if c.group == g {
				fmt.Fprintf(w, "  %-*s  %s\n", width, names[c.name], c.summary)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, `Run commands talk to a server: --server (or $%s, default %s)
and --token (or $%s). serve, worker, user and projections work on a data
directory: --data-dir (or $%s, default %s).

Run 'piperun COMMAND --help' for a command's flags and examples.
`, EnvServer, DefaultServer, EnvToken, EnvDataDir, DefaultDataDir)
}

// help is a command's help text; the flags section is generated.
type help struct {
	// usage lines, without "piperun "
	usage []string
	// description: what the command does, in paragraphs.
	description string
	// env lists "VAR  meaning" lines.
	env []string
	// examples are shell lines, comments included.
	examples string
}

// flagSet returns a flag set that reports -h/--help and errors to parse
// rather than printing on its own.
func (e *env) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(e.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, letting flags and positional arguments come in any
// order (Go's flag package alone stops at the first positional: it would
// read "restorepiperun RUN --no-confirm" as two positionals). Everything
// after "--" is positional. It checks that there are between min and max
// positionals (max < 0: no limit), naming them as argNames says.
func (e *env) parse(fs *flag.FlagSet, h help, args []string, min, max int, argNames string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				e.printHelp(e.stdout, fs, h)
				return nil, errHelp
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min && argNames != "":
		return nil, usagef("missing %s", argNames)
	case max >= 0 && len(pos) > max:
		extra := pos[max:]
		return nil, usagef("unexpected argument %q", extra[0])
	}
	return pos, nil
}

func (e *env) printHelp(w io.Writer, fs *flag.FlagSet, h help) {
	for i, u := range h.usage {
		if i == 0 {
			fmt.Fprintf(w, "Usage: piperun %s\n", u)
		} else {
			fmt.Fprintf(w, "       piperun %s\n", u)
		}
	}
	fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(h.description))
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) > 0 {
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		fmt.Fprintln(w, "\nFlags:")
		for _, f := range flags {
			value, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if value != "" {
				head += " " + value
			}
			if len(head) <= 22 {
				fmt.Fprintf(w, "%-24s%s", head, usage)
			} else {
				fmt.Fprintf(w, "%s\n%24s%s", head, "", usage)
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  %-22s%s\n", "-h, --help", "show this help")
	}
	if len(h.env) > 0 {
		fmt.Fprintln(w, "\nEnvironment:")
		for _, l := range h.env {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if h.examples != "" {
		fmt.Fprintln(w, "\nExamples:")
		for _, l := range strings.Split(strings.Trim(h.examples, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(l))
		}
	}
}

// setFlags returns the names of the flags set on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// fromEnv returns the flag's value if it was given, else the environment
// variable's if set, else the flag's default. Defaults are not taken from
// the environment when defining the flag so that help never prints a
// value from the environment (a token, say).
func (e *env) fromEnv(fs *flag.FlagSet, name, envVar string) string {
	f := fs.Lookup(name)
	if setFlags(fs)[name] {
		return f.Value.String()
	}
	if v := e.getenv(envVar); v != "" {
		return v
	}
	return f.DefValue
}

// confirm asks a yes/no question on stdin. Anything but y or yes, and the
// end of the input, is a no.
func (e *env) confirm(question string) bool {
	fmt.Fprintf(e.stdout, "%s (y/n) ", question)
	line, err := e.stdin.ReadString('\n')
	if !e.stdinTTY {
		// A terminal echoes the answer and its newline; a pipe does not.
		fmt.Fprintln(e.stdout)
	}
	if err != nil && line == "" {
		return false
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

// sleep waits d or until the context ends.
func (e *env) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.ctx.Done():
		return e.ctx.Err()
	case <-t.C:
		return nil
	}
}

// Common help fragments.
var (
	clientEnv = []string{
		EnvServer + "  server URL, when --server is not given (default " + DefaultServer + ")",
		EnvToken + "   API token, when --token is not given",
		EnvStateDir + "  where the log position of the last command is kept, per server (default: piperun/ in the user's cache directory)",
	}
	dataDirEnv = EnvDataDir + "  data directory, when --data-dir is not given (default " + DefaultDataDir + ")"
)

func dataDirFlag(fs *flag.FlagSet) {
	fs.String("data-dir", DefaultDataDir, "`DIR` holding the event store, read models and artifacts")
}

// isTerminal reports whether r is a character device such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
