package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseLetsFlagsFollowPositionals(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		pos       []string
		noConfirm bool
		server    string
	}{
		{"flag after positional", []string{"RUN", "--no-confirm"}, []string{"RUN"}, true, ""},
		{"flag before positional", []string{"--no-confirm", "RUN"}, []string{"RUN"}, true, ""},
		{"single dash", []string{"-no-confirm", "RUN"}, []string{"RUN"}, true, ""},
		{"value flags around positionals", []string{"A", "--server", "http://x", "B"}, []string{"A", "B"}, false, "http://x"},
		{"flag=value", []string{"A", "--server=http://y"}, []string{"A"}, false, "http://y"},
		{"double dash ends flags", []string{"--no-confirm", "--", "--server", "-x"}, []string{"--server", "-x"}, true, ""},
		{"stdin dash is positional", []string{"-", "--no-confirm"}, []string{"-"}, true, ""},
		{"no arguments", nil, nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{path: "test", stdout: io.Discard}
			fs := e.flagSet()
			noConfirm := fs.Bool("no-confirm", false, "")
			server := fs.String("server", "", "")
			pos, err := e.parse(fs, help{}, tc.args, 0, -1, "")
			if err != nil {
				t.Fatalf("parse(%q): %v", tc.args, err)
			}
			if !reflect.DeepEqual(pos, tc.pos) || *noConfirm != tc.noConfirm || *server != tc.server {
				t.Errorf("parse(%q) = %q, no-confirm %v, server %q; want %q, %v, %q", tc.args, pos, *noConfirm, *server, tc.pos, tc.noConfirm, tc.server)
			}
		})
	}
}

func TestParseChecksArgumentCounts(t *testing.T) {
	tests := []struct {
		args     []string
		min, max int
		wantErr  string
	}{
		{nil, 1, 1, "missing the RUN"},
		{[]string{"a", "b"}, 1, 1, `unexpected argument "b"`},
		{[]string{"--nope", "a"}, 1, 1, "flag provided but not defined: -nope"},
		{[]string{"a", "b", "c"}, 1, -1, ""},
	}
	for _, tc := range tests {
		e := &env{path: "test", stdout: io.Discard}
		fs := e.flagSet()
		_, err := e.parse(fs, help{}, tc.args, tc.min, tc.max, "the RUN")
		var ue *usageError
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("parse(%q): %v", tc.args, err)
		case tc.wantErr != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parse(%q) = %v, want a usage error containing %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		input string
		want  bool
	}{
		{"y\n", true}, {"yes\n", true}, {" Y \n", true}, {"YES\r\n", true}, {"y", true},
		{"n\n", false}, {"\n", false}, {"", false}, {"yep\n", false}, {"no\ny\n", false},
	} {
		var out strings.Builder
		e := &env{stdin: bufio.NewReader(strings.NewReader(tc.input)), stdout: &out}
		if got := e.confirm("Go on?"); got != tc.want {
			t.Errorf("confirm with input %q = %v, want %v", tc.input, got, tc.want)
		}
		if !strings.HasPrefix(out.String(), "Go on? (y/n) ") {
			t.Errorf("prompt %q, want it to ask \"Go on? (y/n) \"", out.String())
		}
	}
}

