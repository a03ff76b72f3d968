// Package memory is an in-memory eventstore.Store for unit tests. It keeps
// nothing across restarts; production uses eventstore/sqlite.
package memory
