//go:build unix

package faults

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/sqlite"
)

// appendChildEnv makes the test binary the appending process of
// TestCrashDuringAppend, on the store file named by its value; the round
// number is in appendRoundEnv.
const (
	appendChildEnv = "PIPERUN_FAULTS_APPEND_CHILD"
	appendRoundEnv = "PIPERUN_FAULTS_APPEND_ROUND"
)

const (
	ownWriters    = 12 // each on its own stream
	sharedWriters = 4  // all on one stream, at the version they read
	sharedStream  = "shared"
)

// appendChild appends until it is killed, from ownWriters goroutines on
// their own streams (one, two or three events per append) and
// sharedWriters on one contended stream, and prints a line for every
// append the store acknowledged:
//
//	ack STREAM VERSION POSITION N ID
//
// where VERSION and POSITION are those of the append's last event, N its
// number of events and ID its first event's id; the ids of an append are
// ID with "/1", "/2", ... in place of "/0".
func appendChild(path string) int {
	ctx := context.Background()
	round := os.Getenv(appendRoundEnv)
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	ack := func(stream string, version, position int64, n int, id string) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line, so that a kill cuts at most the last line.
		os.Stdout.WriteString(fmt.Sprintf("ack %s %d %d %d %s\n", stream, version, position, n, id))
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(os.Stderr, "append child:", err)
		os.Exit(1)
	}
	events := func(stream string, seq, n int) []eventstore.EventData {
		evs := make([]eventstore.EventData, n)
		for i := range evs {
			evs[i] = eventstore.EventData{
				ID:    fmt.Sprintf("%s/r%s/%d/%d", stream, round, seq, i),
				Type:  "test.appended.v1",
				Data:  []byte(`{"payload":"` + strings.Repeat("x", 100*(i+1)) + `"}`),
				Actor: "system:faults-test",
			}
		}
		return evs
	}
	for w := range ownWriters {
		go func() {
			stream := fmt.Sprintf("own-%d", w)
			v, err := s.StreamVersion(ctx, stream)
			if err != nil {
				fail(err)
			}
			for seq := 0; ; seq++ {
				n := 1 + seq%3
				evs := events(stream, seq, n)
				version, pos, err := s.Append(ctx, stream, v, evs...)
				if err != nil {
					fail(err)
				}
				v = version
				ack(stream, version, pos, n, evs[0].ID)
			}
		}()
	}
	for w := range sharedWriters {
		go func() {
			for seq := 0; ; seq++ {
				evs := events(fmt.Sprintf("%s-%d", sharedStream, w), seq, 1)
				for {
					v, err := s.StreamVersion(ctx, sharedStream)
					if err != nil {
						fail(err)
					}
					version, pos, err := s.Append(ctx, sharedStream, v, evs...)
					if errors.Is(err, eventstore.ErrConcurrency) {
						continue
					}
					if err != nil {
						fail(err)
					}
					ack(sharedStream, version, pos, 1, evs[0].ID)
					break
				}
			}
		}()
	}
	os.Stdout.WriteString("ready\n")
	select {} // until killed
}

// appendAck is one acknowledged append.
type appendAck struct {
	stream            string
	version, position int64
	n                 int
	id                string
}

