package distributed

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/e2ekit"
	"github.com/piperun/piperun/messaging/kafka"
)

// apiReplicas is how many API replicas the deployment runs; one of them,
// elected through the relay group, relays the log.
const apiReplicas = 2

// TestDeployedTopology runs distributed mode as deployed — two API
// replicas and two workers as separate processes, sharing no directory,
// on a network event store, Kafka and a bucket — through the seed
// scenario, racing restores, a Kafka outage, a worker killed mid-job and
// the relaying replica killed.
func TestDeployedTopology(t *testing.T) {
	d := newDeployment(t)
	rd := e2ekit.StartReader(t, d.broker.Addr)
	a1, a2 := d.startAPI("api-1"), d.startAPI("api-2")
	w1, w2 := d.startWorker("worker-1"), d.startWorker("worker-2")
	workers := map[string]*e2ekit.Proc{w1.Name: w1, w2.Name: w2}
	replicas := []*api{a1, a2}

	t.Run("no directory is shared", func(t *testing.T) {
		for i, x := range d.dirs {
			for _, y := range d.dirs[i+1:] {
				if x == y || strings.HasPrefix(y, x+string(filepath.Separator)) || strings.HasPrefix(x, y+string(filepath.Separator)) {
					t.Fatalf("directories %s and %s overlap", x, y)
				}
			}
		}
	})

	const seed = "seed"
	ok := t.Run("seed scenario with racing restores", func(t *testing.T) {
		a1.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": seed, "config": vastConfig("01", "02")}, nil)
		a2.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+seed+"/process", map[string]bool{}, nil)
		first := a1.waitStatus(seed, "Completed", "Error")
		if first.Status != "Completed" || first.NImages != 2 {
			t.Fatalf("first job: %s with %d images", first.Status, first.NImages)
		}
		a1.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+seed+"/config", map[string]string{"config": vastConfig("01", "02", "03")}, nil)
		a2.waitStatus(seed, "Completed") // the configuration change is seen by the other replica
		a2.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+seed+"/process", map[string]bool{}, nil)
		added := a2.waitStatus(seed, "Completed", "Error")
		if added.Status != "Completed" || added.NImages != 3 || !added.RestoreAvailable {
			t.Fatalf("after adding an image: %s with %d images, restore available %v", added.Status, added.NImages, added.RestoreAvailable)
		}
		e2ekit.WaitFor(t, 30*time.Second, "both replicas to offer the restore", func() bool {
			return a1.Run(seed).RestoreAvailable && a2.Run(seed).RestoreAvailable
		})

		// 20 restores at once, through both replicas: one is accepted.
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _ := replicas[i%2].Do("alice", http.MethodPost, "/api/v1/runs/"+seed+"/restore", map[string]bool{}, nil)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[http.StatusAccepted] != 1 || codes[http.StatusConflict] != 19 {
			t.Fatalf("answers to 20 racing restores: %v; want one 202 and nineteen 409", codes)
		}
		restored := a1.waitStatus(seed, "Completed", "Error")
		if restored.Status != "Completed" || restored.NImages != 2 || restored.RestoreAvailable {
			t.Fatalf("after the restore: %s with %d images, restore available %v", restored.Status, restored.NImages, restored.RestoreAvailable)
		}
		evs := a1.events(seed)
		if n := count(evs, domain.TypeRunRestored); n != 1 {
			t.Fatalf("%d %s events, want 1", n, domain.TypeRunRestored)
		}
		// The backup is used up: a second restore is refused, on either replica.
		for _, a := range replicas {
			a.Must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs/"+seed+"/restore", map[string]bool{}, nil)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("Kafka stopped and restarted", func(t *testing.T) {
		const run = "outage"
		d.broker.Stop()
		a1.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02")}, nil)
		a2.waitStatus(run, "Initialised")
		a2.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
		d.broker.Start()
		done := a1.waitStatus(run, "Completed", "Error")
		if done.Status != "Completed" || done.NImages != 2 {
			t.Fatalf("after the outage: %s with %d images", done.Status, done.NImages)
		}
		// Nothing lost, each run's events in order on the topic.
		for _, name := range []string{seed, run} {
			stored := a1.events(name)
			want := make([]int64, len(stored))
			for i, e := range stored {
				want[i] = e.Version
			}
			e2ekit.WaitFor(t, 30*time.Second, "every event of "+name+" on the topic", func() bool { return len(versions(rd, name)) >= len(want) })
			if got := versions(rd, name); !slices.Equal(got, want) {
				t.Fatalf("run %s on the topic: versions %v, want %v in that order", name, got, want)
			}
		}
	})
	if !ok {
		return
	}

	ok = t.Run("worker killed mid-job", func(t *testing.T) {
		const run = "takeover"
		a1.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01")}, nil)
		a1.waitStatus(run, "Initialised")
		a1.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
		first := a1.waitStatus(run, "Completed", "Error")
		if first.Status != "Completed" {
			t.Fatalf("first job: %s", first.Status)
		}
		var imagesProduct string
		for _, p := range first.Products {
			if p.Name == "images.parquet" {
				imagesProduct = strings.TrimPrefix(p.Digest, "sha256:")
			}
		}
		if imagesProduct == "" {
			t.Fatalf("the first job's products have no images.parquet: %+v", first.Products)
		}
		// Adding an image reads the previous images product first: the
		// worker that runs the job waits there until released.
		held, release := d.s3.Hold(imagesProduct[2:])
		t.Cleanup(release)
		a1.Must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02")}, nil)
		a1.waitStatus(run, "Completed")
		a1.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
		var runner *e2ekit.Proc
		select {
		case who := <-held:
			runner = workers[who]
		case <-time.After(60 * time.Second):
			t.Fatal("no worker read the previous products within 60s")
		}
		if runner == nil {
			t.Fatal("the bucket was read by a process that is not a worker")
		}
		// The worker recorded the job's start before reading; a1's read
		// models show it once they reach that event.
		if v := a1.waitStatus(run, "Running", "Completed", "Error"); v.Status != "Running" {
			t.Fatalf("run is %s while %s runs its job, want Running", v.Status, runner.Name)
		}
		// The job's messages are committed (it runs in the background):
		// no redelivery tells the next owner about it, only its
		// assignment does.
		cfg := kafka.Config{Brokers: []string{d.broker.Addr}}
		e2ekit.WaitFor(t, 30*time.Second, "the group to commit the job's messages", func() bool {
			lag, err := kafka.GroupLag(context.Background(), cfg)
			return err == nil && lag.Waiting == 0
		})
		runner.Kill()
		release()
		delete(workers, runner.Name)
		done := a1.waitStatus(run, "Completed", "Error")
		if done.Status != "Completed" || done.NImages != 2 {
			t.Fatalf("after %s died: %s with %d images", runner.Name, done.Status, done.NImages)
		}
		evs := a1.events(run)
		if n := countSince(evs, domain.TypeProcessingCompleted, first.Version); n != 1 {
			t.Fatalf("%d %s events for the killed job, want 1", n, domain.TypeProcessingCompleted)
		}
		if n := countSince(evs, domain.TypeProcessingFailed, first.Version); n != 0 {
			t.Fatalf("%d %s events for the killed job, want none", n, domain.TypeProcessingFailed)
		}
	})
	if !ok {
		return
	}

	t.Run("relaying replica killed", func(t *testing.T) {
		const run = "relay"
		relays := func(a *api) bool { return a.relayLeader() }
		var leader, other *api
		e2ekit.WaitFor(t, 30*time.Second, "a replica to relay", func() bool {
			switch {
			case relays(a1):
				leader, other = a1, a2
			case relays(a2):
				leader, other = a2, a1
			}
			return leader != nil
		})
		other.Must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02")}, nil)
		stored := other.events(run)
		e2ekit.WaitFor(t, 30*time.Second, "the replicas to publish the log", func() bool {
			return len(copies(rd, run)) == len(stored) && a1.relayLag() == 0 && a2.relayLag() == 0
		})
		if relays(other) {
			t.Fatal("both replicas relay; the relay group elects one")
		}
		before := copies(rd, run)
		leader.Proc.Kill()
		e2ekit.WaitFor(t, 60*time.Second, "the other replica to take the relay over", func() bool { return relays(other) })

		other.Must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{}, nil)
		done := other.waitStatus(run, "Completed", "Error")
		if done.Status != "Completed" {
			t.Fatalf("after the relaying replica died: %s", done.Status)
		}
		all := other.events(run)
		e2ekit.WaitFor(t, 30*time.Second, "the events appended after the kill on the topic", func() bool { return len(copies(rd, run)) == len(all) })
		after := copies(rd, run)
		for v, n := range before {
			if n != 1 {
				t.Errorf("event %d of run %s is on the topic %d times before the takeover, want once (one replica relays)", v, run, n)
			}
			if after[v] != n {
				t.Errorf("event %d of run %s was published again after the takeover: %d copies, %d before", v, run, after[v], n)
			}
		}
		for _, e := range all[len(stored):] {
			if after[e.Version] != 1 {
				t.Errorf("event %d (%s), appended after the kill, is on the topic %d times, want once", e.Version, e.Type, after[e.Version])
			}
		}
	})
}

func count(evs []eventView, typ string) int { return countSince(evs, typ, 0) }

// countSince counts the events of typ after version since.
func countSince(evs []eventView, typ string, since int64) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && e.Version > since {
			n++
		}
	}
	return n
}
