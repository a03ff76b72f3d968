// Package messaging turns stored run events into watermill messages and
// back (package relay publishes the log with it; messaging/kafka is the
// Kafka adapter).
//
// Every message is one event in CloudEvents 1.0 binary content mode: the
// attributes travel as metadata (ce_specversion, ce_id, ce_type, ce_source,
// ce_subject, ce_time, content-type) and the body is the event's JSON, so
// that any consumer can read the topic without piperun's code.
package messaging
