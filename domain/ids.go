package domain

import "strings"

// ShortID shortens a job, request or event ID for display. IDs are UUIDv7,
// whose leading digits are a millisecond clock: two IDs made within the
// same minute share their first eight hex digits. The last twelve are
// random, so they tell any two IDs apart. Anything that is not a UUID is
// returned as it is.
func ShortID(id string) string {
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		return id
	}
	return id[24:]
}
