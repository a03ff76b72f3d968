// Package command executes commands on the run and user aggregates: it loads an
// aggregate from the event store (snapshot plus newer events), asks the
// domain for a decision, and appends the resulting events at the version it
// read, so that concurrent commands are decided by the store's expected
// version check.
package command
