package distributed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts/artifactstest"
	"github.com/piperun/piperun/eventstore/esdb/esdbfake"
	"github.com/piperun/piperun/internal/e2ekit"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/wiring"
)

// binary is the piperun binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(e2ekit.RunWithBinary(m, &binary))
}

// deployment is distributed mode as deployed: services that share the
// event store, Kafka and the bucket, and no directory.
type deployment struct {
	t      *testing.T
	esdb   string
	broker *e2ekit.Broker
	s3     *artifactstest.S3
	vast   string
	tokens map[string]string
	dirs   []string // every process's directories, to check none is shared
}

// newDeployment starts the shared services (a real EventStoreDB when
// PIPERUN_TEST_ESDB_URL is set) and adds the users.
func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{t: t, broker: e2ekit.StartBroker(t), s3: artifactstest.NewS3(t), vast: vastdata.VASTDir(t), tokens: map[string]string{}}
	d.esdb = os.Getenv("PIPERUN_TEST_ESDB_URL")
	if d.esdb == "" {
		f := esdbfake.New("127.0.0.1:0")
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Stop)
		d.esdb = f.URL()
	}
	// User names unique to this test, for a real server that outlives it.
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"root", true}} {
		tok, err := wiring.AddUser(context.Background(), wiring.Storage{DataDir: t.TempDir(), ESDBURL: d.esdb, ArtifactsURL: d.s3.URL}, u.name+"-"+suffix, u.admin)
		if err != nil {
			t.Fatalf("add user %s: %v", u.name, err)
		}
		d.tokens[u.name] = tok
	}
	return d
}

// ownDirs makes a process's data directory and its own copy of the input
// images.
func (d *deployment) ownDirs() (data, images string) {
	d.t.Helper()
	data, images = d.t.TempDir(), d.t.TempDir()
	src := filepath.Join(d.vast, "data")
	entries, err := os.ReadDir(src)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(images, "data"), 0o755); err != nil {
		d.t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			d.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(images, "data", e.Name()), b, 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	d.dirs = append(d.dirs, data, images)
	return data, images
}

func (d *deployment) args(data, images string) []string {
	return []string{"--data-dir", data, "--images-dir", images, "--esdb-url", d.esdb, "--artifacts-url", d.s3.URL, "--kafka-brokers", d.broker.Addr}
}

// startAPI starts an API replica that relays but runs no workers.
func (d *deployment) startAPI(name string) *api {
	d.t.Helper()
	data, images := d.ownDirs()
	p, m := e2ekit.StartProc(d.t, binary, name, e2ekit.ServingLine, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--workers=false"}, d.args(data, images)...)...)
	return &api{&e2ekit.API{T: d.t, Proc: p, URL: m[1], Tokens: d.tokens}}
}

// startWorker starts a worker process that signs its requests to the
// bucket with its own name as access key id (so that the bucket tells
// which worker reads); periodic recovery is rare, so that a takeover
// comes from the consumer group.
func (d *deployment) startWorker(name string) *e2ekit.Proc {
	d.t.Helper()
	data, images := d.ownDirs()
	args := append([]string{"worker", "--metrics-addr", "127.0.0.1:0", "--recover-every", "10m"}, d.args(data, images)...)
	p, _ := e2ekit.StartProc(d.t, binary, name, e2ekit.WorkerLine, []string{"AWS_ACCESS_KEY_ID=" + name}, args...)
	return p
}

// api is an API replica.
type api struct{ *e2ekit.API }

type runView = testserver.RunView

// waitStatus polls the run until its status is one of want.
func (a *api) waitStatus(name string, want ...string) runView {
	a.T.Helper()
	var v runView
	e2ekit.WaitFor(a.T, 90*time.Second, fmt.Sprintf("run %s to be %v", name, want), func() bool {
		code, _ := a.Do("alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
		for _, w := range want {
			if code == http.StatusOK && v.Status == w {
				return true
			}
		}
		return false
	}, func() string { return "status " + v.Status })
	return v
}

type eventView struct {
	Version int64  `json:"version"`
	Type    string `json:"type"`
}

func (a *api) events(name string) []eventView {
	a.T.Helper()
	var out struct {
		Events []eventView `json:"events"`
	}
	a.Must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &out)
	return out.Events
}

// relayLag reads the replica's piperun_relay_lag_events: the events of
// the log it has still to publish (none when it stands by).
func (a *api) relayLag() int {
	a.T.Helper()
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^piperun_relay_lag_events (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -1
	}
	return int(v)
}

// relayLeader reports whether the replica leads the relay group now
// (its piperun_relay_leader gauge).
func (a *api) relayLeader() bool {
	a.T.Helper()
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return regexp.MustCompile(`(?m)^piperun_relay_leader 1$`).Match(b)
}

// copies counts the records of each event of run, by version.
func copies(r *e2ekit.Reader, run string) map[int64]int {
	out := map[int64]int{}
	for _, rec := range r.Records() {
		if string(rec.Key) == run {
			v, _ := strconv.ParseInt(e2ekit.Header(rec, messaging.MetaVersion), 10, 64)
			out[v]++
		}
	}
	return out
}

// versions returns the run's event versions in topic order, each event
// once (its first copy).
func versions(r *e2ekit.Reader, run string) []int64 {
	seen := map[string]bool{}
	var out []int64
	for _, rec := range r.Records() {
		id := e2ekit.Header(rec, messaging.MetaID)
		if string(rec.Key) != run || seen[id] {
			continue
		}
		seen[id] = true
		v, _ := strconv.ParseInt(e2ekit.Header(rec, messaging.MetaVersion), 10, 64)
		out = append(out, v)
	}
	return out
}

// vastConfig is a VAST run configuration over epochs of the test data.
func vastConfig(epochs ...string) string { return testserver.VASTConfig("distributed_run", epochs...) }
