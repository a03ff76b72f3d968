package runconfig

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// inputList is one of inputs.image/selavy/noise/background as written:
// either a plain list, or (VAST's epoch mode) a mapping of epoch name to
// list, epochs kept in the order written.
type inputList struct {
	field   string
	node    *yaml.Node
	present bool // given with a non-null value, of whatever type
	usable  bool // of a shape the cross-checks can compare
	epochs  []string
	// byEpoch holds the paths of each epoch; in list mode the single
	// epoch "" holds them all. A path that failed its checks is "" but
	// keeps its place, so that lengths still compare.
	byEpoch map[string][]string
	// lines holds the line of each path, parallel to byEpoch.
	lines map[string][]int
	// epochNodes holds each epoch's list, for the lines of problems.
	epochNodes map[string]*yaml.Node
}

func (l *inputList) epochMode() bool { return l.epochs != nil }

func (l *inputList) count() int {
	n := 0
	for _, ps := range l.byEpoch {
		n += len(ps)
	}
	return n
}

// entryField names the j-th path of an epoch ("" in list mode).
func (l *inputList) entryField(epoch string, j int) string {
	if !l.epochMode() {
		return fmt.Sprintf("%s[%d]", l.field, j)
	}
	return fmt.Sprintf("%s.%s[%d]", l.field, epoch, j)
}

// inputs parses the inputs section, cross-checks the four lists and, when
// all is well, flattens them into cfg.Inputs.
func (p *parser) inputs(field string, n *yaml.Node) {
	lists := make(map[string]*inputList)
	for _, k := range []string{keyImage, keySelavy, keyNoise, keyBackground} {
		// Until the key is found, problems point at the inputs section.
		lists[k] = &inputList{field: join(field, k), node: n}
	}
	keys := make([]key, 0, len(lists))
	for _, k := range []string{keyImage, keySelavy, keyNoise, keyBackground} {
		l := lists[k]
		keys = append(keys, key{k, func(_ string, v *yaml.Node) { p.inputList(l, v) }})
	}
	switch r := resolve(n); {
	case r == nil || isNull(r):
		p.addf(field, n, "required: list the image, selavy and noise files")
		return
	case r.Kind != yaml.MappingNode:
		p.addf(field, n, "must be a mapping of image, selavy, noise and background lists, not %s", describe(r))
		return
	}
	p.mapping(field, n, keys)

	image := lists[keyImage]
	if !image.present {
		p.addf(image.field, image.node, "required: list the image files")
	}
	for _, k := range []string{keySelavy, keyNoise, keyBackground} {
		l := lists[k]
		if !l.present {
			switch {
			case k != keyBackground:
				p.addf(l.field, l.node, "required: list one file per image")
			case p.cfg.SourceMonitoring.Monitor:
				p.addf(l.field, l.node, "required when source_monitoring.monitor is true: list one file per image")
			}
			continue
		}
		if image.usable && l.usable {
			p.matchImages(image, l)
		}
	}
	if image.usable {
		p.checkDuplicates(image)
	}
	if len(p.problems) > 0 {
		return
	}
	in := &p.cfg.Inputs
	for _, epoch := range image.epochs {
		for range image.byEpoch[epoch] {
			in.Epochs = append(in.Epochs, epoch)
		}
	}
	order := image.epochs
	if !image.epochMode() {
		order = []string{""}
	}
	for _, epoch := range order {
		in.Images = append(in.Images, image.byEpoch[epoch]...)
		in.Selavy = append(in.Selavy, lists[keySelavy].byEpoch[epoch]...)
		in.Noise = append(in.Noise, lists[keyNoise].byEpoch[epoch]...)
		if bg := lists[keyBackground]; bg.present {
			in.Background = append(in.Background, bg.byEpoch[epoch]...)
		}
	}
}

