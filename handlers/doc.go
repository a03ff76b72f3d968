// Package handlers groups the HTTP adapters that drive the application:
// the JSON API (handlers/api) and the web pages (handlers/web), and what
// both need to know about a request (handlers/request). The message
// handlers that react to run events are in package workers.
package handlers
