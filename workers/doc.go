// Package workers holds piperun's message handlers: the processing worker,
// the restore worker and the artifact janitor. They consume run events from
// a watermill subscriber (in-process GoChannel or Kafka) and append their
// outcomes to the event store.
//
// Every handler is idempotent: it decides from the run's current state, not
// from the message, so a redelivered message finds its job or restore no
// longer pending and changes nothing. Recover re-drives whatever was pending
// when a process died.
package workers
