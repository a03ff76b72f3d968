package statecodec

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/piperun/piperun/domain"
)

// LightState is a run's state decoded but for its configurations and
// products, for the commands that neither read nor change them (a restore
// request reads whether there is a backup, and its version, and changes
// the status, the pending restore and the logs). Decoding a whole state
// costs a command a few kilobytes of allocations and copies (the
// configurations' texts, the products' lists) that such a command never
// looks at; the light form skips over them and writes their bytes back as
// they were.
//
// Run holds the state's leading fields (as DecodeSharedStateHead gives
// them), its pending restore and its logs; of its backup, a Backup with
// only Version set, or nil when there is none. Config, LastSuccessful and
// Products are zero whatever the state holds, and Job is nil (a state with
// a job has no light form). A command on a LightState must therefore read
// nothing else, and Encode refuses a Run whose configurations, products,
// backup or job were changed.
type LightState struct {
	Run domain.Run
	// body is the encoded configurations, products and backup, as the
	// state held them.
	body string
	// magic is the state's first byte: the form its body is written in.
	magic byte
	// backup is what Run.Backup was decoded as, and backupVersion its
	// version, to tell a change.
	backup        *domain.Backup
	backupVersion int64
}

// ErrNoLightForm is returned by DecodeSharedLight for a state that has no
// light form (one with a job, whose configuration the encoding may write
// against the others, or one stored as plain JSON): it must be decoded
// whole.
var ErrNoLightForm = errors.New("the state has no light form")

// ErrLightChanged is returned by LightState.Encode when the run's
// configurations, products, backup or job were changed: the whole state
// must be decoded and the command decided on it.
var ErrLightChanged = errors.New("a command changed what the light form of a state does not hold")

// DecodeSharedLight decodes data, a state from EncodeState, into its light
// form. As with DecodeSharedState, the strings of the result are slices of
// data, which must stay unchanged for as long as they live.
func DecodeSharedLight(data []byte) (LightState, error) {
	if len(data) < 2 || figuresOf(data[0]) == 0 {
		return LightState{}, ErrNoLightForm
	}
	whole := unsafe.String(&data[1], len(data)-1)
	d := stateDecoder{buf: unsafe.Slice(unsafe.StringData(whole), len(whole)), whole: whole, figures: figuresOf(data[0])}
	var s domain.Run
	d.head(&s)
	bodyStart := len(whole) - len(d.buf)
	var backup *domain.Backup
	// The lengths of the texts of the configurations written so far, by
	// the tag that refers to them (-1: not written), to check references
	// as decodeBinary does.
	lengths := configLengths{configSameAsCurrent: d.skipConfig(), configSameAsLastSuccessful: -1, configSameAsBackup: -1}
	if d.bool() {
		lengths[configSameAsLastSuccessful] = d.skipConfigRef(&lengths)
	}
	if d.bool() {
		d.skipProducts()
	}
	if d.bool() {
		backup = &domain.Backup{Version: d.int()}
		lengths[configSameAsBackup] = d.skipConfigRef(&lengths)
		d.skipProducts()
	}
	bodyEnd := len(whole) - len(d.buf)
	if d.bool() {
		if d.err == nil {
			return LightState{}, ErrNoLightForm
		}
	}
	d.restoreAndLogs(&s)
	if d.err == nil && len(d.buf) > 0 {
		d.fail(fmt.Errorf("%d bytes after the state", len(d.buf)))
	}
	if d.err != nil {
		return LightState{}, fmt.Errorf("decode run state: %w", d.err)
	}
	s.Backup = backup
	l := LightState{Run: s, body: whole[bodyStart:bodyEnd], backup: backup, magic: data[0]}
	if backup != nil {
		l.backupVersion = backup.Version
	}
	return l, nil
}

