package wiring

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/piperun/piperun/messaging/kafka"
)

// healthOf reads /healthz's bus detail.
func healthOf(t *testing.T, url string) BusHealth {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string    `json:"status"`
		Bus    BusHealth `json:"bus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Status != "ok" {
		t.Fatalf("/healthz: %d, %+v, %v", resp.StatusCode, out, err)
	}
	return out.Bus
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// await polls cond; the brokers answer (or fail to) in their own time.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAPIReplicaStaysReadyWithoutKafka: an API replica leads the relay
// (/healthz says so), and when the broker goes away it stays ready, since
// its commands are still stored, while /healthz reports the broker down.
func TestAPIReplicaStaysReadyWithoutKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			cluster.Close()
		}
	}()
	kcfg := kafka.Config{Brokers: cluster.ListenAddrs(), CheckEvery: 100 * time.Millisecond}
	addr, stop := start(t, Config{DataDir: t.TempDir(), ImagesDir: t.TempDir(), Addr: "127.0.0.1:0", Kafka: kcfg, Stdout: io.Discard})
	defer stop()
	url := "http://" + addr
	await(t, "the replica to lead the relay group", func() bool {
		h := healthOf(t, url)
		return h.Relay == "leader" && h.Broker == "up" && h.Lag == 0
	})
	if h := healthOf(t, url); h.Role != "api" || h.Bus != "kafka" || h.ConsumerGroup == nil || h.ConsumerGroup.Group != kafka.DefaultConsumerGroup {
		t.Fatalf("/healthz: %+v", h)
	}
	cluster.Close()
	closed = true
	await(t, "/healthz to report the broker down", func() bool { return healthOf(t, url).Broker == "down" })
	if code := statusOf(t, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of an API replica with Kafka down: %d", code)
	}
}
