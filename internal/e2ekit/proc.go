package e2ekit

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/testserver"
)

// The log lines that say a process is ready: an API replica serving (its
// URL the submatch) and a worker running (the URL of its metrics server
// the submatch).
var (
	ServingLine = regexp.MustCompile(`msg="piperun serving" url=(http://\S+)`)
	WorkerLine  = regexp.MustCompile(`msg="piperun metrics" url=(http://\S+)/metrics[\s\S]*msg="piperun worker running"`)
)

// cleared are the variables of piperun's configuration that a test's own
// environment must not pass on to the processes it starts.
var cleared = []string{"PIPERUN_KAFKA_BROKERS=", "PIPERUN_KAFKA_TOPIC=", "PIPERUN_WORKERS=",
	"PIPERUN_METRICS_ADDR=", "PIPERUN_ESDB_URL=", "PIPERUN_ARTIFACTS_URL=", "PIPERUN_SESSION_KEY_FILE="}

// Proc is a piperun subprocess whose standard error (its log) is kept.
type Proc struct {
	// Name names the process in failure messages.
	Name string
	// Cmd is the started command.
	Cmd *exec.Cmd

	t    *testing.T
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// StartProc starts binary with args, its environment the test's with
// piperun's variables cleared and env added, and waits until its log has a
// line matching ready; it returns the process and the submatches of that
// line. The process is stopped when the test ends, and its log shown when
// the test failed or PIPERUN_E2E_LOGS is set.
func StartProc(t *testing.T, binary, name string, ready *regexp.Regexp, env []string, args ...string) (*Proc, []string) {
	t.Helper()
	p := &Proc{t: t, Name: name}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), cleared...), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.Cmd = cmd
	p.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() || os.Getenv("PIPERUN_E2E_LOGS") != "" {
			t.Logf("log of %s:\n%s", p.Name, p.Tail(60))
		}
	})
	var m []string
	p.Await(60*time.Second, "start", func(log string) bool {
		m = ready.FindStringSubmatch(log)
		return m != nil
	})
	return p, m
}

// Await waits until the process's log satisfies cond; it fails the test
// if the process exits first or limit passes.
func (p *Proc) Await(limit time.Duration, what string, cond func(log string) bool) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond(p.Log()) {
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before %s; log:\n%s", p.Name, p.Cmd.ProcessState, what, p.Tail(60))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %s; log:\n%s", p.Name, what, limit, p.Tail(60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the process's log so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill %s: %v", p.Name, err)
	}
	<-p.done
}

// Stop asks the process to stop and waits for it; a process that does not
// stop within 20s of SIGTERM is killed and fails the test.
func (p *Proc) Stop() {
	if !testserver.Stop(p.Cmd, p.done, 20*time.Second) {
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.Name)
	}
}
