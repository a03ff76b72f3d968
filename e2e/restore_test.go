package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/piperun/piperun/cli"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
)

// vastConfig returns a run configuration over epochs of the VAST data.
func vastConfig(epochs ...string) string { return testserver.VASTConfig("docs_example_run", epochs...) }

// catalogueRows counts the components of a selavy .txt catalogue.
func catalogueRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

var restoreLogName = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}_restore_log\.txt$`)

// TestRestoreScenario drives the scenario of the VAST pipeline's restore
// documentation over HTTP against a real server on the VAST test data.
func TestRestoreScenario(t *testing.T) {
	vast := vastdata.VASTDir(t)
	in := startServer(t, vast)
	const name = "docs_example_run"
	rows := func(epochs ...string) int {
		n := 0
		for _, e := range epochs {
			n += catalogueRows(t, filepath.Join(vast, "data", "epoch"+e+".selavy.components.txt"))
		}
		return n
	}

	// Bad input first: none of it may create or corrupt anything.
	in.must(http.StatusUnauthorized, "", http.MethodGet, "/api/v1/runs", nil, nil)
	raw := in.must(http.StatusBadRequest, "alice", http.MethodPost, "/api/v1/runs",
		map[string]string{"name": "bad name!", "config": vastConfig("01")}, nil)
	if msg := errorOf(t, raw); !strings.Contains(msg, "run name") {
		t.Errorf("bad name error does not say what is wrong: %s", msg)
	}
	raw = in.must(http.StatusBadRequest, "alice", http.MethodPost, "/api/v1/runs",
		map[string]string{"name": "escape", "config": strings.ReplaceAll(vastConfig("01"), "data/epoch01.fits", "../../etc/passwd")}, nil)
	if msg := errorOf(t, raw); !strings.Contains(msg, "inputs.image") {
		t.Errorf("path traversal error does not name the field: %s", msg)
	}
	in.must(http.StatusBadRequest, "alice", http.MethodPost, "/api/v1/runs", "{not json", nil)
	in.must(http.StatusNotFound, "alice", http.MethodGet, "/api/v1/runs/nope", nil, nil)

	// 3. Create the run over epochs 01-03 and process it.
	in.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs",
		map[string]string{"name": name, "description": "restore docs example", "config": vastConfig("01", "02", "03")}, nil)
	in.must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs",
		map[string]string{"name": name, "config": vastConfig("01")}, nil)
	if v := in.run(name); v.Status != "Initialised" || v.Owner != "alice" {
		t.Fatalf("new run: status %s owner %s", v.Status, v.Owner)
	}
	raw = in.must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{"debug": false}, nil)
	if msg := errorOf(t, raw); !strings.Contains(msg, "Completed or Error") {
		t.Errorf("restore of a new run: %s", msg)
	}
	in.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{"debug": false}, nil)
	in.must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{}, nil)
	first := in.waitStatus(name, nil, "Completed", "Error")
	if first.Status != "Completed" {
		t.Fatalf("first processing ended %s; log:\n%s", first.Status, in.logText(name, first.Logs[0].Name))
	}
	if first.NImages != 3 || first.NSelavyMeasurements != rows("01", "02", "03") || first.NSources == 0 {
		t.Fatalf("after first run: %d images, %d measurements, %d sources; want 3, %d, some",
			first.NImages, first.NSelavyMeasurements, first.NSources, rows("01", "02", "03"))
	}
	preAdditionVersion := first.Version
	checkProducts(t, in, name, first)
	var preview struct {
		Available bool   `json:"available"`
		Config    string `json:"config"`
	}
	in.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/restore", nil, &preview)
	if preview.Available {
		t.Fatal("restore available before any addition")
	}

	// 4. Add epoch 04: only inputs change; this is add mode and takes the backup.
	raw = in.must(http.StatusBadRequest, "alice", http.MethodPut, "/api/v1/runs/"+name+"/config",
		map[string]string{"config": strings.ReplaceAll(vastConfig("01", "02", "03", "04"), "radius: 10.0", "radius: -1")}, nil)
	if msg := errorOf(t, raw); !strings.Contains(msg, "source_association.radius") {
		t.Errorf("invalid config error does not name the setting: %s", msg)
	}
	in.must(http.StatusForbidden, "bob", http.MethodPut, "/api/v1/runs/"+name+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	in.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+name+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	var proc struct {
		Mode string `json:"mode"`
	}
	in.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{"debug": true}, &proc)
	if proc.Mode != "add" {
		t.Fatalf("processing after adding epoch 04 is in %q mode, want add", proc.Mode)
	}
	added := in.waitStatus(name, nil, "Completed", "Error")
	if added.Status != "Completed" || added.NImages != 4 || added.NSelavyMeasurements != rows("01", "02", "03", "04") {
		t.Fatalf("after addition: %s, %d images, %d measurements", added.Status, added.NImages, added.NSelavyMeasurements)
	}
	if !added.RestoreAvailable {
		t.Fatal("restore not available after an addition")
	}

	// 5. The restore preview is the previous successful configuration.
	in.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/restore", nil, &preview)
	if !preview.Available || !strings.Contains(preview.Config, "epoch03.fits") || strings.Contains(preview.Config, "epoch04") {
		t.Fatalf("restore preview: available %v, config:\n%s", preview.Available, preview.Config)
	}

	// 6. Someone who is neither the creator nor an admin is refused.
	raw = in.must(http.StatusForbidden, "bob", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{"debug": false}, nil)
	errorOf(t, raw)

	// A restore whose backup was tampered with fails, puts the status back
	// and says why in the restore log; nothing of the run changes.
	victim := first.Products[0]
	path := filepath.Join(in.dataDir, "artifacts", "sha256", victim.Digest[7:9], victim.Digest[9:])
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("backup artifact %s not where the artifact store keeps it: %v", victim.Name, err)
	}
	if err := os.WriteFile(path, append([]byte("tampered"), original...), 0o644); err != nil {
		t.Fatal(err)
	}
	in.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{"debug": false}, nil)
	failed := in.waitStatus(name, nil, "Completed", "Error")
	if failed.Status != "Completed" || failed.NImages != 4 || !failed.RestoreAvailable || failed.Version == added.Version {
		t.Fatalf("after failed restore: %s, %d images, restore available %v", failed.Status, failed.NImages, failed.RestoreAvailable)
	}
	if !equalJSON(t, failed.Products, added.Products) || failed.Config != added.Config {
		t.Fatal("a failed restore changed the run's products or configuration")
	}
	failLog := in.logText(name, failed.Logs[0].Name)
	if !restoreLogName.MatchString(failed.Logs[0].Name) || !strings.Contains(failLog, "ERROR Restore failed") || !strings.Contains(failLog, victim.Name) {
		t.Fatalf("failed restore log %s does not give the reason:\n%s", failed.Logs[0].Name, failLog)
	}
	if strings.Contains(failLog, " DEBUG ") {
		t.Errorf("restore log without debug has DEBUG lines:\n%s", failLog)
	}
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}

	// 20 simultaneous restore requests: exactly one is accepted.
	codes := make([]int, 20)
	bodies := make([][]byte, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = in.do("alice", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{"debug": true}, nil)
		}()
	}
	wg.Wait()
	accepted := 0
	for i, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
			var ack struct {
				Status string `json:"status"`
				Log    string `json:"log"`
			}
			if err := json.Unmarshal(bodies[i], &ack); err != nil || ack.Status != "Restoring" || !restoreLogName.MatchString(ack.Log) {
				t.Errorf("accepted restore answered %s; want status Restoring and the restore log's name", bodies[i])
			}
		case http.StatusConflict:
			errorOf(t, bodies[i])
		default:
			t.Errorf("simultaneous restore got status %d", c)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of 20 simultaneous restores were accepted, want exactly 1 (codes %v)", accepted, codes)
	}
	seen := map[string]bool{}
	restored := in.waitStatus(name, seen, "Completed", "Error")
	if restored.Status != "Completed" || restored.NImages != first.NImages || restored.NSelavyMeasurements != first.NSelavyMeasurements || restored.NSources != first.NSources {
		t.Fatalf("after restore: %s, %d images, %d measurements; want Completed, %d, %d",
			restored.Status, restored.NImages, restored.NSelavyMeasurements, first.NImages, first.NSelavyMeasurements)
	}
	if !equalJSON(t, restored.Products, first.Products) || !equalJSON(t, restored.Images, first.Images) {
		t.Fatal("restored products are not the pre-addition ones")
	}
	if restored.RestoreAvailable {
		t.Fatal("restore still available after a restore: the backup must be used up")
	}
	restoreLog := restored.Logs[0]
	if restoreLog.Kind != "restore" || !restoreLogName.MatchString(restoreLog.Name) {
		t.Fatalf("newest log is %+v, want a <YYYY-MM-DD-HH-MM-SS>_restore_log.txt", restoreLog)
	}
	text := in.logText(name, restoreLog.Name)
	if !strings.Contains(text, " DEBUG ") || !strings.Contains(text, "INFO Restore complete") {
		t.Fatalf("debug restore log lacks DEBUG lines or the outcome:\n%s", text)
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR) `).MatchString(line) {
			t.Errorf("log line not in VAST's format: %q", line)
		}
	}

	// A second restore is refused until images are added again.
	raw = in.must(http.StatusConflict, "alice", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{}, nil)
	if msg := errorOf(t, raw); !strings.Contains(msg, "backup") {
		t.Errorf("second restore refusal does not mention the backup: %s", msg)
	}

	// The run as it was at the pre-addition version, replayed.
	var old runView
	in.must(http.StatusOK, "alice", http.MethodGet, fmt.Sprintf("/api/v1/runs/%s?version=%d", name, preAdditionVersion), nil, &old)
	if old.NImages != 3 || old.Status != "Completed" || old.Config != first.Config {
		t.Fatalf("run at version %d: %s with %d images", preAdditionVersion, old.Status, old.NImages)
	}
	in.must(http.StatusBadRequest, "alice", http.MethodGet, fmt.Sprintf("/api/v1/runs/%s?version=%d", name, restored.Version+100), nil, nil)

	// Add again (the run is back at 01-03, config included), then restore
	// with the CLI, as restorepiperun does.
	in.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+name+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	in.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{}, nil)
	if v := in.waitStatus(name, nil, "Completed", "Error"); v.Status != "Completed" || v.NImages != 4 {
		t.Fatalf("second addition: %s, %d images", v.Status, v.NImages)
	}
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), []string{"restorepiperun", name, "--no-confirm", "--debug", "--server", in.url, "--token", in.tokens["alice"]},
		strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("restorepiperun exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "epoch03.fits") || !strings.Contains(out.String(), "Restore complete") || !strings.Contains(out.String(), "DEBUG") {
		t.Errorf("restorepiperun did not show the configuration and the restore log:\n%s", out.String())
	}
	if v := in.run(name); v.Status != "Completed" || v.NImages != 3 {
		t.Fatalf("after CLI restore: %s with %d images", v.Status, v.NImages)
	}
	code = cli.Run(context.Background(), []string{"restorepiperun", name, "--no-confirm", "--server", in.url, "--token", in.tokens["alice"]},
		strings.NewReader(""), &out, &errOut)
	if code == 0 {
		t.Error("second CLI restore succeeded; the backup should be used up")
	}

	// An addition whose processing fails leaves the run in Error with its
	// backup, and the restore brings back the pre-addition run.
	badCfg := vastConfig("01", "02", "03", "-invalid")
	in.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+name+"/config", map[string]string{"config": badCfg}, nil)
	in.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+name+"/process", map[string]bool{}, nil)
	broken := in.waitStatus(name, nil, "Completed", "Error")
	if broken.Status != "Error" || !broken.RestoreAvailable {
		t.Fatalf("failed addition: status %s, restore available %v", broken.Status, broken.RestoreAvailable)
	}
	if log := in.logText(name, broken.Logs[0].Name); !strings.Contains(log, "epoch-invalid.selavy.components.txt") {
		t.Errorf("failed job's log does not name the bad catalogue:\n%s", log)
	}
	in.must(http.StatusAccepted, "root", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{}, nil)
	back := in.waitStatus(name, nil, "Completed", "Error")
	if back.Status != "Completed" || back.NImages != 3 || !equalJSON(t, back.Products, first.Products) {
		t.Fatalf("restore after failed addition: %s, %d images", back.Status, back.NImages)
	}

	// The whole history replays and audits clean.
	var events struct {
		Events []struct {
			Version int64           `json:"version"`
			Type    string          `json:"type"`
			Actor   string          `json:"actor"`
			Data    json.RawMessage `json:"data"`
		} `json:"events"`
	}
	in.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/events", nil, &events)
	var recs []domain.Recorded
	restores := 0
	for _, e := range events.Events {
		ev, err := eventjson.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == domain.TypeRunRestored {
			restores++
		}
		if e.Actor == "" {
			t.Errorf("event %d (%s) has no actor", e.Version, e.Type)
		}
		recs = append(recs, domain.Recorded{Version: e.Version, Event: ev})
	}
	if restores != 3 {
		t.Errorf("%d restores in the history, want 3", restores)
	}
	if findings := domain.Audit(recs); len(findings) > 0 {
		t.Fatalf("audit findings: %v", findings)
	}
	var auditOut bytes.Buffer
	if code := cli.Run(context.Background(), []string{"audit", name, "--server", in.url, "--token", in.tokens["alice"]}, strings.NewReader(""), &auditOut, &auditOut); code != 0 {
		t.Fatalf("piperun audit exited %d:\n%s", code, auditOut.String())
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// checkProducts downloads every product of the run and checks its bytes
// against the digest in the manifest.
func checkProducts(t *testing.T, in *instance, name string, v runView) {
	t.Helper()
	var list struct {
		Products []struct {
			Name   string `json:"name"`
			Digest string `json:"digest"`
		} `json:"products"`
	}
	in.must(http.StatusOK, "bob", http.MethodGet, "/api/v1/runs/"+name+"/products", nil, &list)
	if len(list.Products) == 0 || len(list.Products) != len(v.Products) {
		t.Fatalf("products list has %d entries, the run %d", len(list.Products), len(v.Products))
	}
	for _, p := range list.Products {
		raw := in.must(http.StatusOK, "bob", http.MethodGet, "/api/v1/runs/"+name+"/products/"+p.Name, nil, nil)
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != p.Digest {
			t.Errorf("product %s: downloaded %s, manifest says %s", p.Name, got, p.Digest)
		}
	}
	for _, bad := range []string{"../../events.db", "nope.parquet", "%2e%2e%2fevents.db"} {
		if code, _ := in.do("bob", http.MethodGet, "/api/v1/runs/"+name+"/products/"+bad, nil, nil); code != http.StatusNotFound {
			t.Errorf("product %q: status %d, want 404", bad, code)
		}
	}
}
