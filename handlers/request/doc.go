// Package request is what every HTTP handler of piperun needs to know about
// a request: who is asking (Authenticator, ActorFrom, WithActor), which log
// position it must see (Positions, MinPosition, SetPosition), and how an
// error becomes a status (StatusFor). The JSON API (handlers/api) and the
// web pages (handlers/web) share one Authenticator and one Positions, built
// by the composition root (package wiring).
package request
