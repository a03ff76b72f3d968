// Package api is piperun's JSON HTTP API (gorilla/mux). Commands go through
// command.Service against the event store; queries read the projections. Every
// error is a JSON object {"error": "..."} with the status code chosen in one
// place, request.StatusFor. Callers are authenticated by bearer token and
// reads wait for the log position they bring (package request).
package api
