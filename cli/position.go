package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/piperun/piperun/apitypes"
)

// EnvStateDir is where the client commands remember, per server, the
// global log position of the last command they sent (default: piperun/
// under the user's cache directory).
const EnvStateDir = "PIPERUN_STATE_DIR"

// positionFile remembers, between invocations, the highest log position a
// server's answers reported, so that a command sees what the commands
// before it did, even when the server is several API replicas behind one
// address and another replica than theirs serves it (the position is sent
// as apitypes.MinPositionHeader; see client.Client). Losing the file loses only
// that guarantee, so it is written without syncing and its errors are
// ignored.
type positionFile struct{ path string }

// positionFileFor returns the position file of server under dir ("" for
// the user's cache directory); nil if there is no such directory.
func positionFileFor(dir, server string) *positionFile {
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil
		}
		dir = filepath.Join(cache, "piperun")
	}
	sum := sha256.Sum256([]byte(strings.TrimRight(server, "/")))
	return &positionFile{path: filepath.Join(dir, "position-"+hex.EncodeToString(sum[:8]))}
}

// load returns the remembered position (0 if none or unreadable).
func (p *positionFile) load() int64 {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(p.path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// save remembers pos if it is higher than the remembered one. The new
// value is written to a temporary file renamed over the old, so that a
// reader never sees half of it.
func (p *positionFile) save(pos int64) {
	if p == nil || pos <= p.load() {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p.path), ".position-*")
	if err != nil {
		return
	}
	_, werr := f.WriteString(strconv.FormatInt(pos, 10) + "\n")
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if err := os.Rename(f.Name(), p.path); err != nil {
		os.Remove(f.Name())
	}
}

// positionSaver is an http.RoundTripper that saves the position of every
// answer that reports one to its file.
type positionSaver struct {
	next http.RoundTripper
	file *positionFile
}

// RoundTrip implements http.RoundTripper.
func (t positionSaver) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if v := resp.Header.Get(apitypes.PositionHeader); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			t.file.save(n)
		}
	}
	return resp, nil
}
