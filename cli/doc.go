// Package cli is piperun's command line: the service commands (serve,
// worker), the run commands modelled on the VAST pipeline's management
// commands (initpiperun, runpipeline, restorepiperun, clearpiperun, ...),
// which talk to a server through package client, and the maintenance
// commands that work on a data directory directly. Run is the whole
// program but for process setup, so tests drive it like a user would.
package cli
