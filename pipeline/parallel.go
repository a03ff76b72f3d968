package pipeline

import (
	"cmp"
	"context"
	"errors"
	"sync"
)

// forEachBounded calls fn(ctx, i) for i in [0, n), at most limit at once,
// starting them in index order. After a failure it starts no more and
// cancels the ctx the others were given; it returns the error of the
// lowest index that failed (so that the same inputs give the same error),
// or the parent ctx's error.
func forEachBounded(parent context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	limit = max(1, limit)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	errs := make([]error, n)
	slots := make(chan struct{}, limit)
	failed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-failed:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || isClosed(failed) {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if errs[i] = fn(ctx, i); errs[i] != nil {
				once.Do(func() { close(failed); cancel() })
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	// A call that stopped because another failed reports the cancellation:
	// the failure itself is the error.
	var stopped error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			stopped = cmp.Or(stopped, err)
		default:
			return err
		}
	}
	return stopped
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// lockedLogger serialises the calls of goroutines reading images
// concurrently, since a Logger is called by one goroutine at a time.
type lockedLogger struct {
	mu  sync.Mutex
	log Logger
}

func (l *lockedLogger) Debugf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Debugf(format, args...)
}

func (l *lockedLogger) Infof(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Infof(format, args...)
}

func (l *lockedLogger) Warnf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Warnf(format, args...)
}