// flagsOf lists, for every command, the flags its help must mention.
var flagsOf = map[string][]string{
	"serve": {"--data-dir", "--esdb-url", "--addr", "--images-dir", "--recover-every", "--cache-mb", "--read-timeout", "--write-timeout", "--idle-timeout",
		"--max-header-kb", "--max-streams", "--max-streams-per-user", EnvDataDir, EnvESDBURL, EnvAddr, EnvImagesDir, "--kafka-brokers", "--kafka-topic", "--kafka-partitions", "--kafka-replication-factor", "--kafka-max-message-bytes", "--kafka-batch-size", "--kafka-relay-group", "--kafka-tls", "--kafka-tls-ca-file", "--kafka-tls-cert-file", "--kafka-tls-key-file", "--kafka-tls-insecure-skip-verify", "--kafka-sasl-mechanism", "--kafka-sasl-user", "--kafka-sasl-password-file", EnvKafkaSASLPassword},
	"worker": {"--data-dir", "--esdb-url", "--images-dir", "--recover-every", "--cache-mb", "--read-timeout", "--write-timeout", "--idle-timeout",
		"--max-header-kb", EnvDataDir, EnvESDBURL, EnvImagesDir, "--kafka-brokers", "--kafka-topic", "--kafka-partitions", "--kafka-replication-factor", "--kafka-max-message-bytes", "--kafka-batch-size", "--kafka-relay-group", "--kafka-tls", "--kafka-tls-ca-file", "--kafka-tls-cert-file", "--kafka-tls-key-file", "--kafka-tls-insecure-skip-verify", "--kafka-sasl-mechanism", "--kafka-sasl-user", "--kafka-sasl-password-file", EnvKafkaSASLPassword},
	"initpiperun":         {"--config", "--description", "--template", "--server", "--token", EnvServer, EnvToken},
	"runpipeline":         {"--debug", "--full-rerun", "--no-wait", "--server", "--token", EnvServer, EnvToken},
	"restorepiperun":      {"--no-confirm", "--debug", "--no-wait", "--server", "--token", "Restore run RUN to this configuration? (y/n)"},
	"clearpiperun":        {"--no-confirm", "--no-wait", "--server", "--token"},
	"cancel":              {"--no-confirm", "--server", "--token", "Cancel the job of run RUN? (y/n)"},
	"config get":          {"--version", "--server", "--token"},
	"config set":          {"--server", "--token"},
	"status":              {"--json", "--version", "--server", "--token"},
	"list":                {"--json", "--server", "--token"},
	"logs":                {"--from", "--server", "--token"},
	"history":             {"--json", "--no-logs", "--server", "--token"},
	"audit":               {"--server", "--token", "audit passed"},
	"whoami":              {"--server", "--token"},
	"user add":            {"--admin", "--data-dir", "--esdb-url", EnvDataDir, EnvESDBURL},
	"projections rebuild": {"--data-dir", "--esdb-url", EnvDataDir, EnvESDBURL},
	"artifacts sweep":     {"--data-dir", "--esdb-url", "--grace", EnvDataDir, EnvESDBURL},
	"healthcheck":         {"--url", "--timeout", "/readyz"},
	"version":             {},
	"help":                {},
}

func TestEveryCommandHasHelp(t *testing.T) {
	groupsWithSubs := map[string]bool{"config": true, "user": true, "projections": true, "artifacts": true}
	for _, c := range commands() {
		if groupsWithSubs[c.name] {
			continue
		}
		if _, ok := flagsOf[c.name]; !ok {
			t.Errorf("command %s has no help test: add it to flagsOf", c.name)
		}
	}
	for cmd, flags := range flagsOf {
		t.Run(cmd, func(t *testing.T) {
			args := append(strings.Fields(cmd), "--help")
			r := piperun(t, "", args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("piperun %s: %s", strings.Join(args, " "), r)
			}
			for _, want := range append([]string{"Usage: piperun " + cmd, "Examples:"}, flags...) {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("help of %s does not mention %q:\n%s", cmd, want, r.stdout)
				}
			}
			// "-h" and "piperun help CMD" show the same text.
			if short := piperun(t, "", append(strings.Fields(cmd), "-h")...); short.stdout != r.stdout || short.code != ExitOK {
				t.Errorf("piperun %s -h differs from --help:\n%s", cmd, short)
			}
			if viaHelp := piperun(t, "", append([]string{"help"}, strings.Fields(cmd)...)...); viaHelp.stdout != r.stdout || viaHelp.code != ExitOK {
				t.Errorf("piperun help %s differs from --help:\n%s", cmd, viaHelp)
			}
		})
	}
	if r := piperun(t, "", "restore", "--help"); r.code != ExitOK || !strings.Contains(r.stdout, "piperun restore RUN") {
		t.Errorf("the restore alias has no help:\n%s", r)
	}
}

