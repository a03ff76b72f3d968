// Package browser holds the web pages' end-to-end tests: a real piperun
// server over the real VAST test data, driven by Debian's Chromium through
// chromedp. The tests share one browser; they skip when Chromium is
// missing, and fail instead when the CI environment variable is set.
package browser
