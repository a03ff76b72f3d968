// Package replicas holds end-to-end tests of several API replicas of one
// service: real servers, each with read models of its own, sharing one
// event store, behind a round-robin reverse proxy, driven through the
// client, the CLI and the web pages.
package replicas
