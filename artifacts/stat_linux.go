package artifacts

import (
	"os"
	"syscall"
)

// stateOf returns the stamped part of a file's stat.
func stateOf(fi os.FileInfo) (fileState, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileState{}, false
	}
	return fileState{
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		ino:   st.Ino,
		dev:   uint64(st.Dev), // uint32 on some architectures
	}, true
}
