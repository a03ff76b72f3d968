package artifacts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// ErrLocation means a store location is neither a directory, a file:// URL
// nor a supported bucket URL.
var ErrLocation = errors.New("invalid artifact store location")

// Location is a parsed store location (see Open).
type Location struct {
	// Dir is the local directory, for a local store.
	Dir string
	// Bucket is the bucket URL, for a store in object storage.
	Bucket *url.URL
}

// String returns the location without any credentials it holds.
func (l Location) String() string {
	if l.Bucket != nil {
		return l.Bucket.Redacted()
	}
	return l.Dir
}

// ParseLocation parses a store location without opening it:
//   - a directory path, or a file:// URL: the local store (New);
//   - s3://BUCKET?endpoint=URL&region=REGION&use_path_style=true: a bucket
//     of S3 or an S3-compatible service (MinIO, Ceph), in gocloud.dev's
//     s3blob URL syntax; a prefix=DIR/ parameter keeps the store under a
//     prefix of the bucket. Credentials come from the environment
//     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the other sources
//     of the AWS SDK, never from the URL.
//
// The error wraps ErrLocation.
func ParseLocation(location string) (Location, error) {
	if location == "" {
		return Location{}, fmt.Errorf("%w: empty", ErrLocation)
	}
	if !strings.Contains(location, "://") {
		return Location{Dir: location}, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		// url's message quotes the whole URL, which may hold a password.
		return Location{}, fmt.Errorf("%w: not a URL", ErrLocation)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("%w %s: a file:// URL names a local directory (file:///path)", ErrLocation, u.Redacted())
		}
		if u.Path == "" {
			return Location{}, fmt.Errorf("%w %s: no directory", ErrLocation, u.Redacted())
		}
		return Location{Dir: u.Path}, nil
	case s3blob.Scheme:
		if u.Host == "" {
			return Location{}, fmt.Errorf("%w %s: no bucket (s3://BUCKET?endpoint=...)", ErrLocation, u.Redacted())
		}
		if u.User != nil {
			return Location{}, fmt.Errorf("%w %s: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrLocation, u.Redacted())
		}
		if u.Path != "" && u.Path != "/" {
			return Location{}, fmt.Errorf("%w %s: a path after the bucket is not supported; use prefix=DIR/", ErrLocation, u.Redacted())
		}
		return Location{Bucket: u}, nil
	}
	return Location{}, fmt.Errorf("%w %s: unsupported scheme %q (want a directory, file:///DIR or s3://BUCKET)", ErrLocation, u.Redacted(), u.Scheme)
}

// openTimeout bounds the check that a bucket answers when a store opens.
const openTimeout = 30 * time.Second

// Open opens the store at location (see ParseLocation): a local store is
// created if needed, as New does; a bucket must exist and answer, or Open
// fails, so that a wrong URL or credentials are noticed at start rather
// than at the first product.
func Open(ctx context.Context, location string) (*Store, error) {
	loc, err := ParseLocation(location)
	if err != nil {
		return nil, err
	}
	if loc.Bucket == nil {
		return New(loc.Dir)
	}
	where := loc.String()
	opener := &blob.URLMux{}
	opener.RegisterBucket(s3blob.Scheme, &s3blob.URLOpener{})
	b, err := opener.OpenBucket(ctx, loc.Bucket.String())
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", where, err)
	}
	cctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ok, err := b.IsAccessible(cctx)
	if err == nil && !ok {
		err = errors.New("the bucket does not exist")
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open artifact store %s: %w", where, err)
	}
	s := &Store{now: time.Now, location: where}
	s.remote = &bucketStore{bucket: b, where: where, hashes: &s.hashes}
	return s, nil
}

// Location returns where the store keeps its artifacts, without
// credentials: its directory or its bucket's URL.
func (s *Store) Location() string {
	if s.remote != nil {
		return s.location
	}
	return s.dir
}

// Close releases the store's connections. A local store holds none.
func (s *Store) Close() error {
	if s.remote == nil {
		return nil
	}
	if err := s.remote.bucket.Close(); err != nil {
		return fmt.Errorf("close artifact store %s: %w", s.location, err)
	}
	return nil
}
