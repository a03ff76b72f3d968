package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/handlers/api"
)

// The fuzz targets below run their seeds (f.Add and testdata/fuzz) as
// ordinary tests; `go test -fuzz=FuzzX ./handlers/api` explores further.
// Every request must answer below 500, reject bad input with a JSON error,
// and change nothing when it rejects. The seeded run "fz" is put back in its
// seeded state after any request that changed it, so that every input meets
// a run on which the command could succeed.

// exercise sends a request and checks it with checkSafe; a request that
// changed the store gets the seeded run reset.
func (fx *fixture) exercise(t *testing.T, what, method, target, authz string, body []byte) outcome {
	t.Helper()
	o := fx.send(t, method, target, authz, body)
	checkSafe(t, what, o)
	if o.changed {
		fx.reset(t, "fz", "alice")
	}
	return o
}

// outside is the file outside the images root that the seeds try to reach.
const outside = "etc/passwd"

// mustRefuseTraversal fails the test unless a request whose configuration
// names a file outside the images root, or whose run name could step out of
// a directory, was refused with 400.
func mustRefuseTraversal(t *testing.T, what, name, cfg string, o outcome) {
	t.Helper()
	if strings.Contains(cfg, outside) && o.code != http.StatusBadRequest {
		t.Fatalf("%s with a configuration naming %s outside the images root answered %d, want 400: %s", what, outside, o.code, o.body)
	}
	if (name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00")) && o.code != http.StatusBadRequest {
		t.Fatalf("%s named %q answered %d, want 400: %s", what, name, o.code, o.body)
	}
}

