package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// speedBenchmarks are the `piperun bench` subcommands that measure the
// service itself (see the bench package), by name.
var speedBenchmarks = map[string]func(e *env, args []string) error{
	"http":        cmdBenchHTTP,
	"restore":     cmdBenchRestore,
	"projections": cmdBenchProjections,
	"forced":      cmdBenchForced,
}

// positiveInt reads an integer flag that must be at least 1.
func positiveInt(fs *flag.FlagSet, name string) (int, error) {
	v, err := strconv.Atoi(fs.Lookup(name).Value.String())
	if err != nil || v < 1 {
		return 0, usagef("--%s must be a whole number of at least 1", name)
	}
	return v, nil
}

// positiveDuration reads a duration flag that must be above zero.
func positiveDuration(fs *flag.FlagSet, name string) (time.Duration, error) {
	d, err := time.ParseDuration(fs.Lookup(name).Value.String())
	if err != nil || d <= 0 {
		return 0, usagef("--%s must be a positive duration such as 10s", name)
	}
	return d, nil
}

// parseCounts reads a comma-separated list of counts, each an integer or
// a power of ten written 1e7.
func parseCounts(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v < 1 || v > 1e12 || v != float64(int64(v)) {
			return nil, fmt.Errorf("%q is not a whole number of at least 1", f)
		}
		out = append(out, int64(v))
	}
	return out, nil
}
