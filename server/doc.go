// Package server wires piperun together by hand: the event store, the read
// models, the artifact store, the bus with its relay and workers, and the
// HTTP server. It also holds the maintenance operations that work on a data
// directory directly (adding users, rebuilding projections).
package server
