package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultHealthURL is what 'piperun healthcheck' asks by default: the
// readiness of a 'piperun serve' listening on its default port.
const DefaultHealthURL = "http://127.0.0.1:8080/readyz"

var healthcheckHelp = help{
	usage: []string{"healthcheck [--url URL] [--timeout D]"},
	description: `
Asks a piperun process whether it is healthy: GET URL (default ` + DefaultHealthURL + `),
and exits 0 when the answer is 200, 1 otherwise with the reason (the
process's own message, or why it could not be reached). It is for
container health checks in images without a shell or curl (the piperun
image is distroless).

/readyz of 'piperun serve' is ready once the event store answers and the
relay and consumer group progress; 'piperun worker' serves /healthz and
/readyz on its --metrics-addr. /healthz only says the process serves HTTP.`,
	examples: `
piperun healthcheck
piperun healthcheck --url http://127.0.0.1:9090/readyz
# docker-compose.yml:
#   healthcheck:
#     test: ["CMD", "piperun", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]`,
}

func cmdHealthcheck(e *env, args []string) error {
	fs := e.flagSet()
	fs.String("url", DefaultHealthURL, "`URL` to ask: /readyz or /healthz of a piperun process")
	fs.String("timeout", "5s", "`D`: how long to wait for the answer")
	if _, err := e.parse(fs, healthcheckHelp, args, 0, 0, ""); err != nil {
		return err
	}
	raw := fs.Lookup("url").Value.String()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--url %q is not an http:// or https:// URL", raw)
	}
	timeout, err := positiveDuration(fs, "timeout")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("ask %s: %w", u, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	msg := strings.TrimSpace(string(body))
	if res.StatusCode != http.StatusOK {
		if msg == "" {
			msg = http.StatusText(res.StatusCode)
		}
		return fmt.Errorf("unhealthy: %s answered %d: %s", u, res.StatusCode, msg)
	}
	fmt.Fprintf(e.stdout, "healthy: %s\n", msg)
	return nil
}
