// Package faults holds fault tests of piperun: the real binary killed with
// SIGKILL during restores and while it appends, its data directory made
// unwritable, and the security properties an operator relies on (tokens
// kept only as hashes and never logged, every state-changing route checking
// the caller, an actor on every event). The tests drive `piperun serve` as
// a subprocess over the shared VAST test data.
package faults
