// Package artifacts is a content-addressed store of immutable product
// files: in a local directory (the embedded mode's default) or in a bucket
// of an S3-compatible object store (the distributed mode, where processes
// share no disk). A file is named by the SHA-256 of its bytes, so storing
// the same content twice keeps one copy, a manifest of digests is enough
// to describe a run's products, and a backup copies nothing.
package artifacts
