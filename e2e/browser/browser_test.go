package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/wiring"
)

// The shared browser, started by TestMain.
var (
	browserCtx context.Context
	browserErr error
	artifacts  string
)

// The shared server, started by the first test that needs it.
var (
	srvOnce sync.Once
	srv     *instance
	srvErr  error
	srvStop = func() {}
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if artifacts, err = artifactsDir(); err != nil {
			fmt.Fprintln(os.Stderr, "browser tests:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "browser tests: screenshots and server log in %s\n", artifacts)
		profile, err := os.MkdirTemp("", "piperun-chromium-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "browser tests:", err)
			return 1
		}
		defer os.RemoveAll(profile)
		var stop func()
		browserCtx, stop, browserErr = startBrowser(profile)
		defer stop()
		defer func() { srvStop() }()
		return m.Run()
	}()
	os.Exit(code)
}

// artifactsDir is $PIPERUN_ARTIFACTS, or test-artifacts/browser at the
// module root (kept out of git).
func artifactsDir() (string, error) {
	dir := os.Getenv("PIPERUN_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				return "", errors.New("no go.mod above " + wd)
			}
			root = parent
		}
		dir = filepath.Join(root, "test-artifacts", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifacts folder: %w", err)
	}
	return filepath.Abs(dir)
}

// chromiumPath finds Debian's Chromium ($CHROMIUM overrides).
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not installed (apt-get install -y chromium)")
}

func startBrowser(profile string) (context.Context, func(), error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, func() {}, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); cancelAlloc() }
	// Start the browser now, on a context without a timeout: a timeout on
	// the first run would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("start %s: %w", path, err)
	}
	return ctx, stop, nil
}

// needBrowser skips the test when there is no browser, or fails it on CI.
func needBrowser(t *testing.T) {
	t.Helper()
	if browserErr == nil {
		return
	}
	msg := "browser tests need Debian's Chromium: " + browserErr.Error()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// instance is the piperun server under test.
type instance struct {
	url    string
	tokens map[string]string
}

// server starts (once) a real piperun over the VAST data, with alice and
// bob (not administrators) and root (administrator).
func sharedServer(t *testing.T) *instance {
	t.Helper()
	imagesDir := vastdata.VASTDir(t) // holds data/epoch0N.*
	srvOnce.Do(func() { srv, srvErr = startServer(imagesDir) })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv
}

func startServer(imagesDir string) (*instance, error) {
	ctx, cancel := context.WithCancel(context.Background())
	dataDir, err := os.MkdirTemp("", "piperun-browser-data-")
	if err != nil {
		cancel()
		return nil, err
	}
	inst := &instance{tokens: map[string]string{}}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		tok, err := wiring.AddUser(ctx, wiring.Storage{DataDir: dataDir}, u.name, u.admin)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("add user %s: %w", u.name, err)
		}
		inst.tokens[u.name] = tok
	}
	logFile, err := os.Create(filepath.Join(artifacts, "server.log"))
	if err != nil {
		cancel()
		return nil, err
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- wiring.Run(ctx, wiring.Config{
			DataDir: dataDir, Addr: "127.0.0.1:0", ImagesDir: imagesDir, Workers: true,
			Poll: 50 * time.Millisecond, Stdout: io.Discard, Ready: ready, MaxStreamsPerUser: streamsPerUser,
			Logger: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}()
	srvStop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "browser tests: the server did not stop within 30s")
		}
		logFile.Close()
		os.RemoveAll(dataDir)
	}
	select {
	case addr := <-ready:
		inst.url = "http://" + addr
		return inst, nil
	case err := <-done:
		return nil, fmt.Errorf("server did not start: %w", err)
	case <-time.After(60 * time.Second):
		return nil, errors.New("server did not start within 60s")
	}
}

// tab is a browser tab in a browser context of its own (its own cookies).
// It records the page's uncaught exceptions, Content Security Policy
// violations and failed loads of the pages' own scripts and styles, which
// fail the test, and dismisses (and records) any JavaScript dialog.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string

	mu       sync.Mutex
	problems []string
	dialogs  []string
}

