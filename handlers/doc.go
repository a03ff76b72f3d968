// Package handlers groups the HTTP adapters that drive the application:
// the JSON API (handlers/api) and the web pages (handlers/web). The message
// handlers that react to run events are in package workers.
package handlers