func (p *parser) inputList(l *inputList, n *yaml.Node) {
	l.node = n
	r := resolve(n)
	switch {
	case r == nil:
		l.present = true
		p.addf(l.field, n, "must be a list of paths, not %s", describe(r))
	case isNull(r):
		// Left empty, as in the template: reported as missing.
	case r.Kind == yaml.SequenceNode:
		l.present, l.usable = true, true
		l.byEpoch, l.lines = make(map[string][]string), make(map[string][]int)
		l.byEpoch[""], l.lines[""] = p.paths(l.field, r)
		if len(r.Content) == 0 {
			p.addf(l.field, n, "must list at least one file")
		}
	case r.Kind == yaml.MappingNode:
		l.present, l.usable = true, true
		l.epochs = []string{}
		l.byEpoch, l.lines = make(map[string][]string), make(map[string][]int)
		l.epochNodes = make(map[string]*yaml.Node)
		for i := 0; i+1 < len(r.Content); i += 2 {
			k, v := resolve(r.Content[i]), r.Content[i+1]
			epoch, ok := keyName(k)
			if !ok {
				p.addf(l.field, k, "epoch names must be non-empty strings, not %s", describe(k))
				l.usable = false
				continue
			}
			sub := join(l.field, epoch)
			if epoch == "glob" {
				// VAST reads `glob:` here as file patterns, not as an
				// epoch: refuse it rather than take it for one.
				p.addf(sub, k, "glob patterns are not supported: list the files (or, in epoch mode, map each epoch to its files)")
				l.usable = false
				continue
			}
			if _, dup := l.byEpoch[epoch]; dup {
				p.addf(sub, k, "epoch listed more than once")
				l.usable = false
				continue
			}
			rv := resolve(v)
			if rv == nil || rv.Kind != yaml.SequenceNode {
				p.addf(sub, v, "must be a list of paths, not %s", describe(rv))
				l.usable = false
				continue
			}
			if len(rv.Content) == 0 {
				p.addf(sub, v, "must list at least one file")
			}
			l.epochs = append(l.epochs, epoch)
			l.byEpoch[epoch], l.lines[epoch] = p.paths(sub, rv)
			l.epochNodes[epoch] = v
		}
		if len(r.Content) == 0 {
			p.addf(l.field, n, "must list at least one epoch")
		}
	default:
		l.present = true
		p.addf(l.field, n, "must be a list of paths (or a mapping of epoch to paths), not %s", describe(r))
	}
}

// paths reads a list of paths, checking and cleaning each, and returns
// them with their lines.
func (p *parser) paths(field string, seq *yaml.Node) ([]string, []int) {
	out, lines := make([]string, len(seq.Content)), make([]int, len(seq.Content))
	for j, item := range seq.Content {
		lines[j] = item.Line
		f := fmt.Sprintf("%s[%d]", field, j)
		s, ok := p.scalarString(f, item)
		if !ok {
			continue
		}
		clean, why := cleanPath(s)
		if why != "" {
			p.addf(f, item, "%s", why)
			continue
		}
		out[j] = clean
	}
	return out, lines
}

// matchImages checks that l pairs up one-to-one with the images: same mode,
// same epochs, same number of files in each.
func (p *parser) matchImages(image, l *inputList) {
	switch {
	case image.epochMode() && !l.epochMode():
		p.addf(l.field, l.node, "must be a mapping of epoch to paths, like %s", image.field)
	case !image.epochMode() && l.epochMode():
		p.addf(l.field, l.node, "must be a plain list of paths, like %s", image.field)
	case !image.epochMode():
		if a, b := image.count(), l.count(); a != b {
			p.addf(l.field, l.node, "lists %s but %s lists %s: give one per image", files(b), image.field, files(a))
		}
	default:
		for _, epoch := range image.epochs {
			ps, ok := l.byEpoch[epoch]
			if !ok {
				p.addf(l.field, l.node, "has no epoch %q, which %s has", epoch, image.field)
				continue
			}
			if a, b := len(image.byEpoch[epoch]), len(ps); a != b {
				p.addf(join(l.field, epoch), l.epochNodes[epoch], "lists %s but %s.%s lists %s: give one per image", files(b), image.field, epoch, files(a))
			}
		}
		for _, epoch := range l.epochs {
			if _, ok := image.byEpoch[epoch]; !ok {
				p.addf(join(l.field, epoch), l.epochNodes[epoch], "epoch %q is not in %s", epoch, image.field)
			}
		}
	}
}

// checkDuplicates refuses an image listed twice: it would be associated
// with itself.
func (p *parser) checkDuplicates(image *inputList) {
	first := make(map[string]string)
	order := image.epochs
	if !image.epochMode() {
		order = []string{""}
	}
	for _, epoch := range order {
		for j, path := range image.byEpoch[epoch] {
			if path == "" {
				continue
			}
			f := image.entryField(epoch, j)
			if prev, dup := first[path]; dup {
				p.problems.add(f, image.lines[epoch][j], "%q is already listed as %s", path, prev)
				continue
			}
			first[path] = f
		}
	}
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}
