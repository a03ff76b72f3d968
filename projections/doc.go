// Package projections keeps piperun's read models — the run list, the run
// detail page, the log view and the user index — in a SQLite file beside
// the event store. A projector tails the store's global log and applies each
// batch of events in one transaction together with its checkpoint, so a
// crash never applies an event twice or skips one. The read models can be
// dropped and rebuilt from the log at any time.
package projections
