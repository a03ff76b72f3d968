// Package artifacts is a content-addressed store of immutable product files
// on local disk. A file is named by the SHA-256 of its bytes, so storing the
// same content twice keeps one copy, a manifest of digests is enough to
// describe a run's products, and a backup copies nothing.
package artifacts
