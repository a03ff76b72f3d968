package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/piperun/piperun/client"
)

// clientFlags adds --server and --token to a command's flags.
func clientFlags(fs *flag.FlagSet) {
	fs.String("server", DefaultServer, "`URL` of the piperun server")
	fs.String("token", "", "API `TOKEN` (better set "+EnvToken+": flags show in the process list)")
}

// remote is a client of the server a command was pointed at.
type remote struct {
	*client.Client
	server string
}

// client resolves --server and --token (or their environment variables)
// into a client.
func (e *env) client(fs *flag.FlagSet) (*remote, error) {
	server := e.fromEnv(fs, "server", EnvServer)
	token := e.fromEnv(fs, "token", EnvToken)
	if token == "" {
		return nil, usagef("no API token: set %s or pass --token (an administrator creates one with 'piperun user add NAME')", EnvToken)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http(s) URL like %s", server, DefaultServer)
	}
	pf := positionFileFor(e.getenv(EnvStateDir), server)
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: positionSaver{next: http.DefaultTransport, file: pf}}
	c := client.New(server, token, hc)
	c.SeePosition(pf.load())
	return &remote{Client: c, server: server}, nil
}

// explain turns an error of a call to the server into a message for the
// user, by what went wrong rather than by HTTP code.
func (r *remote) explain(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			return fmt.Errorf("the server did not accept the API token (%s): check %s or --token", ae.Message, EnvToken)
		case http.StatusForbidden:
			return fmt.Errorf("not allowed: %s", ae.Message)
		case http.StatusNotFound:
			return errors.New(ae.Message)
		case http.StatusConflict:
			return fmt.Errorf("refused by the server: %s", ae.Message)
		case http.StatusBadRequest:
			return fmt.Errorf("rejected by the server: %s", ae.Message)
		}
		return fmt.Errorf("server error: %w", err)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("cannot reach the piperun server at %s (%v): is 'piperun serve' running? Set %s or --server", r.server, oe.Err, EnvServer)
	}
	return err
}
