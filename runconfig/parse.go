package runconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxSize is the largest configuration Parse accepts, in bytes. Real
// configurations are a few kilobytes even with thousands of images.
const MaxSize = 1 << 20

// Input list keys, in the order VAST's template writes them.
const (
	keyImage      = "image"
	keySelavy     = "selavy"
	keyNoise      = "noise"
	keyBackground = "background"
)

// Parse reads a VAST-format run configuration strictly: unknown keys, wrong
// types, missing inputs and out-of-range values are all reported, together,
// in a *ValidationError; malformed YAML is reported the same way. Omitted
// settings take VAST's defaults. Input paths come back cleaned and
// slash-separated; Parse rejects paths that are absolute or climb out of the
// images root, but only CheckPaths looks at the file system.
func Parse(text []byte) (c *Config, err error) {
	if len(text) > MaxSize {
		return nil, &ValidationError{Problems: []Problem{{
			Message: fmt.Sprintf("configuration is %d bytes, more than the limit of %d bytes (1 MiB)", len(text), MaxSize),
		}}}
	}
	root, err := decodeDocument(text)
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{{Message: err.Error()}}}
	}
	p := &parser{cfg: defaults(), lines: make(map[string]int)}
	p.cfg.text = string(text)
	p.document(root)
	// Report in document order, whatever order the checks ran in.
	slices.SortStableFunc(p.problems, func(a, b Problem) int { return sortLine(a.Line) - sortLine(b.Line) })
	if err := p.problems.err(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// sortLine puts problems without a line after the others.
func sortLine(line int) int {
	if line <= 0 {
		return math.MaxInt32
	}
	return line
}

// decodeDocument returns the single YAML document in text; its content is
// nil when the text holds no document at all.
func decodeDocument(text []byte) (root *yaml.Node, err error) {
	// yaml.v3 has panicked on hostile input in the past; Parse must not.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("invalid YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, fmt.Errorf("invalid YAML: more than one document (line %d); a configuration is a single document", extra.Line)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// parser walks the YAML node tree, filling cfg and collecting every problem
// rather than stopping at the first.
type parser struct {
	cfg      *Config
	problems problems
	// lines remembers where each setting was written, so that range
	// problems found after the walk still point at a line.
	lines map[string]int
}

func (p *parser) addf(field string, n *yaml.Node, format string, args ...any) {
	line := p.lines[field]
	if n != nil {
		line = n.Line
	}
	p.problems.add(field, line, format, args...)
}

// setter parses the value node of a key into a Config field; field is the
// key's dotted path, for problems.
type setter func(field string, n *yaml.Node)

type key struct {
	name string
	set  setter
}

func (p *parser) document(root *yaml.Node) {
	root = resolve(root)
	if root == nil || isNull(root) {
		p.addf("inputs", nil, "required: the configuration is empty")
		return
	}
	if root.Kind != yaml.MappingNode {
		p.addf("", root, "a configuration must be a YAML mapping of sections (run, inputs, ...), not %s", describe(root))
		return
	}
	c := p.cfg
	var inputsNode *yaml.Node
	sawInputs := false
	p.mapping("", root, []key{
		{"run", p.section([]key{
			{"path", p.str(&c.Run.Path)},
			{"suppress_astropy_warnings", p.bool(&c.Run.SuppressAstropyWarnings)},
		})},
		{"inputs", func(_ string, n *yaml.Node) { sawInputs, inputsNode = true, n }},
		{"source_monitoring", p.section([]key{
			{"monitor", p.bool(&c.SourceMonitoring.Monitor)},
			{"min_sigma", p.float(&c.SourceMonitoring.MinSigma)},
			{"edge_buffer_scale", p.float(&c.SourceMonitoring.EdgeBufferScale)},
			{"cluster_threshold", p.float(&c.SourceMonitoring.ClusterThreshold)},
			{"allow_nan", p.bool(&c.SourceMonitoring.AllowNaN)},
		})},
		{"source_association", p.section([]key{
			{"method", p.str(&c.SourceAssociation.Method)},
			{"radius", p.float(&c.SourceAssociation.Radius)},
			{"deruiter_radius", p.float(&c.SourceAssociation.DeRuiterRadius)},
			{"deruiter_beamwidth_limit", p.float(&c.SourceAssociation.DeRuiterBeamwidthLimit)},
			{"parallel", p.bool(&c.SourceAssociation.Parallel)},
			{"epoch_duplicate_radius", p.float(&c.SourceAssociation.EpochDuplicateRadius)},
		})},
		{"new_sources", p.section([]key{
			{"min_sigma", p.float(&c.NewSources.MinSigma)},
		})},
		{"measurements", p.section([]key{
			{"source_finder", p.str(&c.Measurements.SourceFinder)},
			{"flux_fractional_error", p.float(&c.Measurements.FluxFractionalError)},
			{"condon_errors", p.bool(&c.Measurements.CondonErrors)},
			{"selavy_local_rms_fill_value", p.float(&c.Measurements.SelavyLocalRMSFillValue)},
			{"write_arrow_files", p.bool(&c.Measurements.WriteArrowFiles)},
			{"ra_uncertainty", p.float(&c.Measurements.RAUncertainty)},
			{"dec_uncertainty", p.float(&c.Measurements.DecUncertainty)},
		})},
		{"variability", p.section([]key{
			{"pair_metrics", p.bool(&c.Variability.PairMetrics)},
			{"source_aggregate_pair_metrics_min_abs_vs", p.float(&c.Variability.SourceAggregatePairMetricsMinAbsVS)},
		})},
		{"processing", p.section([]key{
			{"num_workers", p.workers(&c.Processing.NumWorkers)},
			{"num_workers_io", p.workers(&c.Processing.NumWorkersIO)},
			{"max_partition_mb", p.int(&c.Processing.MaxPartitionMB)},
		})},
	})
	p.checkSettings()
	// Inputs last: whether background is required depends on
	// source_monitoring.monitor, wherever that section sits in the file.
	if !sawInputs {
		p.addf("inputs", root, "required: list the image, selavy and noise files")
		return
	}
	p.inputs("inputs", inputsNode)
}

// checkSettings applies VAST's range rules to the settings.
func (p *parser) checkSettings() {
	c := p.cfg
	methods := []string{MethodBasic, MethodAdvanced, MethodDeRuiter}
	if !slices.Contains(methods, c.SourceAssociation.Method) {
		p.addf("source_association.method", nil, "must be one of %s, not %q", strings.Join(methods, ", "), c.SourceAssociation.Method)
	}
	if c.Measurements.SourceFinder != SourceFinderSelavy {
		p.addf("measurements.source_finder", nil, "must be %q, the only source finder supported, not %q", SourceFinderSelavy, c.Measurements.SourceFinder)
	}
	positive := []struct {
		field string
		v     float64
	}{
		{"source_association.radius", c.SourceAssociation.Radius},
		{"source_association.deruiter_radius", c.SourceAssociation.DeRuiterRadius},
		{"source_association.deruiter_beamwidth_limit", c.SourceAssociation.DeRuiterBeamwidthLimit},
	}
	for _, s := range positive {
		if !(s.v > 0) {
			p.addf(s.field, nil, "must be greater than 0, not %v", s.v)
		}
	}
	nonNegative := []struct {
		field string
		v     float64
	}{
		{"source_monitoring.min_sigma", c.SourceMonitoring.MinSigma},
		{"source_monitoring.edge_buffer_scale", c.SourceMonitoring.EdgeBufferScale},
		{"source_monitoring.cluster_threshold", c.SourceMonitoring.ClusterThreshold},
		{"source_association.epoch_duplicate_radius", c.SourceAssociation.EpochDuplicateRadius},
		{"new_sources.min_sigma", c.NewSources.MinSigma},
		{"measurements.flux_fractional_error", c.Measurements.FluxFractionalError},
		{"measurements.selavy_local_rms_fill_value", c.Measurements.SelavyLocalRMSFillValue},
		{"measurements.ra_uncertainty", c.Measurements.RAUncertainty},
		{"measurements.dec_uncertainty", c.Measurements.DecUncertainty},
		{"variability.source_aggregate_pair_metrics_min_abs_vs", c.Variability.SourceAggregatePairMetricsMinAbsVS},
	}
	for _, s := range nonNegative {
		if !(s.v >= 0) {
			p.addf(s.field, nil, "must be 0 or more, not %v", s.v)
		}
	}
	if mb := c.Processing.MaxPartitionMB; mb < 1 {
		p.addf("processing.max_partition_mb", nil, "must be 1 or more, not %d", mb)
	}
}

// section parses a mapping of settings; a section left empty (null) keeps
// all its defaults, as when every line of it is commented out.
func (p *parser) section(keys []key) setter {
	return func(field string, n *yaml.Node) { p.mapping(field, n, keys) }
}

func (p *parser) mapping(field string, n *yaml.Node, keys []key) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf(field, n, "must be a mapping of settings, not %s", describe(n))
		return
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		name, ok := keyName(k)
		if !ok {
			p.addf(field, k, "keys must be plain names, not %s", describe(k))
			continue
		}
		sub := join(field, name)
		if seen[name] {
			p.addf(sub, k, "set more than once")
			continue
		}
		seen[name] = true
		i := slices.IndexFunc(keys, func(k key) bool { return k.name == name })
		if i < 0 {
			names := make([]string, len(keys))
			for j, k := range keys {
				names[j] = k.name
			}
			p.addf(sub, k, "unknown setting (allowed here: %s)", strings.Join(names, ", "))
			continue
		}
		keys[i].set(sub, v)
	}
}

