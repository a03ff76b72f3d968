// Package testdata locates the shared VAST test data (real FITS images and
// selavy catalogues from the VAST pipeline's test suite) for tests.
//
// The data live outside the repository, in ../shared/testdata/vast relative
// to the module root (or to one of its ancestors, for a worktree nested
// deeper), and are never copied in. A test that needs them skips
// when they are missing, except under CI (the CI environment variable is
// set), where missing data is a failure: CI must not pass by skipping.
package vastdata
