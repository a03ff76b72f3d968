//go:build unix

package faults

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/vastdata"
)

// badCatalogueImages copies epochs 01 and 02 of the VAST test data into a
// new images directory, with a second copy of epoch 02 ("epoch92") whose
// selavy catalogue has its first row's ra_deg_cont set to NaN: the input
// that crashed the server (association's neighbour distances indexed -1).
func badCatalogueImages(t *testing.T) string {
	t.Helper()
	src := filepath.Join(vastdata.VASTDir(t), "data")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string, edit func(string) string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if edit != nil {
			text = edit(text)
		}
		if err := os.WriteFile(filepath.Join(data, to), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []string{"01", "02"} {
		for _, suffix := range []string{".fits", ".meanMap.fits", ".noiseMap.fits", ".selavy.components.txt"} {
			copyFile("epoch"+e+suffix, "epoch"+e+suffix, nil)
		}
	}
	for _, suffix := range []string{".fits", ".meanMap.fits", ".noiseMap.fits"} {
		copyFile("epoch02"+suffix, "epoch92"+suffix, nil)
	}
	copyFile("epoch02.selavy.components.txt", "epoch92.selavy.components.txt", func(text string) string {
		lines := strings.Split(text, "\n")
		header := strings.Fields(strings.TrimPrefix(lines[0], "#"))
		col := -1
		for i, h := range header {
			if h == "ra_deg_cont" {
				col = i
			}
		}
		if col < 0 {
			t.Fatal("the selavy catalogue has no ra_deg_cont column")
		}
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" {
				continue
			}
			f := strings.Fields(l)
			f[col] = "nan"
			lines[i] = "   " + strings.Join(f, " ")
			break
		}
		return strings.Join(lines, "\n")
	})
	return dir
}

// TestJobPanicLeavesServerUp runs the real server on a catalogue row at RA
// NaN: the job ends in Error with the reason in its log, the process stays
// up and serving, and another run processes as usual before and after.
// While the pipeline panics on that input, the reason is the panic, with
// the stack in the server's log.
func TestJobPanicLeavesServerUp(t *testing.T) {
	c := newClusterOn(t, t.TempDir(), badCatalogueImages(t))
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "good", "config": vastConfig("01", "02")}, nil)
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "nan", "config": vastConfig("01", "92")}, nil)
	c.process("good")

	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/nan/process", map[string]bool{}, nil)
	v := c.settled("nan", 60*time.Second)
	if v.Status != "Error" {
		t.Fatalf("the run with a NaN position ended %s, want Error", v.Status)
	}
	select {
	case <-c.srv.done:
		t.Fatalf("the server exited (%v)", c.srv.cmd.ProcessState)
	default:
	}

	var reason string
	for _, e := range c.events("nan") {
		if e.Type == "run.processing_failed.v1" {
			var f struct {
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(e.Data, &f); err != nil {
				t.Fatal(err)
			}
			reason = f.Reason
		}
	}
	if reason == "" {
		t.Fatal("the run's job ended with no reason")
	}
	logs := c.runLogs("nan")
	if !strings.Contains(logs, "ERROR Processing failed: ") {
		t.Fatalf("the run's log does not give the failure:\n%s", logs)
	}
	if strings.Contains(reason, "panicked") {
		if !strings.Contains(reason, "index out of range") || !strings.Contains(logs, "index out of range") {
			t.Fatalf("the reason %q or the log does not give the panic:\n%s", reason, logs)
		}
		if srvLog := c.srv.logText(); !strings.Contains(srvLog, "panicked") || !strings.Contains(srvLog, "goroutine ") {
			t.Fatalf("the server's log has no stack of the panic:\n%s", lastLines(srvLog, 40))
		}
	} else {
		t.Logf("the pipeline no longer panics on this input: %s", reason)
	}

	// The server goes on: the good run is processed again, a new run too.
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/good/process", map[string]bool{"full_rerun": true}, nil)
	if v := c.settled("good", 60*time.Second); v.Status != "Completed" {
		t.Fatalf("the good run processed again ended %s", v.Status)
	}
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "after", "config": vastConfig("01", "02")}, nil)
	c.process("after")
	c.audit("nan")

	// A restart does not run the failed job again.
	c.srv.stop()
	c.start()
	if v := c.settled("nan", 30*time.Second); v.Status != "Error" {
		t.Fatalf("after a restart the run is %s", v.Status)
	}
}

// runLogs is the text of every log of the run.
func (c *cluster) runLogs(name string) string {
	c.t.Helper()
	var out struct {
		Logs []struct {
			Name string `json:"name"`
		} `json:"logs"`
	}
	c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/logs", nil, &out)
	var b strings.Builder
	for _, l := range out.Logs {
		b.Write(c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name+"/logs/"+l.Name, nil, nil))
	}
	return b.String()
}
