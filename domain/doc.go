// Package domain holds the pipeline run aggregate of piperun: its state, the
// pure decisions that turn commands into events, and Apply, which folds
// events into state. It imports only the standard library and does no I/O.
package domain
