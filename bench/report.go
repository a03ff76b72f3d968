package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Latencies collects the durations of one kind of operation and the
// outcomes (HTTP status or error class) they had. It is safe for
// concurrent use.
type Latencies struct {
	mu       sync.Mutex
	d        []time.Duration
	outcomes map[string]int
}

// Add records one operation.
func (l *Latencies) Add(d time.Duration, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	if l.outcomes == nil {
		l.outcomes = map[string]int{}
	}
	l.outcomes[outcome]++
}

// Summary is what a Latencies holds, in figures.
type Summary struct {
	Count              int
	Outcomes           map[string]int
	P50, P90, P99, Max time.Duration
	Mean               time.Duration
}

// Summary returns the count, outcomes and percentiles (nearest rank).
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	d := slices.Clone(l.d)
	out := make(map[string]int, len(l.outcomes))
	for k, v := range l.outcomes {
		out[k] = v
	}
	l.mu.Unlock()
	s := Summary{Count: len(d), Outcomes: out}
	if len(d) == 0 {
		return s
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	s.P50, s.P90, s.P99, s.Max = rank(0.50), rank(0.90), rank(0.99), d[len(d)-1]
	s.Mean = sum / time.Duration(len(d))
	return s
}

// outcomeList formats outcomes as "202:1000 409:3", sorted.
func outcomeList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// ms formats a duration in milliseconds with enough digits for
// sub-millisecond figures.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// writeTable prints rows under a header, columns aligned.
func writeTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == len(cells)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
}
