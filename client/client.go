package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/piperun/piperun/apitypes"
	"github.com/piperun/piperun/domain"
)

// maxResponseBytes bounds what is read of a response body. A run's events
// (which carry its logs) are the largest answer, and stay far below it.
const maxResponseBytes = 256 << 20

// APIError is a request the server answered with an error status. Message
// is the server's explanation (its {"error": ...} text).
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// IsStatus reports whether err is an *APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// Client calls one piperun server on behalf of one API token. It is safe
// for concurrent use.
//
// It gives read-your-writes when the server is several API replicas behind
// one address: it remembers the highest global log position the server's
// answers reported (apitypes.PositionHeader) and sends it with every later
// request (apitypes.MinPositionHeader), which the replica that serves it then
// answers only from read models that reflect it.
type Client struct {
	base     string
	token    string
	http     *http.Client
	position atomic.Int64
}

// New returns a client of the server at baseURL ("http://host:port"; a bare
// "host:port" is taken as http). A nil httpClient means
// http.DefaultClient. An empty token sends no credentials, which only
// Healthz and Readyz accept.
func New(baseURL, token string, httpClient *http.Client) *Client {
	base := strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if base != "" && !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: base, token: token, http: httpClient}
}

// BaseURL returns the server URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Position returns the highest global log position the server's answers
// have reported to this client (0 if none).
func (c *Client) Position() int64 { return c.position.Load() }

