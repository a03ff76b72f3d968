package messaging

import "fmt"

// PublishError is what a Publisher returns when some of the messages of
// one Publish call were not stored: Failed lists them, in order, and every
// other message of the call was stored. A publisher that returns any
// other error stored none of the messages, or cannot say which.
type PublishError struct {
	Failed []PublishFailure
}

// PublishFailure is one message a publisher did not store.
type PublishFailure struct {
	// Index is the message's index in the Publish call.
	Index int
	Err   error
	// Permanent says that publishing the message again cannot succeed
	// (it is too large, or invalid); otherwise it may (a broker is down).
	Permanent bool
}

func (e *PublishError) Error() string {
	if len(e.Failed) == 0 {
		return "publish: no message failed"
	}
	return fmt.Sprintf("%d of the messages were not published, the first (index %d) because: %v", len(e.Failed), e.Failed[0].Index, e.Failed[0].Err)
}

// Unwrap returns the failures' errors.
func (e *PublishError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}
