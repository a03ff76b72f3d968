// Package statecodec writes a run's state (domain.Run) in the compact
// binary form that snapshots, the command cache and the read models store,
// and reads it back, as well as the plain JSON states were stored in before.
// It is an encoding of the aggregate, kept apart from the decisions in
// domain: the domain holds what a run is, this package how it is stored.
package statecodec
