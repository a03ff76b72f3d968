package kafka

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/piperun/piperun/internal/e2ekit"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/wiring"
)

// binary is the piperun binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(e2ekit.RunWithBinary(m, &binary))
}

// cluster is a distributed deployment on one data directory.
type cluster struct {
	t       *testing.T
	broker  *e2ekit.Broker
	dataDir string
	images  string
	tokens  map[string]string
}

func newCluster(t *testing.T, images string) *cluster {
	t.Helper()
	c := &cluster{t: t, broker: e2ekit.StartBroker(t), dataDir: t.TempDir(), images: images, tokens: map[string]string{}}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		tok, err := wiring.AddUser(context.Background(), wiring.Storage{DataDir: c.dataDir}, u.name, u.admin)
		if err != nil {
			t.Fatalf("add user %s: %v", u.name, err)
		}
		c.tokens[u.name] = tok
	}
	return c
}

func (c *cluster) common() []string {
	return []string{"--data-dir", c.dataDir, "--images-dir", c.images, "--kafka-brokers", c.broker.Addr}
}

// startAPI starts an API replica that relays but runs no workers.
func (c *cluster) startAPI(name string) *api {
	c.t.Helper()
	p, m := e2ekit.StartProc(c.t, binary, name, e2ekit.ServingLine, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--workers=false"}, c.common()...)...)
	return &api{&e2ekit.API{T: c.t, Proc: p, URL: m[1], Tokens: c.tokens}}
}

// startWorker starts a worker process, with extra flags; it returns it and
// the URL of its metrics server.
func (c *cluster) startWorker(name string, extra ...string) (*e2ekit.Proc, string) {
	c.t.Helper()
	args := append(append([]string{"worker", "--metrics-addr", "127.0.0.1:0"}, c.common()...), extra...)
	p, m := e2ekit.StartProc(c.t, binary, name, e2ekit.WorkerLine, nil, args...)
	return p, m[1]
}

// api is an API replica.
type api struct{ *e2ekit.API }

// runView is a run as the API shows it, read by the tests.
type runView = testserver.RunView

// waitStatus polls the run until its status is one of want.
func (a *api) waitStatus(name string, want ...string) runView {
	a.T.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v := a.Run(name)
		for _, w := range want {
			if v.Status == w {
				return v
			}
		}
		if time.Now().After(deadline) {
			a.T.Fatalf("run %s is %s after 90s, want %v", name, v.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *api) logText(run, name string) string {
	a.T.Helper()
	return string(a.Must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+run+"/logs/"+name, nil, nil))
}

type eventView struct {
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
	Type     string `json:"type"`
}

func (a *api) events(name string) []eventView {
	a.T.Helper()
	var out struct {
		Events []eventView `json:"events"`
	}
	a.Must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &out)
	return out.Events
}

func (a *api) get(path string) (int, string) {
	a.T.Helper()
	return httpGet(a.T, a.URL+path)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// firstCopies returns the run's records in topic order, each event once
// (its first copy: relays on several replicas publish the log each), and
// checks that every copy of an event is the same record.
func firstCopies(t *testing.T, recs []*kgo.Record, run string) []*kgo.Record {
	t.Helper()
	seen := map[string]*kgo.Record{}
	var out []*kgo.Record
	for _, r := range recs {
		if string(r.Key) != run {
			continue
		}
		id := e2ekit.Header(r, "ce_id")
		if first, ok := seen[id]; ok {
			if !bytes.Equal(first.Value, r.Value) || e2ekit.Header(first, "ce_piperunversion") != e2ekit.Header(r, "ce_piperunversion") {
				t.Errorf("two different records with ce_id %s", id)
			}
			continue
		}
		seen[id] = r
		out = append(out, r)
	}
	return out
}

// vastConfig is a VAST run configuration over epochs of the test data.
func vastConfig(epochs ...string) string { return testserver.VASTConfig("kafka_run", epochs...) }
