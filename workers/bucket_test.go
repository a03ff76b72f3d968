package workers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/artifacts/artifactstest"
	"github.com/piperun/piperun/domain"
)

// newBucketEnv is newEnv with the products in an S3 bucket (an
// S3-compatible server on 127.0.0.1, reached through the AWS SDK). It also
// returns the bucket, opened apart from the store, to damage it behind the
// store's back.
func newBucketEnv(t *testing.T) (*env, *blob.Bucket) {
	t.Helper()
	ctx := context.Background()
	srv := artifactstest.NewS3(t)
	e := newEnvWith(t, func(string) *artifacts.Store {
		arts, err := artifacts.Open(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { arts.Close() })
		return arts
	})
	mux := &blob.URLMux{}
	mux.RegisterBucket(s3blob.Scheme, &s3blob.URLOpener{})
	raw, err := mux.OpenBucket(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return e, raw
}

// objectKey is where a bucket store keeps digest's content.
func objectKey(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	return "sha256/" + h[:2] + "/" + h[2:]
}

// TestProductsInABucketAndTheRestoreVerifiesThem processes a run whose
// products go to an S3 bucket, adds an image (which keeps the first
// products as the backup), then damages a backup object in the bucket,
// behind the store's back, in each way the restore must notice: it fails,
// saying why, and keeps the backup; repaired, the restore succeeds.
func TestProductsInABucketAndTheRestoreVerifiesThem(t *testing.T) {
	e, raw := newBucketEnv(t)
	ctx := context.Background()
	const run = "bucket"
	if e.arts.Dir() != "" {
		t.Fatalf("a bucket store has the directory %q", e.arts.Dir())
	}
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	first := e.load(run)
	if first.Status != domain.StatusCompleted || len(first.Products.Artifacts) == 0 {
		t.Fatalf("after processing: %s with %d products", first.Status, len(first.Products.Artifacts))
	}
	// Every product is an object of the bucket, with its size and digest
	// in its metadata.
	for _, a := range first.Products.Artifacts {
		attrs, err := raw.Attributes(ctx, objectKey(a.Digest))
		if err != nil {
			t.Fatalf("product %s: %v", a.Name, err)
		}
		if attrs.Size != a.Size || "sha256:"+attrs.Metadata["sha256"] != a.Digest {
			t.Fatalf("product %s: object of %d bytes with metadata %v, want %d bytes of %s", a.Name, attrs.Size, attrs.Metadata, a.Size, a.Digest)
		}
	}

	if _, err := e.svc.UpdateConfig(ctx, run, e.config(4), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, true, false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup == nil {
		t.Fatalf("after adding an image: %s, backup %v", r.Status, r.Backup != nil)
	}

	// The products the addition replaced are the ones only the backup
	// holds: damaging one of those is what a restore must notice.
	current := map[string]bool{}
	for _, a := range e.load(run).Products.Artifacts {
		current[a.Digest] = true
	}
	var victim domain.Artifact
	for _, a := range first.Products.Artifacts {
		if !current[a.Digest] {
			victim = a
			break
		}
	}
	if victim.Digest == "" {
		t.Fatal("the addition kept every product: nothing only the backup holds")
	}
	key := objectKey(victim.Digest)
	original, err := raw.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, content []byte, meta map[string]string) {
		// S3 replaces the metadata with a PUT's; the test server merges
		// it, so the object goes first.
		if err := raw.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			t.Fatal(err)
		}
		if err := raw.WriteAll(ctx, key, content, &blob.WriterOptions{ContentType: "application/octet-stream", Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	// Other bytes of the same size: only reading the object can tell.
	damaged := bytes.Clone(original)
	damaged[len(damaged)/2] ^= 0xff
	tests := []struct {
		name   string
		damage func(t *testing.T)
		want   string
	}{
		{name: "missing", want: artifacts.ErrMissing.Error(), damage: func(t *testing.T) {
			if err := raw.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "other bytes of the same size, no metadata", want: artifacts.ErrCorrupt.Error(), damage: func(t *testing.T) {
			write(t, damaged, nil)
		}},
		{name: "metadata of other content", want: artifacts.ErrCorrupt.Error(), damage: func(t *testing.T) {
			write(t, original, map[string]string{"sha256": strings.Repeat("0", 64), "size": "1"})
		}},
		{name: "truncated", want: artifacts.ErrCorrupt.Error(), damage: func(t *testing.T) {
			write(t, original[:len(original)/2], nil)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.damage(t)
			if _, err := e.svc.RequestRestore(ctx, run, false, alice); err != nil {
				t.Fatal(err)
			}
			e.deliver(e.w, e.lastMessage(run, domain.TypeRestoreRequested))
			r := e.load(run)
			if r.Status != domain.StatusCompleted || r.Backup == nil || e.count(run, domain.TypeRestoreFailed) != i+1 {
				t.Fatalf("after a restore of a damaged backup: %s, backup %v, %d failures", r.Status, r.Backup != nil, e.count(run, domain.TypeRestoreFailed))
			}
			if reason := e.lastRestoreFailure(run); !strings.Contains(reason, tt.want) || !strings.Contains(reason, victim.Digest) {
				t.Fatalf("restore failed for %q, want %q about %s", reason, tt.want, victim.Digest)
			}
		})
	}

	// Stored again through the store, the backup is whole.
	if _, _, err := e.arts.Put(ctx, strings.NewReader(string(original))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestRestore(ctx, run, false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeRestoreRequested))
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup != nil || e.count(run, domain.TypeRunRestored) != 1 {
		t.Fatalf("after restoring a whole backup: %s, backup %v, %d restores", r.Status, r.Backup != nil, e.count(run, domain.TypeRunRestored))
	}
	if !equalArtifacts(e.load(run).Products.Artifacts, first.Products.Artifacts) {
		t.Fatal("the restore did not bring back the first products")
	}
	rc, err := e.arts.Open(victim.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(original) {
		t.Fatalf("restored product reads %d bytes (%v), want the %d stored", len(got), err, len(original))
	}
}

// lastRestoreFailure is the reason of the run's newest RestoreFailed.
func (e *env) lastRestoreFailure(run string) string {
	e.t.Helper()
	evs := e.stream(run)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == domain.TypeRestoreFailed {
			var f domain.RestoreFailed
			if err := json.Unmarshal(evs[i].Data, &f); err != nil {
				e.t.Fatal(err)
			}
			return f.Reason
		}
	}
	e.t.Fatalf("run %s has no restore failure", run)
	return ""
}
