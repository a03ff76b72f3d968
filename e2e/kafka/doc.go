// Package kafka holds the end-to-end tests of the distributed mode: piperun
// binaries as subprocesses (API replicas sharing a data directory, and
// workers) with Kafka carried by an in-process kfake broker over real TCP,
// and franz-go's kgo as an independent reader of the topic.
package kafka
