package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/piperun/piperun/handlers/request"
)

// TestCommandsAnswerTheirPosition: a command's answer carries the global
// log position of its last event, in the Piperun-Position header and in
// its JSON, and sets no position cookie for a token-authenticated caller.
func TestCommandsAnswerTheirPosition(t *testing.T) {
	fx := newFixture(t)
	body, err := json.Marshal(map[string]string{"name": "pos", "config": fx.config(2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
	}{
		{http.MethodPost, "/api/v1/runs", body, http.StatusCreated},
		{http.MethodPost, "/api/v1/runs/pos/process", []byte(`{}`), http.StatusAccepted},
		{http.MethodPost, "/api/v1/runs/pos/cancel", nil, http.StatusOK},
		{http.MethodPost, "/api/v1/users/bob/rotate", nil, http.StatusOK},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(string(c.body)))
		req.Header.Set("Authorization", fx.as("root"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Fatalf("%s %s: %d %s; want %d", c.method, c.path, rec.Code, rec.Body, c.code)
		}
		var out struct {
			Position int64 `json:"position"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		head := fx.head(t)
		if h := rec.Header().Get(request.PositionHeader); h != strconv.FormatInt(head, 10) || out.Position != head {
			t.Errorf("%s %s: %s %q, JSON position %d; want the log's head %d in both", c.method, c.path, request.PositionHeader, h, out.Position, head)
		}
		if sc := rec.Header().Get("Set-Cookie"); sc != "" {
			t.Errorf("%s %s with a token set a cookie: %s", c.method, c.path, sc)
		}
	}
}