// runAppender runs the appending process on path until it has printed
// stopAfter acknowledgements, kills it with SIGKILL, and returns every
// acknowledgement it printed in full.
func runAppender(t *testing.T, path string, round, stopAfter int) []appendAck {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), appendChildEnv+"="+path, fmt.Sprintf("%s=%d", appendRoundEnv, round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(stdout)
	var acks []appendAck
	killed := false
	for {
		line, err := rd.ReadString('\n')
		if err == io.EOF {
			break // a cut last line (no newline) is not an acknowledgement
		}
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "ready" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 6 || f[0] != "ack" {
			t.Fatalf("appending process printed %q", line)
		}
		a := appendAck{stream: f[1], id: f[5]}
		a.version, _ = strconv.ParseInt(f[2], 10, 64)
		a.position, _ = strconv.ParseInt(f[3], 10, 64)
		a.n, _ = strconv.Atoi(f[4])
		acks = append(acks, a)
		if len(acks) == stopAfter && !killed {
			// Killed while its writers are mid-append; what it printed
			// before dying is still read from the pipe.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("appending process ended with %v before it was killed", err)
	}
	return acks
}

// TestCrashDuringAppend kills a process appending concurrently to the
// SQLite event store, five times over the same file. After each kill the
// store opens, every append the process was told was durable is there with
// its version and position, appends are whole or absent, versions have no
// gaps, the global log is in order, the file passes SQLite's integrity
// check, and the store takes appends again.
func TestCrashDuringAppend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	var all []appendAck
	for round, stopAfter := range []int{1, 50, 300, 700, 1500} {
		acks := runAppender(t, path, round, stopAfter)
		if len(acks) < stopAfter {
			t.Fatalf("round %d: %d acknowledgements, want at least %d", round, len(acks), stopAfter)
		}
		all = append(all, acks...)

		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatalf("round %d: the store does not open after the kill: %v", round, err)
		}
		for _, a := range all {
			evs, err := s.ReadStream(ctx, a.stream, a.version-int64(a.n)+1, a.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != a.n || evs[a.n-1].Version != a.version || evs[a.n-1].Position != a.position {
				t.Fatalf("round %d: acknowledged append %s (version %d, position %d) is not in the store as acknowledged: %d events", round, a.id, a.version, a.position, len(evs))
			}
			for i, e := range evs {
				if want := strings.TrimSuffix(a.id, "/0") + "/" + strconv.Itoa(i); e.ID != want {
					t.Fatalf("round %d: version %d of %s holds %s, want %s", round, e.Version, a.stream, e.ID, want)
				}
			}
		}
		checkLog(t, s, round)
		if _, _, err := s.Append(ctx, fmt.Sprintf("after-round-%d", round), eventstore.NoStream,
			eventstore.EventData{ID: fmt.Sprintf("after-%d", round), Type: "test.appended.v1", Data: []byte(`{}`), Actor: "system:faults-test"}); err != nil {
			t.Fatalf("round %d: the store refuses appends after the kill: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		integrityCheck(t, path)
		t.Logf("round %d: killed after %d acknowledgements (%d in all)", round, len(acks), len(all))
	}
}

// checkLog reads the whole global log: positions increase, every stream's
// versions run 1, 2, 3... and every append is whole (all the events its
// ids announce, or none).
func checkLog(t *testing.T, s *sqlite.Store, round int) {
	t.Helper()
	ctx := context.Background()
	versions := map[string]int64{}
	appends := map[string]int{} // id prefix -> events present
	sizes := map[string]int{}   // id prefix -> events the append had
	var last int64
	for {
		evs, err := s.ReadAll(ctx, last, 500)
		if err != nil {
			t.Fatalf("round %d: read the global log after %d: %v", round, last, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Position <= last {
				t.Fatalf("round %d: position %d after %d", round, e.Position, last)
			}
			last = e.Position
			if want := versions[e.Stream] + 1; e.Version != want {
				t.Fatalf("round %d: stream %s jumps from version %d to %d", round, e.Stream, versions[e.Stream], e.Version)
			}
			versions[e.Stream] = e.Version
			if e.Stream == sharedStream || strings.HasPrefix(e.Stream, "own-") {
				prefix := e.ID[:strings.LastIndex(e.ID, "/")]
				appends[prefix]++
				if strings.HasPrefix(e.Stream, "own-") {
					seq, _ := strconv.Atoi(prefix[strings.LastIndex(prefix, "/")+1:])
					sizes[prefix] = 1 + seq%3
				} else {
					sizes[prefix] = 1
				}
			}
		}
	}
	for prefix, n := range appends {
		if n != sizes[prefix] {
			t.Fatalf("round %d: append %s is torn: %d of its %d events are stored", round, prefix, n, sizes[prefix])
		}
	}
}

// integrityCheck runs SQLite's own check of the file.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("integrity check of %s: %s", path, res)
	}
}
