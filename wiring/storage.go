// A data directory's stores: opening them, and adding a user to them.

package wiring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	msqlite "modernc.org/sqlite"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/esdb"
	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/projections"
)

// Files and folders of a data directory.
const (
	EventsFile    = "events.db"
	ReadModelFile = "read.db"
	ArtifactsDir  = "artifacts"
)

// Storage says where a process keeps its state.
type Storage struct {
	// DataDir holds the read models and the artifacts, and the embedded
	// event store unless ESDBURL is set.
	DataDir string
	// ESDBURL selects EventStoreDB as the event store
	// ("esdb://host:2113?tls=false").
	ESDBURL string
	// ArtifactsURL is where the products are stored (Config.ArtifactsURL).
	ArtifactsURL string
	// EventsPath is the embedded event store's file (default
	// <DataDir>/events.db). API replicas on one host may share it, each
	// with read models of its own in its DataDir.
	EventsPath string
}

// Components are the opened parts of a data directory.
type Components struct {
	Store     eventstore.Store
	Read      *projections.Store
	Artifacts *artifacts.Store
	Svc       *command.Service
}

// Open opens (creating if needed) the stores of a data directory.
func Open(ctx context.Context, st Storage) (*Components, error) {
	dataDir := st.DataDir
	if dataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	store, err := openEventStore(ctx, st)
	if err != nil {
		return nil, err
	}
	read, err := projections.Open(ctx, filepath.Join(dataDir, ReadModelFile))
	if err != nil {
		store.Close()
		return nil, err
	}
	arts, err := artifacts.Open(ctx, cmp.Or(st.ArtifactsURL, filepath.Join(dataDir, ArtifactsDir)))
	if err != nil {
		read.Close()
		store.Close()
		return nil, err // it names the store and says what failed
	}
	svc := command.New(store)
	// The projector takes the states the commands of this process have
	// just appended from their cache, instead of reading them back.
	read.Hints = svc
	return &Components{Store: store, Read: read, Artifacts: arts, Svc: svc}, nil
}

// Close closes the stores.
func (c *Components) Close() error {
	return errors.Join(c.Read.Close(), c.Store.Close(), c.Artifacts.Close())
}

// AddUser creates a user in a data directory and returns its API token. It
// works whether or not a server is running on the directory.
func AddUser(ctx context.Context, st Storage, name string, admin bool) (string, error) {
	c, err := Open(ctx, st)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.Svc.CreateUser(ctx, name, admin, "system:cli")
}

// openEventStore opens EventStoreDB when a URL is given, else the
// embedded SQLite store in the data directory.
func openEventStore(ctx context.Context, st Storage) (eventstore.Store, error) {
	if st.ESDBURL != "" {
		store, err := esdb.OpenWith(ctx, st.ESDBURL, esdb.Options{StreamPrefixes: []string{"run-", "user-"}})
		if err != nil {
			return nil, fmt.Errorf("open EventStoreDB event store: %w", err)
		}
		return store, nil
	}
	// Commit with fdatasync, as SQLite's C build does on Linux: it syncs
	// the data and the metadata needed to read it back, so an acknowledged
	// append survives power loss at about half the cost of fsync. Where
	// the platform lacks it, SQLite keeps using fsync.
	_, _ = msqlite.Fdatasync(true)
	path := st.EventsPath
	if path == "" {
		path = filepath.Join(st.DataDir, EventsFile)
	}
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	return store, nil
}