func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := piperun(t, "", args...)
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("piperun %s: %s", args[0], r)
		}
		for _, want := range []string{"Service commands:", "Run commands:", "Maintenance commands:", "restorepiperun (restore)", EnvServer, EnvToken} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("top-level help lacks %q", want)
			}
		}
		for _, c := range commands() {
			if !strings.Contains(r.stdout, "  "+c.name+" ") || !strings.Contains(r.stdout, c.summary) {
				t.Errorf("top-level help does not list %s with its summary", c.name)
			}
		}
	}
	for _, sub := range []string{"user", "config", "projections", "artifacts"} {
		r := piperun(t, "", sub, "--help")
		if r.code != ExitOK || !strings.Contains(r.stdout, "Subcommands:") {
			t.Errorf("piperun %s --help: %s", sub, r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage: piperun COMMAND"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--server", "x", "list"}, "flags go after the command"},
		{[]string{"runpipeline"}, "missing the run NAME"},
		{[]string{"runpipeline", "a", "b", "--token", "t"}, `unexpected argument "b"`},
		{[]string{"status", "r", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"status", "r", "--version", "x"}, "invalid value"},
		{[]string{"status", "r", "--version", "-1", "--token", "t"}, "positive version"},
		{[]string{"restorepiperun"}, "missing the RUN"},
		{[]string{"restore", "r1", "r2"}, `unexpected argument "r2"`},
		{[]string{"clearpiperun", "--no-confirm"}, "missing the RUN"},
		{[]string{"initpiperun", "r"}, "missing --config FILE"},
		{[]string{"initpiperun", "--config", "f.yaml"}, "missing the run NAME"},
		{[]string{"initpiperun", "--template", "--config", "f.yaml"}, "do not go together"},
		{[]string{"config"}, "missing subcommand"},
		{[]string{"config", "frob"}, `unknown subcommand "frob"`},
		{[]string{"config", "set", "r"}, "config set RUN FILE"},
		{[]string{"user", "add"}, "missing the user NAME"},
		{[]string{"logs", "r", "--from", "0", "--token", "t"}, "--from must be at least 1"},
		{[]string{"list"}, "no API token"},
		{[]string{"list", "--token", "t", "--server", "ftp://x"}, "not an http(s) URL"},
		{[]string{"serve", "--addr", ""}, "--addr must not be empty"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--recover-every", "0s"}, "--recover-every must be a positive duration"},
		{[]string{"worker", "--recover-every", "soon"}, "--recover-every must be a positive duration"},
		{[]string{"serve", "--cache-mb", "0"}, "--cache-mb must be a whole number of megabytes"},
		{[]string{"worker", "--cache-mb", "lots"}, "--cache-mb must be a whole number of megabytes"},
		{[]string{"serve", "--read-timeout", "0s"}, "--read-timeout must be a positive duration"},
		{[]string{"serve", "--write-timeout", "-1s"}, "--write-timeout must be a positive duration"},
		{[]string{"worker", "--idle-timeout", "never"}, "--idle-timeout must be a positive duration"},
		{[]string{"serve", "--max-header-kb", "0"}, "--max-header-kb must be a whole number of at least 1"},
		{[]string{"serve", "--max-streams", "none"}, "--max-streams must be a whole number of at least 1"},
		{[]string{"serve", "--max-streams-per-user", "-3"}, "--max-streams-per-user must be a whole number of at least 1"},
		{[]string{"help", "frob"}, `unknown command "frob"`},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-tls-ca-file", "/ca.pem"}, "TLS is not enabled"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-tls", "--kafka-tls-insecure-skip-verify", "--kafka-tls-ca-file", "/ca.pem"}, "contradict"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-tls", "--kafka-tls-cert-file", "/c.pem"}, "needs its key"},
		{[]string{"worker", "--kafka-brokers", "k:9092", "--kafka-sasl-mechanism", "scram-sha-256", "--kafka-sasl-user", "u"}, "needs a user and a password"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-sasl-mechanism", "PLAIN"}, "SCRAM-SHA-256 or SCRAM-SHA-512"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-sasl-password-file", "/nonexistent/pw"}, "--kafka-sasl-password-file"},
		{[]string{"serve", "--kafka-sasl-mechanism", "SCRAM-SHA-512"}, "need --kafka-brokers"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-partitions", "0"}, "--kafka-partitions"},
		{[]string{"serve", "--kafka-brokers", "k:9092", "--kafka-max-message-bytes", "100"}, "max message bytes"},
		{[]string{"worker", "--kafka-brokers", "k:9092", "--kafka-batch-size", "many"}, "kafka-batch-size"},
	}
	for _, tc := range tests {
		r := piperun(t, "", tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("piperun %s: want exit 2 and %q on stderr only, got %s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
}

func TestTemplate(t *testing.T) {
	r := piperun(t, "", "initpiperun", "--template", "field-7")
	if r.code != ExitOK || !strings.Contains(r.stdout, "path: field-7") || !strings.Contains(r.stdout, "source_association:") {
		t.Fatalf("initpiperun --template field-7: %s", r)
	}
	// Flags after the positional work here too.
	if r2 := piperun(t, "", "initpiperun", "field-7", "--template"); r2.stdout != r.stdout {
		t.Errorf("initpiperun NAME --template differs from --template NAME")
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := piperun(t, "", args...)
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, "piperun ") {
			t.Errorf("piperun %s: %s", args[0], r)
		}
	}
}

func TestServerUnreachable(t *testing.T) {
	r := piperun(t, "", "list", "--server", "http://127.0.0.1:1", "--token", "secret-token")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "cannot reach the piperun server at http://127.0.0.1:1") {
		t.Fatalf("list against a closed port: %s", r)
	}
	if strings.Contains(r.stderr, "secret-token") {
		t.Errorf("the token was printed: %s", r.stderr)
	}
}

func TestInterruptedCommandStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut strings.Builder
	code := Run(ctx, []string{"list", "--server", "http://127.0.0.1:1", "--token", "t"}, nil, &out, &errOut)
	if code != ExitFailure || !strings.Contains(errOut.String(), "interrupted") {
		t.Fatalf("exit %d, stderr %q; want exit 1, interrupted", code, errOut.String())
	}
}
