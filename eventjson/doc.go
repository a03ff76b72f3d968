// Package eventjson is the one JSON codec of stored events: Encode writes
// an event's body (its shape is the domain's struct tags), Decode reads it
// back by its type name, upcasting old versions, for every reader (the
// commands, the projector, the workers, the history). It decodes with the
// JSON v2 engine (github.com/go-json-experiment/json) set to give exactly
// what encoding/json gives, in about half the time, parsing each run's
// configuration and products once however many of its events repeat them:
// decoding is a large part of a read-model rebuild's work.
package eventjson
