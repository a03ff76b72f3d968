// Package bench measures piperun: an HTTP load generator that drives
// create, process and restore commands against a real server, the time a
// restore takes from request to Completed at several run sizes, and the
// rate of a projection rebuild. Each is bounded in count and time, prints
// how it was set up, and returns its figures; `piperun bench …` runs them.
package bench
