// Package esdb is the EventStoreDB eventstore.Store, on the official gRPC
// client (github.com/EventStore/EventStore-Client-Go/v4). It is the store of
// the distributed mode: several API and worker replicas share one server.
//
// Stream versions count from 1 where EventStoreDB revisions count from 0;
// global positions are the server's commit positions plus one, so that 0
// still means "before the first event". The global log is $all without
// system events and without the snapshot streams ("snapshot-<stream>") this
// adapter keeps beside each stream; OpenWith can narrow it to stream
// prefixes. The contract suite runs against a real server when
// PIPERUN_TEST_ESDB_URL is set, and always against an in-process fake node
// that serves the client's own gRPC protocol.
package esdb
