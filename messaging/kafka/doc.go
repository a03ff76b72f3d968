// Package kafka carries run events on Apache Kafka with watermill-kafka
// (IBM/sarama underneath): a publisher for the relay (idempotent producer,
// acknowledged by every in-sync replica, key = run name, CloudEvents
// headers), a subscriber for the workers' consumer group that reports its
// partition assignment (GroupSubscriber, with Ownership telling which runs
// are this process's), a watchdog that
// turns a consumer group that makes no progress into an error, and a guard
// that keeps duplicated messages from reaching the workers twice.
package kafka
