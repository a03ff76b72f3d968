// Package eventjson decodes the JSON bodies of stored events as
// domain.Decode does, with the same result (encoding/json's), in about
// half the time, and parsing each run's configuration and products once
// however many of its events repeat them. Decoding is a large part of a
// read-model rebuild's work. It lives apart from domain, which imports
// only the standard library, because it uses the JSON v2 engine
// (github.com/go-json-experiment/json).
package eventjson
