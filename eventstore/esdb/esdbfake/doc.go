// Package esdbfake serves an in-process stand-in for an EventStoreDB node
// over gRPC, for tests of the EventStoreDB adapter and end-to-end tests
// whose processes share a network event store.
package esdbfake