func newTab(t *testing.T, inst *instance) *tab {
	t.Helper()
	needBrowser(t)
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, url: inst.url}
	dialogs := make(chan string, 8)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			tb.problem("uncaught exception: " + ev.ExceptionDetails.Text + " " + describe(ev.ExceptionDetails.Exception))
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			if e.Source == cdplog.EntrySourceSecurity || (e.Level == cdplog.EntryLevelError && strings.Contains(e.URL, "/static/")) {
				tb.problem(fmt.Sprintf("%s %s: %s %s", e.Source, e.Level, e.Text, e.URL))
			}
		case *page.EventJavascriptDialogOpening:
			select {
			case dialogs <- ev.Message:
			default:
			}
		}
	}); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	go func() {
		for {
			select {
			case msg := <-dialogs:
				tb.mu.Lock()
				tb.dialogs = append(tb.dialogs, msg)
				tb.mu.Unlock()
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			case <-ctx.Done():
				return
			}
		}
	}()
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("in the page: %s", p)
		}
	})
	return tb
}

func (tb *tab) problem(p string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = append(tb.problems, p)
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

// do runs actions with a deadline.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds or the deadline
// passes. It evaluates through DevTools, which the pages' Content Security
// Policy (no eval) does not block, unlike chromedp.Poll.
func (tb *tab) waitFor(what, cond string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			tb.t.Fatalf("waited %s for %s (%s); last error: %v", timeout, what, cond, lastErr)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-tb.ctx.Done():
			tb.t.Fatalf("waiting for %s: %v", what, tb.ctx.Err())
		}
	}
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.url + path))
}

// screenshot saves the viewport (or the whole page) as a PNG under the
// artifacts folder.
func (tb *tab) screenshot(name string, wholePage bool) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if wholePage {
		shot = chromedp.FullScreenshot(100) // 100: PNG
	}
	b, err := chromedp.Run(ctx, shot)
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifacts, name+".png")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", p)
}

func (tb *tab) signIn(user, token string) {
	tb.t.Helper()
	tb.open("/")
	tb.do(
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("sign-in")),
	)
	tb.waitFor("the run list after signing in as "+user, `location.pathname === "/" && document.getElementById("current-user") !== null`, 15*time.Second)
	if got := strings.TrimSpace(tb.text("#current-user")); !strings.HasPrefix(got, user) {
		tb.t.Fatalf("signed in as %q, want %s", got, user)
	}
}

// configFor is a basic-association configuration over the VAST epochs,
// with paths relative to the images folder (the data folder's parent).
func configFor(epochs ...string) string {
	var img, sel, noise, bg strings.Builder
	for _, e := range epochs {
		fmt.Fprintf(&img, "  - data/epoch%s.fits\n", e)
		fmt.Fprintf(&sel, "  - data/epoch%s.selavy.components.txt\n", e)
		fmt.Fprintf(&noise, "  - data/epoch%s.noiseMap.fits\n", e)
		fmt.Fprintf(&bg, "  - data/epoch%s.meanMap.fits\n", e)
	}
	return "run:\n  suppress_astropy_warnings: true\ninputs:\n  image:\n" + img.String() + "  selavy:\n" + sel.String() +
		"  noise:\n" + noise.String() + "  background:\n" + bg.String() +
		"source_monitoring:\n  monitor: false\nsource_association:\n  method: basic\n  radius: 10.0\nnew_sources:\n  min_sigma: 5.0\n" +
		"measurements:\n  source_finder: selavy\n  flux_fractional_error: 0.0\n  condon_errors: true\n  selavy_local_rms_fill_value: 0.2\n" +
		"  ra_uncertainty: 1\n  dec_uncertainty: 1\nvariability:\n  source_aggregate_pair_metrics_min_abs_vs: 4.3\n"
}

// createRun fills in the "New run" form and waits for the detail page.
func (tb *tab) createRun(name, description, config string) {
	tb.t.Helper()
	tb.open("/")
	tb.do(
		chromedp.Click(chromedp.ID("new-run-link")),
		chromedp.WaitVisible(chromedp.ID("run-name")),
		chromedp.SendKeys(chromedp.ID("run-name"), name),
		chromedp.SendKeys(chromedp.ID("run-description"), description),
		chromedp.SetValue(chromedp.ID("run-config"), config),
		chromedp.Click(chromedp.ID("create-run")),
	)
	tb.waitFor("the detail page of "+name, fmt.Sprintf(`location.pathname === %q && document.getElementById("run-status") !== null`, "/runs/"+name), 15*time.Second)
}

func status(tb *tab) string { return strings.TrimSpace(tb.text("#run-status")) }

// waitStatus waits until the page's badge shows want, failing at once if
// it shows Error instead.
func (tb *tab) waitStatus(want string, timeout time.Duration) {
	tb.t.Helper()
	tb.waitFor("status "+want, fmt.Sprintf(`["%s", "Error"].includes(document.getElementById("run-status").textContent.trim())`, want), timeout)
	if got := status(tb); got != want {
		tb.t.Fatalf("the run is %s, want %s; server log: %s", got, want, filepath.Join(artifacts, "server.log"))
	}
}

