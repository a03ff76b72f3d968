// Package domain holds the pipeline run aggregate of piperun: its state, the
// pure decisions that turn commands into events, and Apply, which folds
// events into state. It imports only the standard library and does no I/O.
// How a state or an event is stored is not its concern: package statecodec
// encodes states, package eventjson encodes and decodes events.
package domain
