// Package client is a typed Go client of piperun's HTTP API (/api/v1). Its
// methods map one to one onto the API's routes, return the API's JSON shapes
// as Go values, and report the server's refusals as *APIError carrying the
// HTTP status and the server's message. WaitProcessing and WaitRestore
// follow a run's event stream to learn how a job or restore ended, which
// the run's status alone cannot tell.
package client
