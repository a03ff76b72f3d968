// Package web serves piperun's pages: sign-in, the run list, a run's detail
// page (which follows the run live over Server-Sent Events) and its history.
// Pages are server-rendered html/template with a little JavaScript that
// calls the JSON API with the session cookie; templates, styles and scripts
// are embedded in the binary.
package web
