// Reading a wire client's answers: the status line, headers and body, plain or chunked.

package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
)

// readAnswer reads an answer to a request of method: its status line,
// headers and body, skipping interim (1xx) answers. keep says the
// connection may carry another request.
func (w *wireConn) readAnswer(method string) (code int, keep bool, err error) {
	for first := true; ; first = false {
		line, err := w.readLine()
		if err != nil {
			if first && errors.Is(err, io.EOF) || first && w.reused && isReset(err) {
				return 0, false, fmt.Errorf("%w (%v)", errNoAnswer, err)
			}
			return 0, false, fmt.Errorf("read the status line: %w", noEOF(err))
		}
		code, http10, err := parseStatusLine(line)
		if err != nil {
			return 0, false, err
		}
		h, err := w.readHeaders()
		if err != nil {
			return 0, false, err
		}
		if code == http.StatusSwitchingProtocols {
			return 0, false, errors.New("the server switched protocols (101), unasked")
		}
		if code < 200 { // interim: the answer follows
			continue
		}
		keep = !h.close && (!http10 || h.keepAlive)
		switch {
		case method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified:
		case h.chunked:
			if err := w.discardChunked(); err != nil {
				return 0, false, fmt.Errorf("read the chunked body of a %d answer: %w", code, err)
			}
			if h.length >= 0 { // both framings: do not trust the connection
				keep = false
			}
		case h.otherEncoding || h.length < 0: // the body ends with the connection
			if _, err := io.Copy(io.Discard, w.br); err != nil {
				return 0, false, fmt.Errorf("read the body of a %d answer: %w", code, err)
			}
			keep = false
		default:
			if err := w.discard(h.length); err != nil {
				return 0, false, fmt.Errorf("read the %d-byte body of a %d answer: %w", h.length, code, err)
			}
		}
		return code, keep, nil
	}
}

// isReset says err is the connection reset by the server.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// noEOF turns an end of the connection inside an answer into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (code int, http10 bool, err error) {
	proto, rest, _ := bytes.Cut(line, []byte{' '})
	if len(proto) != 8 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || (proto[7] != '0' && proto[7] != '1') ||
		len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	return code, proto[7] == '0', nil
}

// answerHead is what the load client needs of an answer's headers.
type answerHead struct {
	length int64 // Content-Length; -1: none
	// chunked: the last transfer coding is chunked; otherEncoding: there
	// are transfer codings and chunked is not the last.
	chunked, otherEncoding bool
	close, keepAlive       bool // Connection: close, keep-alive
}

func (w *wireConn) readHeaders() (answerHead, error) {
	h := answerHead{length: -1}
	for {
		line, err := w.readLine()
		if err != nil {
			return h, fmt.Errorf("read the headers: %w", noEOF(err))
		}
		if len(line) == 0 {
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 {
			return h, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := parseLength(value)
			if err != nil {
				return h, err
			}
			if h.length >= 0 && h.length != n {
				return h, fmt.Errorf("conflicting Content-Length headers (%d, %d)", h.length, n)
			}
			h.length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.Trim(value[i+1:], " \t")
			}
			h.chunked = asciiEqualFold(last, "chunked")
			h.otherEncoding = !h.chunked
		case asciiEqualFold(name, "Connection"):
			for tok := range bytes.SplitSeq(value, []byte{','}) {
				tok = bytes.Trim(tok, " \t")
				h.close = h.close || asciiEqualFold(tok, "close")
				h.keepAlive = h.keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
}

func parseLength(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("bad Content-Length %q", v)
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad Content-Length %q", v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// discardChunked reads a chunked body, its trailers included.
func (w *wireConn) discardChunked() error {
	for {
		line, err := w.readLine()
		if err != nil {
			return fmt.Errorf("chunk size: %w", noEOF(err))
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extensions
			line = line[:i]
		}
		size, err := parseHex(bytes.Trim(line, " \t"))
		if err != nil {
			return err
		}
		if size == 0 {
			for { // trailers, up to an empty line
				line, err := w.readLine()
				if err != nil {
					return fmt.Errorf("trailers: %w", noEOF(err))
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if err := w.discard(size); err != nil {
			return err
		}
		if line, err := w.readLine(); err != nil || len(line) != 0 {
			if err == nil {
				err = fmt.Errorf("%q after a chunk, want CRLF", line)
			}
			return fmt.Errorf("end of chunk: %w", noEOF(err))
		}
	}
}

func parseHex(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 15 {
		return 0, fmt.Errorf("bad chunk size %q", v)
	}
	var n int64
	for _, c := range v {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("bad chunk size %q", v)
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

// discard skips n bytes of the answer.
func (w *wireConn) discard(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := w.br.Discard(k)
		n -= int64(d)
		if err != nil {
			return noEOF(err)
		}
	}
	return nil
}

// readLine reads a line of the answer's head, without its CRLF (or LF).
// The line is valid until the next read.
func (w *wireConn) readLine() ([]byte, error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("a line of the answer's head is longer than %d bytes", wireBufSize)
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// asciiEqualFold compares a header's name or token with s, ignoring ASCII
// case, without allocating.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
