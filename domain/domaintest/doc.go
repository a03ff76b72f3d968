// Package domaintest holds fixtures for the tests of package domain and of
// its codecs (statecodec, eventjson): sample configurations and products, a
// Stream that records a run's decided events as the event store would, the
// run histories the decision tests start from, and reflection helpers that
// fill every field of a state so that a field added to domain.Run and
// forgotten by a codec fails a test. It imports only domain and the
// standard library, and is imported only by tests.
package domaintest
