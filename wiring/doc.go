// Package wiring is piperun's composition root: it builds the event store,
// the read models, the artifact store, the bus with its relay and workers,
// and the HTTP servers from a Config, and runs them (Run, Start). The
// command line (package cli) parses flags into a Config and calls it; nothing
// else builds these parts. It also holds the maintenance operations that
// work on a data directory directly (adding users, rebuilding projections,
// sweeping products).
package wiring
