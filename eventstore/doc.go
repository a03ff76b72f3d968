// Package eventstore defines the event store port of piperun: streams of
// versioned events, appended with an expected version, plus a global log
// ordered by position that projections, the relay and audits read.
//
// Adapters live in sub-packages (sqlite, memory, esdb) and all pass the
// exported contract suite in eventstore/eventstoretest.
package eventstore
