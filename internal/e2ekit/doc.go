// Package e2ekit holds what the end-to-end tests that run piperun as
// separate processes share: building the binary once per test binary,
// starting it with its log captured and awaited, killing or stopping it, a
// kfake broker that can be stopped and started again on its port, an API
// client bound to one replica, and an independent reader of the Kafka
// topic. It is imported only by tests.
package e2ekit
