package artifacts

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
)

// BenchmarkVerify measures Verify (O(1): a stamp, or one HEAD request) and
// VerifyContent (a full read) of a 4 MiB artifact on each backend; the
// bucket is an S3-compatible server on 127.0.0.1 reached through the AWS
// SDK, so its figures are a round trip on loopback, not a network's.
func BenchmarkVerify(b *testing.B) {
	content := make([]byte, 4<<20)
	rand.Read(content)
	open := map[string]func(b *testing.B) *Store{
		"local": func(b *testing.B) *Store {
			s, err := New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"s3": func(b *testing.B) *Store { s, _ := newBucketStore(b); return s },
	}
	for _, name := range []string{"local", "s3"} {
		b.Run(name, func(b *testing.B) {
			s := open[name](b)
			d, n, err := s.Put(context.Background(), bytes.NewReader(content))
			if err != nil {
				b.Fatal(err)
			}
			b.Run("Verify", func(b *testing.B) {
				for b.Loop() {
					if err := s.Verify(context.Background(), d, n); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("VerifyContent", func(b *testing.B) {
				b.SetBytes(n)
				for b.Loop() {
					if err := s.VerifyContent(context.Background(), d, n); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
