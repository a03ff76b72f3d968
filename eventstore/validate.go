package eventstore

import (
	"errors"
	"fmt"
)

// ValidateAppend reports an Append whose arguments no adapter may accept:
// an empty stream name, an expected version below AnyVersion, no events, or
// an event without ID or Type. Adapters call it first so that they all refuse
// the same calls.
func ValidateAppend(stream string, expected int64, events []EventData) error {
	if stream == "" {
		return errors.New("append: empty stream name")
	}
	if expected < AnyVersion {
		return fmt.Errorf("append to %q: invalid expected version %d", stream, expected)
	}
	if len(events) == 0 {
		return fmt.Errorf("append to %q: no events", stream)
	}
	for i, e := range events {
		if e.ID == "" {
			return fmt.Errorf("append to %q: event %d has no id", stream, i)
		}
		if e.Type == "" {
			return fmt.Errorf("append to %q: event %s has no type", stream, e.ID)
		}
	}
	return nil
}
