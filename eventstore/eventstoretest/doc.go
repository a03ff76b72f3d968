// Package eventstoretest is the contract suite every eventstore.Store adapter
// runs: call Run from the adapter's tests with a Factory. It assumes nothing
// that an EventStoreDB server would break: stream names are unique per run,
// the global log may already hold events, and positions are only compared,
// never expected to step by one.
package eventstoretest
