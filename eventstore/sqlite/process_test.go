package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/sqlite"
)

// childEnv tells the test binary that it runs as the second process of
// TestTwoProcesses, with the database path as value.
const childEnv = "PIPERUN_SQLITE_TEST_CHILD"

const (
	processStream  = "run-contended"
	appendsPerProc = 40
	writersPerProc = 3
)

// TestTwoProcesses runs this test binary a second time as another process on
// the same file, the way two API replicas share it. Both append to one
// stream, each append at the version it last read and retried on conflict.
// Every acknowledged version must be distinct across the two processes and
// together they must be the stream, without gaps.
func TestTwoProcesses(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		runChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	defer s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child did not start: %q %v", lines.Text(), lines.Err())
	}
	// Start both processes together.
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	mine, retries, err := appendContended(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d appends here, %d retried after a conflict", len(mine), retries)
	var theirs []int64
	for lines.Scan() {
		if v, err := strconv.ParseInt(lines.Text(), 10, 64); err == nil {
			theirs = append(theirs, v)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v", err)
	}
	if len(theirs) != appendsPerProc*writersPerProc {
		t.Fatalf("child acknowledged %d appends, want %d", len(theirs), appendsPerProc*writersPerProc)
	}

	all := slices.Concat(mine, theirs)
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+1) {
			t.Fatalf("acknowledged versions are not 1..%d: position %d holds %d (a version acknowledged twice or skipped)", len(all), i, v)
		}
	}
	if v, err := s.StreamVersion(context.Background(), processStream); err != nil || v != int64(len(all)) {
		t.Errorf("stream version %d, %v; want %d", v, err, len(all))
	}
}

// runChild is the second process: it waits for "go", appends, and prints the
// acknowledged versions.
func runChild(t *testing.T, path string) {
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Println("ready")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || strings.TrimSpace(line) != "go" {
		t.Fatalf("read start signal: %q %v", line, err)
	}
	versions, _, err := appendContended(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		fmt.Println(v)
	}
}

// appendContended appends appendsPerProc events from each of writersPerProc
// goroutines to processStream, retrying conflicts at the current version,
// and returns the versions it was acknowledged and the number of conflicts.
func appendContended(s *sqlite.Store) (versions []int64, conflicts int, err error) {
	ctx := context.Background()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make(chan error, writersPerProc)
	)
	for range writersPerProc {
		wg.Go(func() {
			for range appendsPerProc {
				for {
					at, err := s.StreamVersion(ctx, processStream)
					if err != nil {
						errs <- err
						return
					}
					e := eventstore.EventData{ID: uuid.NewString(), Type: "run.processed.v1", Data: []byte(`{}`), Actor: "tester"}
					v, _, err := s.Append(ctx, processStream, at, e)
					if errors.Is(err, eventstore.ErrConcurrency) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					versions = append(versions, v)
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return versions, conflicts, errors.Join(<-errs)
}

// killChildEnv tells the test binary that it runs as the process
// TestKilledProcess kills, with the database path as value.
const killChildEnv = "PIPERUN_SQLITE_TEST_KILL_CHILD"

// TestKilledProcess kills a process with SIGKILL, which gives it no chance to
// write out anything it still holds, right after its last appends were
// acknowledged: every acknowledged append must be in the file.
func TestKilledProcess(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		runAppender(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "events.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{} // stream -> highest acknowledged version
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && lines.Text() != "done" {
		stream, v, ok := strings.Cut(lines.Text(), " ")
		version, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child printed %q", lines.Text())
		}
		acked[stream] = max(acked[stream], version)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed
	if len(acked) != appenders {
		t.Fatalf("child acknowledged appends to %d streams, want %d", len(acked), appenders)
	}

	s := open(t, path)
	defer s.Close()
	for stream, want := range acked {
		if want != appendsPerAppender {
			t.Errorf("child acknowledged %d appends to %q, want %d", want, stream, appendsPerAppender)
		}
		got, err := s.StreamVersion(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("stream %q at version %d after the kill, version %d was acknowledged", stream, got, want)
		}
	}
}

const appenders, appendsPerAppender = 16, 100

// runAppender is the process TestKilledProcess kills: it appends from
// several goroutines, each to its own stream, prints every acknowledged
// append and then "done", and waits to be killed.
func runAppender(t *testing.T, path string) {
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range appenders {
		wg.Go(func() {
			stream := fmt.Sprintf("run-%d", w)
			for v := range int64(appendsPerAppender) {
				e := eventstore.EventData{ID: uuid.NewString(), Type: "run.processed.v1", Data: []byte(`{}`), Actor: "tester"}
				if _, _, err := s.Append(context.Background(), stream, v, e); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", stream, v+1)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintln(out, "done")
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}