func (p *parser) str(dst *string) setter {
	return func(field string, n *yaml.Node) {
		if s, ok := p.scalarString(field, n); ok {
			*dst = s
			p.lines[field] = n.Line
		}
	}
}

// scalarString accepts any untagged scalar as text, as VAST's schema
// library does: `path: 2024` is the string "2024". Null is refused so that
// a forgotten value is not silently taken as empty.
func (p *parser) scalarString(field string, n *yaml.Node) (string, bool) {
	n = resolve(n)
	switch {
	case n == nil || n.Kind != yaml.ScalarNode:
		p.addf(field, n, "must be a string, not %s", describe(n))
	case isNull(n):
		p.addf(field, n, "has no value")
	case n.Style&yaml.TaggedStyle != 0 && n.ShortTag() != "!!str":
		p.addf(field, n, "must be a string, not a value tagged %s", n.Tag)
	default:
		return n.Value, true
	}
	return "", false
}

func (p *parser) float(dst *float64) setter {
	return func(field string, n *yaml.Node) {
		n = resolve(n)
		switch {
		case n == nil || n.Kind != yaml.ScalarNode:
			p.addf(field, n, "must be a number, not %s", describe(n))
			return
		case isNull(n):
			p.addf(field, n, "has no value")
			return
		}
		// Decode refuses anything but ints and floats (a quoted "10" too).
		var f float64
		if err := n.Decode(&f); err != nil {
			p.addf(field, n, "must be a number, not %q", n.Value)
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.addf(field, n, "must be a finite number, not %s", n.Value)
			return
		}
		*dst = f
		p.lines[field] = n.Line
	}
}

