// Recovering panics in handlers and jobs, and telling where they happened.

package workers

import (
	"fmt"
	"path"
	"runtime"
	"runtime/debug"
	"strings"
)

// recovering runs f, and returns a panic in it as an error (logged with
// its stack), so that one run's pending work cannot stop the others'.
func (w *Workers) recovering(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = w.panicked(what, v)
		}
	}()
	return f()
}

// panicked logs a recovered panic with its stack to the server's log, and
// returns it as an error that says what panicked, with the panic's value
// and where it happened: what the run's log shows. It must be called from
// the deferred function that recovered v.
func (w *Workers) panicked(what string, v any) error {
	at := panicLocation()
	w.Logger.Error(what+" panicked", "panic", v, "at", at, "stack", string(debug.Stack()))
	return fmt.Errorf("%s panicked: %v (at %s)", what, v, at)
}

// panicLocation returns the function, file and line that panicked, for a
// deferred function that recovered the panic: the first frame after the
// runtime's panic machinery.
func panicLocation() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			fn := f.Function
			if i := strings.LastIndex(fn, "/"); i >= 0 {
				fn = fn[i+1:]
			}
			return fmt.Sprintf("%s, %s:%d", fn, path.Base(f.File), f.Line)
		}
		if !more {
			return "unknown location"
		}
	}
}
