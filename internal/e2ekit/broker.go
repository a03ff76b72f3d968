package e2ekit

import (
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a kfake cluster of one broker that keeps its log in a
// directory, so that it can be stopped and started again on its port
// with everything it had acknowledged.
type Broker struct {
	// Addr is the broker's host:port, the same after a restart.
	Addr string

	t    *testing.T
	dir  string
	port int
	c    *kfake.Cluster
}

// StartBroker starts a broker that stops when the test ends.
func StartBroker(t *testing.T) *Broker {
	t.Helper()
	b := &Broker{t: t, dir: t.TempDir()}
	b.Start()
	b.Addr = b.c.ListenAddrs()[0]
	p, err := strconv.Atoi(b.Addr[strings.LastIndex(b.Addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	b.port = p
	t.Cleanup(b.Stop)
	return b
}

// Start starts the stopped broker again, on its port and with its log.
func (b *Broker) Start() {
	b.t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(b.dir)}
	if b.port != 0 {
		opts = append(opts, kfake.Ports(b.port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.t.Fatalf("start kfake: %v", err)
	}
	b.c = c
}

// Stop stops the broker; stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}
