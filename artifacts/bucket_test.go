package artifacts

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/artifacts/artifactstest"
)

// TestBucketVerifyTrustsTheMetadataOfPut: Verify of an object Put wrote
// reads its attributes only; VerifyContent reads it all.
func TestBucketVerifyTrustsTheMetadataOfPut(t *testing.T) {
	s, _ := newBucketStore(t)
	d, n := put(t, s, "a large product, in spirit")
	for range 3 {
		if err := s.Verify(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.hashes.Load(); got != 0 {
		t.Fatalf("Verify of an object with Put's metadata read it %d times, want 0", got)
	}
	if err := s.VerifyContent(context.Background(), d, n); err != nil {
		t.Fatal(err)
	}
	if got := s.hashes.Load(); got != 1 {
		t.Fatalf("VerifyContent hashed %d times, want 1", got)
	}
	// What the metadata cannot see: bytes changed under it, at the same
	// size. The scrub can.
	overwrite(t, s, d, bytes.ToUpper([]byte("a large product, in spirit")), true)
	if err := s.Verify(context.Background(), d, n); err != nil {
		t.Fatalf("Verify = %v: the metadata alone was expected to be trusted", err)
	}
	if err := s.VerifyContent(context.Background(), d, n); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyContent of changed bytes = %v, want ErrCorrupt", err)
	}
}

// TestBucketVerifyChecksTheMetadata damages an object's metadata, or
// replaces the object with one written by another tool.
func TestBucketVerifyChecksTheMetadata(t *testing.T) {
	content := []byte("measurements of epoch 01")
	d := Digest(content)
	key, _ := objectKey(d)
	other := Digest([]byte("another product"))
	tests := []struct {
		name       string
		content    []byte
		meta       map[string]string
		want       error
		wantHashes int64
	}{
		{name: "another digest's metadata", content: content, meta: map[string]string{metaSHA256: other[len(prefix):], metaSize: "24"}, want: ErrCorrupt},
		{name: "size metadata disagrees", content: content, meta: map[string]string{metaSHA256: d[len(prefix):], metaSize: "23"}, want: ErrCorrupt},
		{name: "size metadata missing", content: content, meta: map[string]string{metaSHA256: d[len(prefix):]}, want: ErrCorrupt},
		{name: "no metadata, whole", content: content, want: nil, wantHashes: 1},
		{name: "no metadata, other bytes", content: bytes.ToUpper(content), want: ErrCorrupt, wantHashes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newBucketStore(t) // empty: nothing to merge metadata with
			writeRaw(t, s, key, tt.content, tt.meta)
			err := s.Verify(context.Background(), d, int64(len(content)))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), d) {
				t.Errorf("error %q does not name the digest", err)
			}
			if got := s.hashes.Load(); got != tt.wantHashes {
				t.Fatalf("Verify hashed %d times, want %d", got, tt.wantHashes)
			}
		})
	}
}

func TestBucketWalkLeavesOtherObjectsAlone(t *testing.T) {
	s, _ := newBucketStore(t)
	d, _ := put(t, s, "ours")
	for _, key := range []string{"sha256/zz/not-a-digest", "sha256/" + d[len(prefix):], "elsewhere/file", "sha256"} {
		writeRaw(t, s, key, []byte("not ours"), nil)
	}
	var listed []string
	if err := s.Walk(context.Background(), func(e Entry) error {
		listed = append(listed, e.Digest)
		if e.Temp != "" {
			t.Errorf("Walk listed a temporary %q", e.Temp)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, []string{d}) {
		t.Fatalf("Walk listed %v, want only %s", listed, d)
	}
	if _, err := s.DeleteIfUnchanged(Entry{Digest: d, Info: nil}); err == nil {
		t.Fatal("DeleteIfUnchanged accepted an entry its Walk did not give")
	}
}

func TestBucketPrefixKeepsTheStoreUnderIt(t *testing.T) {
	srv := artifactstest.NewS3(t)
	s, err := Open(context.Background(), srv.URL+"&prefix=piperun/")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, n := put(t, s, "under a prefix")
	whole, err := Open(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	key, _ := objectKey(d)
	if got := stored(t, whole); !slices.Equal(got, []string{"piperun/" + key}) {
		t.Fatalf("bucket holds %v, want piperun/%s", got, key)
	}
	if err := s.Verify(context.Background(), d, n); err != nil {
		t.Fatal(err)
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in      string
		dir     string
		bucket  string
		wantErr string
	}{
		{in: "/srv/piperun/artifacts", dir: "/srv/piperun/artifacts"},
		{in: "relative/artifacts", dir: "relative/artifacts"},
		{in: "file:///srv/piperun/artifacts", dir: "/srv/piperun/artifacts"},
		{in: "file://localhost/srv/a", dir: "/srv/a"},
		{in: "s3://products?endpoint=http://minio:9000&region=us-east-1&use_path_style=true", bucket: "products"},
		{in: "", wantErr: "empty"},
		{in: "file://host/srv/a", wantErr: "local directory"},
		{in: "file://", wantErr: "no directory"},
		{in: "s3://", wantErr: "no bucket"},
		{in: "s3://products/sub/dir", wantErr: "prefix="},
		{in: "s3://key:s3cr3t@products", wantErr: "credentials"},
		{in: "gs://products", wantErr: `unsupported scheme "gs"`},
		{in: "s3://products\x7f", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			loc, err := ParseLocation(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrLocation) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseLocation = %v, want ErrLocation saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.Dir != tt.dir || (loc.Bucket == nil) != (tt.bucket == "") || (loc.Bucket != nil && loc.Bucket.Host != tt.bucket) {
				t.Fatalf("ParseLocation = %+v, want dir %q bucket %q", loc, tt.dir, tt.bucket)
			}
		})
	}
}

func TestOpenRefusesBadBuckets(t *testing.T) {
	srv := artifactstest.NewS3(t)
	tests := []struct {
		name, url, want string
	}{
		{name: "no such bucket", url: strings.Replace(srv.URL, srv.Bucket, "no-such-bucket", 1), want: "does not exist"},
		{name: "unknown parameter", url: srv.URL + "&colour=blue", want: "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestOpenLocalLocations(t *testing.T) {
	dir := t.TempDir()
	for _, loc := range []string{dir + "/a", "file://" + dir + "/b"} {
		s, err := Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		if s.remote != nil || s.Dir() == "" || s.Location() != s.Dir() {
			t.Fatalf("Open(%s) = a store at %q (dir %q), want a local one", loc, s.Location(), s.Dir())
		}
		put(t, s, "local")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
