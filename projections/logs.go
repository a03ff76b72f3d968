// Log lines: buffered in chunks, written with hand-made JSON, and read back.

package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/piperun/piperun/domain"
)

// logChunk is lines first .. first+n-1 of one log of a run: the lines of
// the log events in parts, one after the other.
type logChunk struct {
	runLog
	first, n int64
	parts    [][]string
}

// chunksPerInsert is how many log chunks one INSERT writes: 5 parameters
// each, well under SQLite's limit on parameters.
const chunksPerInsert = 100

// clearLogs deletes every log line of run, buffered ones included.
func (b *batchWriter) clearLogs(ctx context.Context, run string) error {
	kept := b.chunks[:0]
	for _, c := range b.chunks {
		if c.run != run {
			kept = append(kept, c)
		}
	}
	b.chunks = kept
	clear(b.open)
	for i, c := range b.chunks {
		b.open[c.runLog] = i
	}
	b.s.seqs[run] = &logSeqs{last: map[string]int64{}, complete: true}
	return b.exec(ctx, `DELETE FROM log_chunks WHERE run = ?`, run)
}

func (b *batchWriter) appendLines(ctx context.Context, run string, lw domain.LogWritten) error {
	if len(lw.Lines) == 0 {
		return nil
	}
	logs := b.s.seqs[run]
	if logs == nil {
		logs = &logSeqs{last: map[string]int64{}}
		b.s.seqs[run] = logs
	}
	key := runLog{run: run, log: lw.Log}
	if i, ok := b.open[key]; ok {
		// Lines of this log were buffered in this batch: these follow them.
		c := &b.chunks[i]
		c.parts = append(c.parts, lw.Lines)
		c.n += int64(len(lw.Lines))
		logs.last[lw.Log] = c.first + c.n - 1
		return nil
	}
	last, ok := logs.last[lw.Log]
	if !ok && !logs.complete {
		st, err := b.stmt(ctx, `SELECT COALESCE(MAX(first + n - 1), 0) FROM log_chunks WHERE run = ? AND log = ?`)
		if err != nil {
			return err
		}
		if err := st.QueryRowContext(ctx, run, lw.Log).Scan(&last); err != nil {
			return fmt.Errorf("read log %s of run %s: %w", lw.Log, run, err)
		}
	}
	b.open[key] = len(b.chunks)
	b.chunks = append(b.chunks, logChunk{runLog: key, first: last + 1, n: int64(len(lw.Lines)), parts: [][]string{lw.Lines}})
	logs.last[lw.Log] = last + int64(len(lw.Lines))
	return nil
}

// flushLines inserts the buffered log chunks, many per statement, in key
// order: the chunks of a run go to the same pages one after the other
// instead of to every active run's pages in turn. (OR FAIL: a failing
// statement fails the batch, so SQLite needs no statement journal to undo
// just that statement.)
func (b *batchWriter) flushLines(ctx context.Context) error {
	// A chunk per log: run and log order them.
	slices.SortFunc(b.chunks, func(x, y logChunk) int {
		if c := strings.Compare(x.run, y.run); c != 0 {
			return c
		}
		return strings.Compare(x.log, y.log)
	})
	for len(b.chunks) > 0 {
		n := min(len(b.chunks), chunksPerInsert)
		query := `INSERT OR FAIL INTO log_chunks (run, log, first, n, lines) VALUES (?, ?, ?, ?, ?)` + strings.Repeat(`, (?, ?, ?, ?, ?)`, n-1)
		args := make([]any, 0, 5*n)
		for _, c := range b.chunks[:n] {
			lines, err := linesJSON(c.parts...)
			if err != nil {
				return fmt.Errorf("encode log %s of run %s: %w", c.log, c.run, err)
			}
			args = append(args, c.run, c.log, c.first, c.n, lines)
		}
		if err := b.exec(ctx, query, args...); err != nil {
			c := b.chunks[0]
			return fmt.Errorf("write log %s of run %s: %w", c.log, c.run, err)
		}
		b.chunks = b.chunks[n:]
	}
	b.chunks = nil
	clear(b.open)
	return nil
}

// linesJSON returns json.Marshal of the lines of parts, one after the
// other, as a string ("null" for just a nil slice, as json.Marshal gives
// for one). Log lines are plain ASCII text as a rule, which it quotes as
// they are; the others go to json.Marshal one by one (encoding/json writes
// a []string's elements as it writes strings).
func linesJSON(parts ...[]string) (string, error) {
	if len(parts) == 1 && parts[0] == nil {
		return "null", nil
	}
	size := 2
	for _, lines := range parts {
		for _, l := range lines {
			size += len(l) + 3
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteByte('[')
	for _, lines := range parts {
		for _, l := range lines {
			if sb.Len() > 1 {
				sb.WriteByte(',')
			}
			if !plainJSON(l) {
				b, err := json.Marshal(l)
				if err != nil {
					return "", err
				}
				sb.Write(b)
				continue
			}
			sb.WriteByte('"')
			sb.WriteString(l)
			sb.WriteByte('"')
		}
	}
	sb.WriteByte(']')
	return sb.String(), nil
}

// plainJSON reports whether encoding/json writes s quoted as it is:
// printable ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte tells the bytes plainJSON accepts.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// LogLines returns the lines of one log of a run, from line number from
// (1-based) on.
func (s *Store) LogLines(ctx context.Context, run, log string, from int64) ([]string, error) {
	r, err := s.GetRunState(ctx, run)
	if err != nil {
		return nil, err
	}
	found := false
	for _, l := range r.Logs {
		found = found || l.Name == log
	}
	if !found {
		return nil, fmt.Errorf("log %q of run %q: %w", log, run, ErrNotFound)
	}
	return s.LogTail(ctx, run, log, from)
}

// LogTail returns the lines of one log of a run from line number from
// (1-based) on, without reading the run's state: a log the run does not
// have (yet) has no lines. It costs the lines it returns, not the run or
// the log before from, so that a live stream may ask on every change.
func (s *Store) LogTail(ctx context.Context, run, log string, from int64) ([]string, error) {
	// The chunk that holds line from is the last to start at or before it;
	// both lookups follow the primary key.
	rows, err := s.db.QueryContext(ctx, `SELECT first, lines FROM log_chunks WHERE run = ?1 AND log = ?2 AND first >= COALESCE(
		(SELECT MAX(first) FROM log_chunks WHERE run = ?1 AND log = ?2 AND first <= ?3), 0) ORDER BY first`, run, log, from)
	if err != nil {
		return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
	}
	defer rows.Close()
	lines := []string{}
	for rows.Next() {
		var first int64
		var text []byte
		if err := rows.Scan(&first, &text); err != nil {
			return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
		}
		var chunk []string
		if err := json.Unmarshal(text, &chunk); err != nil {
			return nil, fmt.Errorf("decode log %s of run %s: %w", log, run, err)
		}
		if skip := from - first; skip > 0 {
			chunk = chunk[min(skip, int64(len(chunk))):]
		}
		lines = append(lines, chunk...)
	}
	return lines, rows.Err()
}