// Encode returns the state of l.Run, with the configurations, products and
// backup l was decoded with, in EncodeState's form: what EncodeState gives
// for the whole run. It fails with ErrLightChanged if the command changed
// any of them or gave the run a job.
func (l *LightState) Encode() ([]byte, error) {
	r := &l.Run
	if r.Job != nil || r.LastSuccessful != nil || r.Products != nil || !sameConfig(&r.Config, &domain.RunConfig{}) ||
		r.Backup != l.backup || r.Backup != nil && (r.Backup.Version != l.backupVersion || !lightBackup(r.Backup)) {
		return nil, ErrLightChanged
	}
	scratch := scratchStates.Get().(*[]byte)
	e := stateEncoder{buf: (*scratch)[:0]}
	defer func() {
		if cap(e.buf) <= maxScratchState {
			*scratch = e.buf
			scratchStates.Put(scratch)
		}
	}()
	// The body is written back as it was, so the state keeps the form it
	// was decoded from.
	if err := e.headAs(r, l.magic); err != nil {
		return nil, err
	}
	e.buf = append(e.buf, l.body...)
	e.bool(false) // no job
	if err := e.restoreAndLogs(r); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf), nil
}

// lightBackup reports whether b holds no more than the light form of a
// state keeps of a backup: its version.
func lightBackup(b *domain.Backup) bool {
	p := &b.Products
	return sameConfig(&b.Config, &domain.RunConfig{}) && p.Artifacts == nil && p.Images == nil && p.Figures == domain.Figures{}
}

// skipConfig reads past a configuration written whole and returns the
// length of its text.
func (d *stateDecoder) skipConfig() int {
	n := len(d.str())
	d.skipConfigRest()
	return n
}

func (d *stateDecoder) skipConfigRest() {
	for range 5 { // images, selavy, noise, background, epochs
		d.skipStrs()
	}
	d.str() // settings digest
}

// configLengths are the lengths of the texts of the configurations a
// state has written so far, by the tag that refers to them (-1: not
// written).
type configLengths [configSameAsBackup + 1]int

// base returns the length of the text of the configuration tag refers to.
func (c *configLengths) base(d *stateDecoder, tag byte) int {
	if tag == configInline || tag >= byte(len(c)) || c[tag] < 0 {
		d.fail(fmt.Errorf("a configuration refers to one the state lacks (tag %d)", tag))
		return 0
	}
	return c[tag]
}

// skipConfigRef reads past a configuration that may refer to one written
// before it, and returns the length of its text.
func (d *stateDecoder) skipConfigRef(lengths *configLengths) int {
	switch tag := d.byte(); tag {
	case configInline:
		return d.skipConfig()
	case configSameAsCurrent, configSameAsLastSuccessful, configSameAsBackup:
		return lengths.base(d, tag)
	case configDelta:
		base := lengths.base(d, d.byte())
		if d.err != nil {
			return 0
		}
		prefix, suffix := d.uint(), d.uint()
		middle := len(d.str())
		if d.err == nil && (prefix > uint64(base) || suffix > uint64(base)-prefix) {
			d.fail(fmt.Errorf("a configuration shares %d+%d bytes of one of %d", prefix, suffix, base))
			return 0
		}
		d.skipConfigRest()
		return int(prefix+suffix) + middle
	default:
		d.fail(fmt.Errorf("unknown configuration tag %d", tag))
		return 0
	}
}

func (d *stateDecoder) skipStrs() {
	n, _ := d.length()
	for range n {
		d.str()
	}
}

func (d *stateDecoder) skipProducts() {
	n, _ := d.length()
	for range n {
		d.str() // name
		d.str() // digest
		d.int() // size
	}
	for range d.figures {
		d.int()
	}
	n, _ = d.length()
	for range n {
		d.str()        // name
		d.str()        // path
		d.str()        // epoch
		d.time()       // date and time (checked, as decodeBinary does)
		d.bytes(6 * 8) // frequency, beam, position
		d.int()        // measurements
		if d.err != nil {
			return
		}
	}
}