// int parses a whole number; VAST's schema refuses 1.5 and "2" alike.
func (p *parser) int(dst *int) setter {
	return func(field string, n *yaml.Node) {
		n = resolve(n)
		switch {
		case n == nil || n.Kind != yaml.ScalarNode:
			p.addf(field, n, "must be a whole number, not %s", describe(n))
			return
		case isNull(n):
			p.addf(field, n, "has no value")
			return
		case n.ShortTag() != "!!int":
			p.addf(field, n, "must be a whole number, not %q", n.Value)
			return
		}
		var v int
		if err := n.Decode(&v); err != nil {
			p.addf(field, n, "must be a whole number, not %q", n.Value)
			return
		}
		*dst = v
		p.lines[field] = n.Line
	}
}

// workers parses a worker count: a whole number, or null for the default
// (stored as 0), as VAST's processing section allows.
func (p *parser) workers(dst *int) setter {
	whole := p.int(dst)
	return func(field string, n *yaml.Node) {
		if r := resolve(n); r != nil && isNull(r) {
			*dst = 0
			return
		}
		whole(field, n)
		if *dst < 1 && p.lines[field] != 0 {
			p.addf(field, nil, "must be 1 or more, or null for one less than the machine's cores; not %d", *dst)
		}
	}
}

func (p *parser) bool(dst *bool) setter {
	return func(field string, n *yaml.Node) {
		n = resolve(n)
		switch {
		case n == nil || n.Kind != yaml.ScalarNode:
			p.addf(field, n, "must be true or false, not %s", describe(n))
			return
		case isNull(n):
			p.addf(field, n, "has no value")
			return
		case n.ShortTag() != "!!bool":
			p.addf(field, n, "must be true or false, not %q", n.Value)
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			p.addf(field, n, "must be true or false, not %q", n.Value)
			return
		}
		*dst = b
		p.lines[field] = n.Line
	}
}

// resolve follows aliases to the anchored node. Aliases are harmless here:
// the schema has a fixed depth, so following them cannot blow up.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func keyName(k *yaml.Node) (string, bool) {
	if k == nil || k.Kind != yaml.ScalarNode || isNull(k) || k.Value == "" {
		return "", false
	}
	return k.Value, true
}

// describe names a node's type for messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "true/false"
	case "!!int", "!!float":
		return "a number"
	}
	return fmt.Sprintf("%q", n.Value)
}

func join(field, name string) string {
	if field == "" {
		return name
	}
	return field + "." + name
}

// cleanPath checks, without touching the file system, that p can name a
// file inside the images root, and returns it cleaned and slash-separated;
// otherwise it returns a reason.
func cleanPath(p string) (string, string) {
	switch {
	case strings.TrimSpace(p) == "":
		return "", "must not be empty"
	case strings.ContainsRune(p, 0):
		return "", fmt.Sprintf("%q must not contain a NUL byte", p)
	case path.IsAbs(p) || filepath.IsAbs(p):
		return "", fmt.Sprintf("%q must be relative to the images root, not absolute", p)
	}
	clean := path.Clean(p)
	switch {
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Sprintf("%q leads outside the images root", p)
	case clean == ".":
		return "", fmt.Sprintf("%q names the images root itself, not a file in it", p)
	case !filepath.IsLocal(filepath.FromSlash(clean)):
		return "", fmt.Sprintf("%q is not a path inside the images root", p)
	}
	return clean, ""
}
