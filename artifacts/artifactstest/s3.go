// Package artifactstest serves an S3-compatible object store in the test's
// own process (gofakes3 behind httptest, on 127.0.0.1), so that the tests
// of any package can run an artifacts.Store on a bucket through the real
// S3 client, as the Kafka tests use kfake.
package artifactstest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an S3-compatible server holding one bucket. This package does not
// import artifacts, so that artifacts' own tests can use it.
type S3 struct {
	// URL is the artifact store location of the bucket (see
	// artifacts.ParseLocation).
	URL string
	// Endpoint is the server's base URL.
	Endpoint string
	// Bucket is the bucket's name.
	Bucket string
	clock  *Clock
	hold   *hold
}

// hold keeps the GET requests whose path contains one of its substrings
// waiting until they are released.
type hold struct {
	mu      sync.Mutex
	waiting map[string]chan struct{} // by substring; closed on release
	held    chan string
}

func (h *hold) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			h.mu.Lock()
			var gate chan struct{}
			for sub, c := range h.waiting {
				if strings.Contains(r.URL.Path, sub) {
					gate = c
				}
			}
			h.mu.Unlock()
			if gate != nil {
				select {
				case h.held <- accessKey(r):
				default:
				}
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// accessKey is the access key id a signed request names.
func accessKey(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(cred, "/")
	return id
}

// Hold keeps every GET of an object whose key contains sub waiting until
// release is called (a reader thus blocks mid-work, as on a slow store).
// held receives the access key id of each request held, when nobody has
// taken the previous one: a test that gives each process its own key id
// learns which process is blocked.
func (s *S3) Hold(sub string) (held <-chan string, release func()) {
	gate := make(chan struct{})
	s.hold.mu.Lock()
	s.hold.waiting[sub] = gate
	s.hold.mu.Unlock()
	var once sync.Once
	return s.hold.held, func() {
		once.Do(func() {
			s.hold.mu.Lock()
			delete(s.hold.waiting, sub)
			s.hold.mu.Unlock()
			close(gate)
		})
	}
}

// Clock is the server's clock: the real time plus an offset that only
// grows.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the server's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Since returns the server's time elapsed since t.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Advance moves the server's clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// NewS3 starts a server with an empty bucket, stopped when the test ends,
// and sets the environment of the AWS SDK for it (test credentials, no
// shared configuration files, no instance metadata service): so t may not
// be parallel.
func NewS3(t testing.TB) *S3 {
	t.Helper()
	clock := &Clock{}
	backend := s3mem.New(s3mem.WithTimeSource(clock))
	const bucket = "piperun-artifacts"
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithTimeSource(clock), gofakes3.WithLogger(gofakes3.DiscardLog()))
	h := &hold{waiting: map[string]chan struct{}{}, held: make(chan string, 16)}
	srv := httptest.NewServer(h.wrap(faker.Server()))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "piperun-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "piperun-test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	q := url.Values{}
	q.Set("endpoint", srv.URL)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	return &S3{
		URL:      "s3://" + bucket + "?" + q.Encode(),
		Endpoint: srv.URL,
		Bucket:   bucket,
		clock:    clock,
		hold:     h,
	}
}

// Clock returns the server's clock, which stamps the objects'
// modification times.
func (s *S3) Clock() *Clock { return s.clock }