// SeePosition raises the position the client sends with its requests to
// pos (a lower one changes nothing): a program that ran commands earlier,
// through another client, passes on what they reached.
func (c *Client) SeePosition(pos int64) {
	for {
		cur := c.position.Load()
		if pos <= cur || c.position.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// ProcessResponse is the answer to a processing request.
type ProcessResponse struct {
	Status  domain.Status  `json:"status"`
	Version int64          `json:"version"`
	JobID   string         `json:"job_id"`
	Mode    domain.JobMode `json:"mode"`
	// Log is the name of the job's run log.
	Log string `json:"log"`
	// Position is the global log position the request reached.
	Position int64 `json:"position"`
}

// RestorePreview says whether a run can be restored and to what.
type RestorePreview struct {
	// Available: the run has a backup and a status that allows a restore.
	Available bool `json:"available"`
	// Allowed: the caller may restore this run (its creator or an admin).
	Allowed bool `json:"allowed"`
	// Reason explains why a restore is not available.
	Reason string `json:"reason"`
	// Config is the configuration the run would be restored to ("" without
	// a backup).
	Config        string          `json:"config"`
	BackupVersion int64           `json:"backup_version"`
	Images        []string        `json:"images"`
	Figures       *domain.Figures `json:"figures"`
}

// RestoreResponse is the answer to a restore request.
type RestoreResponse struct {
	Status    domain.Status `json:"status"`
	Version   int64         `json:"version"`
	RequestID string        `json:"request_id"`
	// Log is the name of the restore log.
	Log string `json:"log"`
	// Position is the global log position the request reached.
	Position int64 `json:"position"`
}

// DeleteResponse is the answer to a deletion request; the run is Deleting
// until a worker removes it.
type DeleteResponse struct {
	Status  domain.Status `json:"status"`
	Version int64         `json:"version"`
	// Position is the global log position the request reached.
	Position int64 `json:"position"`
}

// CancelResponse is the answer to a cancellation: the run is in Error,
// its job ended with Reason.
type CancelResponse struct {
	Status  domain.Status `json:"status"`
	Version int64         `json:"version"`
	JobID   string        `json:"job_id"`
	Reason  string        `json:"reason"`
	// Position is the global log position the cancellation reached.
	Position int64 `json:"position"`
}

// User is the caller as the server knows it.
type User struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
}

// Event is one event of a run's stream as the API shows it.
type Event = apitypes.EventView

func runPath(name string, rest ...string) string {
	p := "/api/v1/runs/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// CreateRun creates a run from a configuration's YAML text.
func (c *Client) CreateRun(ctx context.Context, name, description, config string) (apitypes.RunDetail, error) {
	var out apitypes.RunDetail
	body := map[string]string{"name": name, "description": description, "config": config}
	err := c.do(ctx, http.MethodPost, "/api/v1/runs", body, &out)
	return out, err
}

// ListRuns returns every run, most recently changed first.
func (c *Client) ListRuns(ctx context.Context) ([]apitypes.RunSummary, error) {
	var out struct {
		Runs []apitypes.RunSummary `json:"runs"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/runs", nil, &out)
	return out.Runs, err
}

// GetRun returns a run as it is now.
func (c *Client) GetRun(ctx context.Context, name string) (apitypes.RunDetail, error) {
	var out apitypes.RunDetail
	err := c.do(ctx, http.MethodGet, runPath(name), nil, &out)
	return out, err
}

// GetRunAt returns a run as it was at stream version version.
func (c *Client) GetRunAt(ctx context.Context, name string, version int64) (apitypes.RunDetail, error) {
	var out apitypes.RunDetail
	err := c.do(ctx, http.MethodGet, runPath(name)+"?version="+strconv.FormatInt(version, 10), nil, &out)
	return out, err
}

// PutConfig replaces a run's configuration (processed by the next
// processing request).
func (c *Client) PutConfig(ctx context.Context, name, config string) (apitypes.RunDetail, error) {
	var out apitypes.RunDetail
	err := c.do(ctx, http.MethodPut, runPath(name, "config"), map[string]string{"config": config}, &out)
	return out, err
}

// Process requests processing of a run: in add mode when images were added
// to a completed run, otherwise (or with fullRerun) a full run.
func (c *Client) Process(ctx context.Context, name string, debug, fullRerun bool) (ProcessResponse, error) {
	var out ProcessResponse
	body := map[string]bool{"debug": debug, "full_rerun": fullRerun}
	err := c.do(ctx, http.MethodPost, runPath(name, "process"), body, &out)
	return out, err
}

// RestorePreview tells whether a run can be restored and to which
// configuration.
func (c *Client) RestorePreview(ctx context.Context, name string) (RestorePreview, error) {
	var out RestorePreview
	err := c.do(ctx, http.MethodGet, runPath(name, "restore"), nil, &out)
	return out, err
}

// Restore requests that a run be restored to its version before the last
// addition of images. The answer carries the request's ID, for
// WaitRestore, and the name of the restore log.
func (c *Client) Restore(ctx context.Context, name string, debug bool) (RestoreResponse, error) {
	var out RestoreResponse
	err := c.do(ctx, http.MethodPost, runPath(name, "restore"), map[string]bool{"debug": debug}, &out)
	return out, err
}

// Cancel ends the Queued or Running job of a run (only its creator or an
// administrator may; a run with no job running answers 409).
func (c *Client) Cancel(ctx context.Context, name string) (CancelResponse, error) {
	var out CancelResponse
	err := c.do(ctx, http.MethodPost, runPath(name, "cancel"), nil, &out)
	return out, err
}

// Delete requests the deletion of a run.
func (c *Client) Delete(ctx context.Context, name string) (DeleteResponse, error) {
	var out DeleteResponse
	err := c.do(ctx, http.MethodDelete, runPath(name), nil, &out)
	return out, err
}

// Logs lists a run's log files, newest first.
func (c *Client) Logs(ctx context.Context, name string) ([]apitypes.LogInfo, error) {
	var out struct {
		Logs []apitypes.LogInfo `json:"logs"`
	}
	err := c.do(ctx, http.MethodGet, runPath(name, "logs"), nil, &out)
	return out.Logs, err
}

// Log returns the lines of one of a run's logs from line number from
// (1-based; values below 1 mean 1) on.
func (c *Client) Log(ctx context.Context, name, log string, from int64) ([]string, error) {
	p := runPath(name, "logs", log)
	if from > 1 {
		p += "?from=" + strconv.FormatInt(from, 10)
	}
	var buf bytes.Buffer
	if err := c.do(ctx, http.MethodGet, p, nil, &buf); err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(buf.String(), "\n")
	if text == "" {
		return []string{}, nil
	}
	return strings.Split(text, "\n"), nil
}

// Events returns a run's event stream, oldest first.
func (c *Client) Events(ctx context.Context, name string) ([]Event, error) {
	var out struct {
		Events []Event `json:"events"`
	}
	err := c.do(ctx, http.MethodGet, runPath(name, "events"), nil, &out)
	return out.Events, err
}

// WhoAmI returns the user the client's token belongs to.
func (c *Client) WhoAmI(ctx context.Context) (User, error) {
	var out User
	err := c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, &out)
	return out, err
}

// RevokeToken withdraws user's API token (administrators only): it and the
// user's web sessions stop working.
func (c *Client) RevokeToken(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(user)+"/revoke", nil, nil)
}

// RotateToken gives user a new API token (administrators only) and returns
// it; the old one stops working.
func (c *Client) RotateToken(ctx context.Context, user string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(user)+"/rotate", nil, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}

// Healthz checks that the server answers.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Readyz checks that the server can take commands (its read models keep up
// and its relay publishes).
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// do sends a request with an optional JSON body and decodes the answer
// into out: JSON unless out is a *bytes.Buffer, which receives the raw
// body.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	if c.base == "" {
		return errors.New("no server URL configured")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if pos := c.position.Load(); pos > 0 {
		req.Header.Set(apitypes.MinPositionHeader, strconv.FormatInt(pos, 10))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if v := resp.Header.Get(apitypes.PositionHeader); v != "" {
		if pos, err := strconv.ParseInt(v, 10, 64); err == nil {
			c.SeePosition(pos)
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return apiError(resp.StatusCode, data)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *bytes.Buffer:
		o.Write(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// apiError builds the error of an error answer, taking the server's
// message from its JSON body, or the start of a body that is not JSON (a
// proxy's page, say).
func apiError(status int, body []byte) *APIError {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{Status: status, Message: e.Error}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return &APIError{Status: status, Message: msg}
}
