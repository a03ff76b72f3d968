package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// processWrites is the number of bytes this process has caused to be sent
// to the storage layer (write_bytes of /proc/self/io), or false where it
// cannot be read: on systems other than Linux, or without task I/O
// accounting. Linux counts a page of the page cache when a write makes it
// dirty, whether or not it reaches the disk yet, and not again while it
// stays dirty: a page written twice before the kernel writes it back
// counts once.
func processWrites() (int64, bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != "write_bytes" {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		return n, err == nil
	}
	return 0, false
}
