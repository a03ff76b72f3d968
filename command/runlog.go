package command

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
)

// RunLog collects the lines of one of a run's log files, formatted as the
// VAST pipeline writes them ("2006-01-02 15:04:05,000 LEVEL message"), and
// appends them to the run's stream in batches. Debug lines are kept only
// when the log was opened with debug on.
type RunLog struct {
	svc   *Service
	run   string
	name  string
	kind  domain.LogKind
	debug bool

	mu      sync.Mutex
	pending []string
}

// NewRunLog returns a log writer for log name of run.
func (s *Service) NewRunLog(run, name string, kind domain.LogKind, debug bool) *RunLog {
	return &RunLog{svc: s, run: run, name: name, kind: kind, debug: debug}
}

func (l *RunLog) add(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// One event line per log line: embedded newlines would forge lines.
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r", " "), "\n", " | ")
	ts := l.svc.Now().UTC()
	line := fmt.Sprintf("%s,%03d %s %s", ts.Format("2006-01-02 15:04:05"), ts.Nanosecond()/int(time.Millisecond), level, msg)
	l.mu.Lock()
	l.pending = append(l.pending, line)
	l.mu.Unlock()
}

// Debugf logs a debug line (kept only in debug mode).
func (l *RunLog) Debugf(format string, args ...any) {
	if l.debug {
		l.add("DEBUG", format, args...)
	}
}

// Infof logs an info line.
func (l *RunLog) Infof(format string, args ...any) { l.add("INFO", format, args...) }

// Warnf logs a warning line.
func (l *RunLog) Warnf(format string, args ...any) { l.add("WARNING", format, args...) }

// Errorf logs an error line.
func (l *RunLog) Errorf(format string, args ...any) { l.add("ERROR", format, args...) }

// Pending returns the number of lines not yet written.
func (l *RunLog) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// Take removes and returns the pending lines as an event (nil if none), so
// a caller can append them atomically with its outcome.
func (l *RunLog) Take() []domain.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil
	}
	ev := domain.LogWritten{Log: l.name, Kind: l.kind, Lines: l.pending}
	l.pending = nil
	return []domain.Event{ev}
}

// Flush appends the pending lines to the run's stream.
func (l *RunLog) Flush(ctx context.Context, actor string) error {
	evs := l.Take()
	if evs == nil {
		return nil
	}
	_, err := l.svc.ExecRun(ctx, l.run, actor, func(r *domain.Run) ([]domain.Event, error) {
		if !r.Exists() {
			return nil, nil
		}
		return evs, nil
	})
	if err != nil {
		// Put the lines back so that a later flush writes them.
		l.mu.Lock()
		l.pending = append(evs[0].(domain.LogWritten).Lines, l.pending...)
		l.mu.Unlock()
		return fmt.Errorf("write log %s of run %s: %w", l.name, l.run, err)
	}
	return nil
}
