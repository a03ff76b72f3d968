// Package relay publishes the event store's global log to the message bus:
// it tails the log from a checkpoint, publishes each run event in order,
// sends what can never be published to a dead-letter topic, and advances
// the checkpoint only after the bus has stored what it was given.
package relay
