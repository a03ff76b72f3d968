// Package metrics exposes piperun's Prometheus metrics: events appended,
// relay lag and publishes, messages consumed, handler errors and restore
// durations. Each process has its own registry, served on /metrics.
package metrics
