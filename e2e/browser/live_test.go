package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// streamsPerUser is the shared server's cap on one user's live streams,
// low enough for TestLiveUpdatesUnavailable to reach with a few tabs and
// above what the other tests open at once for one user.
const streamsPerUser = 3

// liveEvents records the names of the live stream's events a tab receives.
type liveEvents struct {
	mu    sync.Mutex
	names []string
}

func (l *liveEvents) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

// recordLive makes tb record its live streams' events.
func recordLive(tb *tab) *liveEvents {
	tb.t.Helper()
	l := &liveEvents{}
	if err := chromedp.Listen(tb.ctx, func(ev any) {
		if m, ok := ev.(*network.EventEventSourceMessageReceived); ok {
			l.mu.Lock()
			l.names = append(l.names, m.EventName)
			l.mu.Unlock()
		}
	}); err != nil {
		tb.t.Fatalf("listen to the tab: %v", err)
	}
	if _, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{}); err != nil {
		tb.t.Fatalf("enable the browser's network events: %v", err)
	}
	return l
}

// TestLiveUpdatesArriveAsChanges processes a run with its page open: the
// page gets the whole run once, then only changes, and what it shows when
// the run is done (status, figures, images, products, logs) is what a
// fresh load of the page shows.
func TestLiveUpdatesArriveAsChanges(t *testing.T) {
	needBrowser(t)
	inst := sharedServer(t)
	runName := fresh("vast-live")
	bob := newTab(t, inst)
	bob.signIn("bob", inst.tokens["bob"])
	events := recordLive(bob)
	bob.createRun(runName, "followed live", configFor("01", "02"))
	bob.waitFor("the live stream", `document.getElementById("live").classList.contains("on")`, 15*time.Second)
	bob.schedule(false)
	bob.waitStatus("Completed", 3*time.Minute)
	bob.waitFor("2 images", `document.querySelectorAll("#images-table tbody tr:not(.empty-row)").length === 2`, 15*time.Second)

	// Every connection starts with the whole run: the page connects on
	// load and again when it opens the job's log.
	if got := events.list(); len(got) == 0 || got[0] != "run" || strings.Count(strings.Join(got, " "), "run") > 2 {
		t.Errorf("live events %v: want the whole run once per connection, first", got)
	}

	// Changes made elsewhere (through the API: a new configuration, and an
	// addition processed) arrive as changes only, which the page applies:
	// new fields, a log put first in the list, an image added after the
	// others, products replaced among the rest.
	before := len(events.list())
	call := func(method, path string, body any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, inst.url+"/api/v1/runs/"+runName+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+inst.tokens["bob"])
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d", method, path, res.StatusCode)
		}
	}
	call(http.MethodPut, "/config", map[string]string{"config": configFor("01", "02", "03")})
	bob.waitFor("the new configuration, live", `document.getElementById("config-view").textContent.includes("epoch03.fits")`, 15*time.Second)
	call(http.MethodPost, "/process", map[string]bool{"debug": false})
	bob.waitFor("3 images, live", `document.querySelectorAll("#images-table tbody tr:not(.empty-row)").length === 3`, 3*time.Minute)
	bob.waitStatus("Completed", 3*time.Minute)
	after := events.list()[before:]
	t.Logf("live events after the page's own actions: %v", after)
	if len(after) < 3 || strings.Contains(strings.Join(after, " "), "run") {
		t.Errorf("live events for the changes made elsewhere: %v; want changes only", after)
	}

	shown := func() string {
		return eval[string](bob, `["run-status", "run-version", "products-count"].map(id => document.getElementById(id).textContent.trim()).join(" | ") + " | " +
			["#images-table tbody tr", "#products-table tbody tr", "#log-list li"].map(sel => Array.from(document.querySelectorAll(sel)).map(r => Array.from(r.children).map(c => c.textContent.trim()).join(";")).join(" / ")).join(" | ") +
			" | " + Array.from(document.querySelectorAll("[data-fig]")).map(f => f.dataset.fig + "=" + f.textContent.trim()).join(",")`)
	}
	live := shown()
	bob.open("/runs/" + runName)
	bob.do(chromedp.WaitVisible(chromedp.ID("run-status")))
	if fresh := shown(); fresh != live {
		t.Errorf("the page built from live changes differs from a fresh load:\nlive:  %s\nfresh: %s", live, fresh)
	}
	if !strings.Contains(live, "epoch01.fits") || !strings.Contains(live, "Completed") {
		t.Errorf("the page after processing: %.400s", live)
	}
}

// TestLiveUpdatesUnavailable opens one run page more than a user may
// follow live: the last page says that live updates are unavailable.
func TestLiveUpdatesUnavailable(t *testing.T) {
	needBrowser(t)
	inst := sharedServer(t)
	runName := fresh("vast-capped")
	var tabs []*tab
	for i := range streamsPerUser + 1 {
		tb := newTab(t, inst)
		tb.signIn("root", inst.tokens["root"])
		if i == 0 {
			tb.createRun(runName, "", configFor("01"))
		} else {
			tb.open("/runs/" + runName)
		}
		tabs = append(tabs, tb)
	}
	for i, tb := range tabs[:streamsPerUser] {
		tb.waitFor(fmt.Sprintf("tab %d following live", i+1), `document.getElementById("live").classList.contains("on")`, 15*time.Second)
	}
	last := tabs[streamsPerUser]
	last.waitFor("the refusal shown", `document.getElementById("live").classList.contains("unavailable")`, 15*time.Second)
	if got := strings.TrimSpace(last.text("#live")); got != "live updates unavailable, refresh to update" {
		t.Errorf("the refused page says %q", got)
	}
	last.screenshot("live-unavailable-1280", false)
}