func figure(tb *tab, name string) string {
	return strings.TrimSpace(tb.text(`[data-fig="` + name + `"]`))
}

// schedule opens the process modal and schedules a run.
func (tb *tab) schedule(debug bool) {
	tb.t.Helper()
	tb.do(
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".notice").forEach(n => n.remove())`),
		chromedp.Click(chromedp.ID("process-button")),
		chromedp.WaitVisible(chromedp.ID("schedule-run")),
	)
	if debug {
		tb.do(chromedp.Click(chromedp.CSS(`label:has(#process-debug)`)))
	}
	tb.do(chromedp.Click(chromedp.ID("schedule-run")))
	tb.waitFor("a notification", `document.querySelector(".notice") !== null`, 15*time.Second)
	if n := tb.text(".notice"); !strings.Contains(n, "Run scheduled") {
		tb.t.Fatalf("notification %q, want Run scheduled", n)
	}
}

// rounds counts the test functions' runs, so that a repeated run
// (go test -count=N) on the shared server uses new run names.
var rounds atomic.Int64

// fresh returns name, suffixed after the first round.
func fresh(name string) string {
	if n := rounds.Add(1); n > 1 {
		return fmt.Sprintf("%s-%d", name, n)
	}
	return name
}

// TestRestoreFromTheDetailPage follows the story: processing,
// adding an image, another user's view, the restore and its log.
func TestRestoreFromTheDetailPage(t *testing.T) {
	needBrowser(t)
	inst := sharedServer(t)
	runName := fresh("vast-restore")
	alice := newTab(t, inst)

	// A step that stops (t.Fatal) stops the story, since the later steps
	// build on it; one that only reports errors lets it go on.
	step := func(name string, f func(t *testing.T)) {
		finished := false
		t.Run(name, func(t *testing.T) {
			f(t)
			finished = true
		})
		if !finished {
			t.FailNow()
		}
	}

	step("1 create, process, add epoch 04, process again", func(t *testing.T) {
		alice.t = t
		alice.signIn("alice", inst.tokens["alice"])
		alice.createRun(runName, "VAST basic association, epochs 01-03", configFor("01", "02", "03"))
		if got := status(alice); got != "Initialised" {
			t.Fatalf("a new run is %s", got)
		}
		if got := strings.TrimSpace(alice.text("#process-button")); got != "Process Run" {
			t.Errorf("process button reads %q", got)
		}
		alice.schedule(false)
		alice.waitStatus("Completed", 3*time.Minute)
		if got := figure(alice, "n_images"); got != "3" {
			t.Fatalf("images after the first run: %s, want 3", got)
		}
		if n := figure(alice, "n_sources"); n == "0" {
			t.Error("the page shows 0 sources after processing epochs 01-03 (the figures come from the pipeline's products)")
		}
		if eval[bool](alice, `document.getElementById("restore-button").hidden`) != true {
			t.Error("Restore Run is shown before any image was added")
		}

		// Edit the configuration: validate (the plan shows beside it), save.
		alice.do(
			chromedp.Click(chromedp.ID("config-edit-button")),
			chromedp.WaitVisible(chromedp.ID("config-text")),
			chromedp.SetValue(chromedp.ID("config-text"), strings.Replace(configFor("01", "02", "03", "04"), "radius: 10.0", "radius: -3", 1)),
			chromedp.Click(chromedp.ID("config-save")),
		)
		alice.waitFor("the problems beside the editor", `!document.getElementById("config-problems").hidden && document.getElementById("config-problems").textContent.includes("Problems")`, 15*time.Second)
		if p := alice.text("#config-problems"); !strings.Contains(p, "source_association.radius") || !strings.Contains(p, "line ") {
			t.Errorf("problems beside the editor: %q; want the field and its line", p)
		}
		alice.do(chromedp.ScrollIntoView(chromedp.ID("config-card")))
		alice.screenshot("config-problems-1280", false)
		alice.do(
			chromedp.SetValue(chromedp.ID("config-text"), configFor("01", "02", "03", "04")),
			chromedp.Click(chromedp.ID("config-validate")),
		)
		alice.waitFor("the validation's plan", `document.getElementById("config-problems").textContent.includes("epoch04.fits")`, 15*time.Second)
		alice.do(chromedp.Click(chromedp.ID("config-save")))
		alice.waitFor("the saved configuration", `!document.getElementById("config-view").hidden && document.getElementById("config-view").textContent.includes("epoch04.fits")`, 15*time.Second)

		if got := strings.TrimSpace(alice.text("#process-button")); got != "Add Images or Re-Process Run" {
			t.Errorf("process button reads %q", got)
		}
		alice.schedule(false)
		alice.waitStatus("Completed", 3*time.Minute)
		alice.waitFor("4 images", `document.querySelector('[data-fig="n_images"]').textContent.trim() === "4"`, 15*time.Second)
		alice.waitFor("the Restore Run button", `!document.getElementById("restore-button").hidden`, 15*time.Second)
		alice.screenshot("detail-page-1280", true)
	})

	step("4 another user sees no Restore Run and is refused", func(t *testing.T) {
		bob := newTab(t, inst)
		bob.signIn("bob", inst.tokens["bob"])
		bob.open("/runs/" + runName)
		bob.do(chromedp.WaitVisible(chromedp.ID("run-status")))
		if status(bob) != "Completed" {
			t.Fatalf("bob sees the run %s", status(bob))
		}
		if eval[bool](bob, `document.getElementById("restore-button") !== null || document.getElementById("process-button") !== null`) {
			t.Error("bob, neither creator nor admin, is offered the run's actions")
		}
		forced := eval[map[string]any](bob, `fetch("/api/v1/runs/`+runName+`/restore", {
			method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content},
			body: JSON.stringify({debug: true})
		}).then(async r => ({status: r.status, body: await r.json()}))`)
		if code, _ := forced["status"].(float64); code != http.StatusForbidden {
			t.Errorf("forced restore by bob: %v, want 403", forced)
		}
		if body, _ := forced["body"].(map[string]any); !strings.Contains(fmt.Sprint(body["error"]), "creator") {
			t.Errorf("refusal %v does not say why", forced["body"])
		}
		bob.waitFor("the run still Completed", `document.getElementById("run-status").textContent.trim() === "Completed"`, 5*time.Second)
	})

	step("2 restore from the modal, live to Completed", func(t *testing.T) {
		alice.t = t
		alice.open("/runs/" + runName)
		alice.do(chromedp.WaitVisible(chromedp.ID("restore-button")))
		alice.waitFor("the live stream", `document.getElementById("live").classList.contains("on")`, 15*time.Second)
		// Mark the document (a reload would lose the mark) and record every
		// status the badge shows.
		alice.do(chromedp.Evaluate[chromedp.Void](`(() => {
			window.__sameDocument = true;
			window.__statuses = [document.getElementById("run-status").textContent.trim()];
			new MutationObserver(() => {
				const s = document.getElementById("run-status").textContent.trim();
				if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
			}).observe(document.getElementById("run-status"), {childList: true, characterData: true, subtree: true});
			document.querySelectorAll(".notice").forEach(n => n.remove());
		})()`))
		alice.do(chromedp.Click(chromedp.ID("restore-button")), chromedp.WaitVisible(chromedp.ID("restore-dialog")))
		alice.waitFor("the previous configuration", `!document.getElementById("restore-submit").disabled`, 15*time.Second)
		prev := alice.text("#restore-config")
		if !strings.Contains(prev, "data/epoch03.fits") || strings.Contains(prev, "epoch04") {
			t.Fatalf("the modal shows:\n%s\nwant the epochs 01-03 configuration without epoch 04", prev)
		}
		alice.do(chromedp.Click(chromedp.CSS(`label:has(#restore-debug)`)))
		if !eval[bool](alice, `document.getElementById("restore-debug").checked`) {
			t.Fatal("Debug Log Output did not turn on")
		}
		alice.screenshot("restore-modal-1280", false)
		alice.do(chromedp.Click(chromedp.ID("restore-submit")))
		alice.waitFor("the notification", `document.querySelector(".notice") !== null`, 15*time.Second)
		if n := alice.text(".notice"); !strings.Contains(n, "Restore request accepted") {
			t.Fatalf("notification %q", n)
		}
		alice.waitStatus("Completed", 2*time.Minute)
		statuses := eval[[]string](alice, `window.__statuses`)
		if i := indexOf(statuses, "Restoring"); i < 0 || indexOf(statuses[i:], "Completed") < 0 {
			t.Errorf("the badge showed %v; want Restoring and then Completed", statuses)
		}
		if !eval[bool](alice, `window.__sameDocument === true`) {
			t.Error("the page was reloaded")
		}
		alice.waitFor("3 images again", `document.querySelector('[data-fig="n_images"]').textContent.trim() === "3"`, 15*time.Second)
		if !eval[bool](alice, `document.getElementById("restore-button").hidden`) {
			t.Error("Restore Run is still offered after the backup was used")
		}
		if v := alice.text("#config-view"); strings.Contains(v, "epoch04") {
			t.Error("the configuration still lists epoch 04 after the restore")
		}
	})

	step("3 the restore log has DEBUG lines", func(t *testing.T) {
		alice.t = t
		alice.open("/runs/" + runName)
		sel := `#log-list button[data-log$="_restore_log.txt"]`
		alice.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
		alice.waitFor("DEBUG lines in the restore log", `document.getElementById("log-title").textContent.endsWith("_restore_log.txt") && / DEBUG /.test(document.getElementById("log-text").textContent)`, 15*time.Second)
		alice.screenshot("restore-log-1280", true)

		// The same page at phone width.
		alice.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		alice.open("/runs/" + runName)
		alice.do(chromedp.WaitVisible(chromedp.ID("run-status")))
		if w := eval[float64](alice, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %vpx wide at phone width: it scrolls sideways", w)
		}
		alice.screenshot("detail-page-phone", true)
		alice.do(chromedp.EmulateViewport(1280, 900))
	})

	alice.t = t
	alice.open("/runs/" + runName + "/history")
	alice.do(chromedp.WaitVisible(chromedp.ID("timeline-table")))
	if a := alice.text("#audit"); !strings.Contains(a, "Audit passed") {
		t.Errorf("history audit: %s", a)
	}
	for _, want := range []string{"Processing requested", "Restore requested", "Run restored"} {
		if !strings.Contains(alice.text("#timeline-table"), want) {
			t.Errorf("history lacks %q", want)
		}
	}
	alice.screenshot("history-1280", true)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// TestEscapingAndCSRF: a description that is a script shows as text; a
// state change without the session's CSRF token, or from another site, is
// refused.
func TestEscapingAndCSRF(t *testing.T) {
	needBrowser(t)
	inst := sharedServer(t)
	alice := newTab(t, inst)
	alice.signIn("alice", inst.tokens["alice"])
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	xss := fresh("xss-check")
	alice.createRun(xss, evil, configFor("01"))

	t.Run("the description shows as text", func(t *testing.T) {
		alice.t = t
		if got := alice.text("#run-description"); got != evil {
			t.Errorf("detail page shows %q", got)
		}
		if eval[bool](alice, `document.querySelector("#run-description img, #run-description script") !== null`) {
			t.Error("the description became elements")
		}
		alice.open("/")
		alice.do(chromedp.WaitVisible(chromedp.ID("runs-table")))
		if got := alice.text(`tr[data-run="` + xss + `"] .desc`); got != evil {
			t.Errorf("run list shows %q", got)
		}
		alice.screenshot("runs-1280", true)
		alice.mu.Lock()
		defer alice.mu.Unlock()
		if len(alice.dialogs) > 0 {
			t.Errorf("the description ran as script: dialogs %q", alice.dialogs)
		}
	})

	t.Run("a state change without the CSRF token is refused", func(t *testing.T) {
		alice.t = t
		alice.open("/runs/" + xss)
		alice.do(chromedp.WaitVisible(chromedp.ID("run-status")))
		res := eval[map[string]any](alice, `fetch("/api/v1/runs/`+xss+`", {method: "DELETE", credentials: "same-origin"})
			.then(async r => ({status: r.status, body: await r.json()}))`)
		if code, _ := res["status"].(float64); code != http.StatusForbidden {
			t.Errorf("DELETE with the cookie and no token: %v, want 403", res)
		}
		if got := status(alice); got != "Initialised" {
			t.Errorf("the run is %s after a refused deletion", got)
		}
	})

	t.Run("a form posted from another site is refused", func(t *testing.T) {
		alice.t = t
		// The attacker's page is on another site (localhost, not
		// 127.0.0.1) and posts the "New run" form to piperun.
		target := inst.url + "/runs"
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s">
<input name="name" value="csrf-attack"><textarea name="config">%s</textarea></form>
<script>document.getElementById("f").submit()</script>`, target, configFor("01"))
		}))
		defer attacker.Close()
		u, _ := url.Parse(attacker.URL)
		alice.do(chromedp.Navigate("http://localhost:" + u.Port() + "/"))
		alice.waitFor("the answer to the forged form", `location.href.startsWith("`+inst.url+`") && document.readyState === "complete"`, 15*time.Second)
		if code := statusOf(t, inst, "alice", "/api/v1/runs/csrf-attack"); code != http.StatusNotFound {
			t.Errorf("the forged form created a run (GET answered %d)", code)
		}
	})
}

// statusOf GETs an API path with user's token.
func statusOf(t *testing.T, inst *instance, user, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, inst.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+inst.tokens[user])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