func FuzzCreateRunBody(f *testing.F) {
	fx := newFixture(f)
	good := func(name, desc, cfg string) []byte {
		b, _ := json.Marshal(map[string]string{"name": name, "description": desc, "config": cfg})
		return b
	}
	cfg := fx.config(2)
	for _, seed := range [][]byte{
		good("new-run", "a run", cfg),
		good("..", "", cfg),
		good(".", "", cfg),
		good("../escape", "", cfg),
		good(`a\b`, "", cfg),
		good("fz", "", cfg),
		good(strings.Repeat("x", 65), "", cfg),
		good("ok", strings.Repeat("d", 241), cfg),
		good("nul\x00name", "", cfg),
		good("traversal", "", strings.ReplaceAll(cfg, "epoch01.fits", "../../../etc/passwd")),
		good("absolute", "", strings.ReplaceAll(cfg, "epoch01.fits", "/etc/passwd")),
		good("bomb", "", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"),
		good("empty", "", ""),
		[]byte(`{"name": "x", "config": 12}`),
		[]byte(`{"name": "x", "extra": true}`),
		[]byte(`{"name": "x"} {"name": "y"}`),
		[]byte(`{"name": "x"`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte(``),
		[]byte("\xff\xfe"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o := fx.exercise(t, "create run", http.MethodPost, "/api/v1/runs", fx.as("alice"), body)
		var req struct{ Name, Config string }
		if json.Unmarshal(body, &req) == nil {
			mustRefuseTraversal(t, "create run", req.Name, req.Config, o)
		}
		if o.code != http.StatusCreated {
			return
		}
		// A run that could be created must be reachable under its name.
		var created struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(o.body, &created); err != nil {
			t.Fatalf("created run: %v: %s", err, o.body)
		}
		if g := fx.send(t, http.MethodGet, runPath(created.Name), fx.as("alice"), nil); g.code != http.StatusOK {
			t.Fatalf("run %q was created but GET %s answers %d: %s", created.Name, runPath(created.Name), g.code, g.body)
		}
	})
}

func FuzzConfigBody(f *testing.F) {
	fx := newFixture(f)
	cfg := func(c string) []byte {
		b, _ := json.Marshal(map[string]string{"config": c})
		return b
	}
	for _, s := range []struct {
		name string
		body []byte
	}{
		{"fz", cfg(fx.config(3))},
		{"fz", cfg(fx.config(2))},
		{"fz", cfg(strings.ReplaceAll(fx.config(3), "epoch02.fits", "../../../../etc/passwd"))},
		{"fz", cfg(strings.ReplaceAll(fx.config(3), "epoch02.fits", "epoch02.fits\x00"))},
		{"fz", cfg(strings.ReplaceAll(fx.config(3), "epoch02.fits", strings.Repeat("a/", 3000)+"x"))},
		{"fz", cfg("inputs: {image: *x}")},
		{"fz", cfg("{")},
		{"fz", []byte(`{"config": null}`)},
		{"fz", []byte(`{}`)},
		{"fz", []byte(``)},
		{"nope", cfg(fx.config(3))},
		{"..", cfg(fx.config(3))},
		{"fz/..", cfg(fx.config(3))},
	} {
		f.Add(s.name, s.body)
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		o := fx.exercise(t, "put config", http.MethodPut, runPath(name, "config"), fx.as("alice"), body)
		var req struct{ Config string }
		if json.Unmarshal(body, &req) == nil {
			mustRefuseTraversal(t, "put config", "", req.Config, o)
		}
	})
}

func FuzzProcessBody(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []struct {
		name string
		body string
	}{
		{"fz", `{}`},
		{"fz", ``},
		{"fz", `{"debug": true, "full_rerun": true}`},
		{"fz", `{"debug": "yes"}`},
		{"fz", `{"debug": true} trailing`},
		{"fz", `{"unknown": 1}`},
		{"fz", `null`},
		{"fz", `[true]`},
		{"fz", "\x00"},
		{"nope", `{}`},
		{"../fz", `{}`},
	} {
		f.Add(s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		fx.exercise(t, "process", http.MethodPost, runPath(name, "process"), fx.as("alice"), body)
	})
}

func FuzzRestoreBody(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []struct {
		name string
		body string
	}{
		{"fz", `{}`},
		{"fz", ``},
		{"fz", `{"debug": true}`},
		{"fz", `{"debug": 1}`},
		{"fz", `{"debug": true}{"debug": false}`},
		{"fz", `{"request_id": "forged"}`},
		{"fz", `"debug"`},
		{"nope", `{}`},
		{"fz/../fz", `{}`},
		{"%2e%2e", `{}`},
	} {
		f.Add(s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		fx.exercise(t, "restore", http.MethodPost, runPath(name, "restore"), fx.as("alice"), body)
	})
}

// FuzzAuthorization sends state-changing requests with any Authorization
// header: unless it carries a user's token, the answer is 401 and nothing
// changes.
func FuzzAuthorization(f *testing.F) {
	fx := newFixture(f)
	alice := fx.tokens["alice"]
	for _, h := range []string{
		"", "Bearer", "Bearer ", "bearer " + alice, "Basic " + alice, "Bearer " + alice + "x",
		"Bearer " + alice[:len(alice)-1], "Bearer " + strings.ToUpper(alice), "Bearer " + alice + " " + alice,
		"Bearer " + strings.Repeat("a", 300), "Bearer prt_", "Bearer \x00" + alice, alice,
		"Bearer " + alice, "Bearer  " + alice + " ",
	} {
		f.Add(h)
	}
	body, _ := json.Marshal(map[string]string{"name": "authrun", "config": fx.config(2)})
	f.Fuzz(func(t *testing.T, authz string) {
		token, isBearer := strings.CutPrefix(authz, "Bearer ")
		valid := false
		for _, tok := range fx.tokens {
			valid = valid || (isBearer && strings.TrimSpace(token) == tok)
		}
		for _, req := range []struct{ method, target string }{
			{http.MethodPost, "/api/v1/runs"},
			{http.MethodPost, runPath("fz", "restore")},
		} {
			o := fx.exercise(t, req.method+" "+req.target+" with Authorization "+fmt.Sprintf("%q", authz), req.method, req.target, authz, body)
			if !valid && o.code != http.StatusUnauthorized {
				t.Fatalf("Authorization %q: %s %s answered %d, want 401: %s", authz, req.method, req.target, o.code, o.body)
			}
		}
	})
}

// FuzzNames tries run, log and product names (path traversal among them)
// on every route: nothing may be served but the run's own products, and a
// non-owner changes nothing.
func FuzzNames(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []struct{ name, sub string }{
		{"fz", "measurements/epoch01.fits.parquet"},
		{"fz", "../../read.db"},
		{"fz", "measurements/../measurements/epoch01.fits.parquet"},
		{"fz", "/etc/passwd"},
		{"fz", "..%2f..%2fevents.db"},
		{"fz", "sha256"},
		{"..", "x"},
		{".", "x"},
		{"fz/..", "x"},
		{"fz/../fz", "measurements/epoch01.fits.parquet"},
		{"%2e%2e", "x"},
		{"fz\x00", ""},
		{"fz", ""},
	} {
		f.Add(s.name, s.sub)
	}
	digests := map[[32]byte]bool{}
	f.Fuzz(func(t *testing.T, name, sub string) {
		for _, r := range []struct{ user, method, target string }{
			{"alice", http.MethodGet, runPath(name)},
			{"alice", http.MethodGet, runPath(name, "logs")},
			{"alice", http.MethodGet, runPath(name, "logs", sub)},
			{"alice", http.MethodGet, runPath(name, "products")},
			{"alice", http.MethodGet, runPath(name, "products", sub)},
			{"alice", http.MethodGet, runPath(name, "restore")},
			{"alice", http.MethodGet, runPath(name, "events")},
			{"bob", http.MethodPost, runPath(name, "restore")},
			{"bob", http.MethodPost, runPath(name, "process")},
			{"bob", http.MethodPost, runPath(name, "cancel")},
			{"bob", http.MethodPut, runPath(name, "config")},
			{"bob", http.MethodDelete, runPath(name)},
		} {
			var body []byte
			if r.method == http.MethodPut {
				body, _ = json.Marshal(map[string]string{"config": fx.config(3)})
			}
			o := fx.exercise(t, r.method+" "+r.target, r.method, r.target, fx.as(r.user), body)
			if r.user == "bob" && o.code < 400 {
				t.Fatalf("bob, who owns nothing, got %d for %s %s: %s", o.code, r.method, r.target, o.body)
			}
			if strings.Contains(r.target, "/products/") && o.code == http.StatusOK {
				if len(digests) == 0 {
					for _, a := range fx.products(t) {
						digests[a] = true
					}
				}
				if !digests[sha256Of(o.body)] {
					t.Fatalf("GET %s served %d bytes that are none of the run's products", r.target, len(o.body))
				}
			}
		}
	})
}

// TestOversizedBodies: a body over api.MaxBodyBytes is refused with 413 on
// every route that reads one, and changes nothing.
func TestOversizedBodies(t *testing.T) {
	fx := newFixture(t)
	big := strings.Repeat("a", api.MaxBodyBytes+1)
	bodies := map[string][]byte{
		"long string":        []byte(`{"name": "big", "config": "` + big + `"}`),
		"padded with spaces": append([]byte(`{}`), bytes.Repeat([]byte(" "), api.MaxBodyBytes+1)...),
	}
	for _, route := range []struct{ method, target string }{
		{http.MethodPost, "/api/v1/runs"},
		{http.MethodPut, runPath("fz", "config")},
		{http.MethodPost, runPath("fz", "process")},
		{http.MethodPost, runPath("fz", "restore")},
		{http.MethodPost, runPath("fz", "cancel")},
	} {
		for what, body := range bodies {
			t.Run(route.method+" "+route.target+" "+what, func(t *testing.T) {
				o := fx.exercise(t, route.method+" "+route.target, route.method, route.target, fx.as("alice"), body)
				if o.code != http.StatusRequestEntityTooLarge {
					t.Errorf("status %d, want 413: %s", o.code, o.body)
				}
			})
		}
	}
}

// TestStateChangingRoutesCheckCaller walks the API's routes: every route
// that changes state must be in the table below, and each refuses a caller
// without a valid token (401) and, on a run, a user who neither created it
// nor administers (403), with a JSON error and no change.
func TestStateChangingRoutesCheckCaller(t *testing.T) {
	fx := newFixture(t)
	cfg, _ := json.Marshal(map[string]string{"config": fx.config(2)})
	create, _ := json.Marshal(map[string]string{"name": "by-bob", "config": fx.config(2)})
	type request struct {
		path string
		body []byte
		// onRun: the route acts on an existing run, so its owner matters
		// (or, for a user's token, only an administrator may): bob gets 403.
		onRun bool
	}
	table := map[string]request{
		"POST /api/v1/runs":                {"/api/v1/runs", create, false},
		"DELETE /api/v1/runs/{name}":       {runPath("fz"), nil, true},
		"PUT /api/v1/runs/{name}/config":   {runPath("fz", "config"), cfg, true},
		"POST /api/v1/runs/{name}/process": {runPath("fz", "process"), []byte(`{"full_rerun": true}`), true},
		"POST /api/v1/runs/{name}/restore": {runPath("fz", "restore"), []byte(`{}`), true},
		"POST /api/v1/users/{user}/revoke": {"/api/v1/users/alice/revoke", nil, true},
		"POST /api/v1/users/{user}/rotate": {"/api/v1/users/alice/rotate", nil, true},
		"POST /api/v1/runs/{name}/cancel":  {runPath("fz", "cancel"), nil, true},
	}
	walked := 0
	checkRoute := func(method, template string) {
		walked++
		key := method + " " + template
		req, ok := table[key]
		if !ok {
			t.Errorf("state-changing route %s has no entry in this test", key)
			return
		}
		for _, who := range []struct {
			authz string
			want  int
		}{
			{"", http.StatusUnauthorized},
			{"Bearer prt_" + strings.Repeat("0", 48), http.StatusUnauthorized},
			{fx.as("bob"), http.StatusForbidden},
		} {
			if who.want == http.StatusForbidden && !req.onRun {
				continue
			}
			o := fx.exercise(t, key, method, req.path, who.authz, req.body)
			if o.code != who.want {
				t.Errorf("%s as %q: %d, want %d: %s", key, who.authz, o.code, who.want, o.body)
			}
		}
	}
	err := fx.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		template, err := route.GetPathTemplate()
		if err != nil {
			return nil // a route without a path
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a subrouter's prefix: its routes come next
		}
		for _, method := range methods {
			if method != http.MethodGet && method != http.MethodHead {
				checkRoute(method, template)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if walked != len(table) {
		t.Errorf("walked %d state-changing routes, the table has %d", walked, len(table))
	}
}
