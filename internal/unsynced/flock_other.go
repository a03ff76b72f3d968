//go:build !unix

package unsynced

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("flock not supported")

// flock is not available here: Open's guards say to sync.
func flock(*os.File, bool, bool) (bool, error) { return false, errUnsupported }
