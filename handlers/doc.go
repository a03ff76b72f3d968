// Package handlers groups the adapters that drive the application: the
// HTTP API (handlers/api) and the watermill message handlers
// (handlers/workers).
package handlers
