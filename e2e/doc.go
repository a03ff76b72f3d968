// Package e2e holds end-to-end tests that drive a real piperun server over
// HTTP (and the CLI against it) on the real VAST test data.
package e2e
