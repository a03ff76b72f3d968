package statecodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/piperun/piperun/domain"
)

// Snapshots and the read models store run states. EncodeState writes a
// state in a compact binary form, for two reasons measured on the restore
// path (where a command loads a run the server has not seen since it
// started, and the projector writes its read model):
//   - A state holds up to four configurations (the current one, the last
//     successful one, the backup's and the job's), most often the same
//     text of several kilobytes; each distinct one is written once.
//   - Its strings are written with their lengths, so decoding them is a
//     copy: decoding the JSON of a state after an addition (its YAML full
//     of escaped newlines) took 51 µs, this form a few.
// DecodeState also reads the plain JSON of a Run, as states were stored
// before. The binary form is internal: the API and pages show JSON.

// A binary state starts with one of these magic bytes (plain JSON starts
// with '{' or space). stateMagic is the form written now; its products'
// figures count the measurement pairs. stateMagicNoPairs is the form
// written before that figure existed, read as a pair count of 0 and, by the
// light form, written back as it was.
const (
	stateMagic        = 0xB2
	stateMagicNoPairs = 0xB1
)

// figuresOf returns how many figures a state of the given magic byte holds
// per products, or 0 if the byte starts no binary state.
func figuresOf(magic byte) int {
	switch magic {
	case stateMagic:
		return 6
	case stateMagicNoPairs:
		return 5
	}
	return 0
}

// Where a configuration of a state comes from: written in place, or equal
// to one written before it.
const (
	configInline byte = iota
	configSameAsCurrent
	configSameAsLastSuccessful
	configSameAsBackup
	// configDelta is a configuration whose text differs from one written
	// before it in its middle only (the backup's and the current one
	// differ in their inputs): then come the earlier one's tag, the lengths
	// of the prefix and suffix the texts share, the middle of this text,
	// and the rest of the configuration as configInline has it.
	configDelta
)

// minDeltaSaving is the fewest bytes a configDelta must save over writing
// the text whole.
const minDeltaSaving = 256

// EncodeState returns r in the binary state form. DecodeState of it equals
// r exactly (nil and empty slices apart, times with their locations).
func EncodeState(r domain.Run) ([]byte, error) {
	// Written into a pooled buffer, then copied to one of the exact size:
	// a buffer sized ahead (room for the configuration twice) was twice
	// the state, and was allocated and cleared whole for every state, which
	// under load cost more than the encoding (and the command cache keeps
	// the states).
	scratch := scratchStates.Get().(*[]byte)
	e := stateEncoder{buf: (*scratch)[:0]}
	defer func() {
		if cap(e.buf) <= maxScratchState {
			*scratch = e.buf
			scratchStates.Put(scratch)
		}
	}()
	if err := e.state(&r); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf), nil
}

// scratchStates are EncodeState's buffers; one that grew past
// maxScratchState (a state with a very large configuration) is dropped.
var scratchStates = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxScratchState = 1 << 20

func (e *stateEncoder) state(r *domain.Run) error {
	if err := e.head(r); err != nil {
		return err
	}

	written := []writtenConfig{{&r.Config, configSameAsCurrent}}
	config := func(c *domain.RunConfig, as byte) {
		for _, w := range written {
			if sameConfig(w.c, c) {
				e.buf = append(e.buf, w.tag)
				return
			}
		}
		e.configAgainst(c, written)
		if as != configInline {
			written = append(written, writtenConfig{c, as})
		}
	}
	e.config(&r.Config)
	if e.present(r.LastSuccessful != nil) {
		config(r.LastSuccessful, configSameAsLastSuccessful)
	}
	if e.present(r.Products != nil) {
		if err := e.products(r.Products); err != nil {
			return fmt.Errorf("encode state of run %s: %w", r.Name, err)
		}
	}
	if e.present(r.Backup != nil) {
		e.int(r.Backup.Version)
		config(&r.Backup.Config, configSameAsBackup)
		if err := e.products(&r.Backup.Products); err != nil {
			return fmt.Errorf("encode state of run %s: %w", r.Name, err)
		}
	}
	if e.present(r.Job != nil) {
		j := r.Job
		e.str(j.ID)
		e.str(string(j.Mode))
		e.bool(j.Debug)
		config(&j.Config, configInline)
		e.str(j.Log)
		e.str(string(j.PreviousStatus))
		// Starts<<1 | Started, in the byte that held Started alone before
		// starts were counted: a state written then reads as a job
		// started or not, with Starts 0 (see Job.starts).
		started := uint64(0)
		if j.Started {
			started = 1
		}
		e.uint(uint64(max(j.Starts, 0))<<1 | started)
	}
	return e.restoreAndLogs(r)
}

// head writes the magic byte and the fields a state starts with.
func (e *stateEncoder) head(r *domain.Run) error {
	return e.headAs(r, stateMagic)
}

// headAs is head with the given magic byte.
func (e *stateEncoder) headAs(r *domain.Run, magic byte) error {
	e.buf = append(e.buf, magic)
	e.str(r.Name)
	e.str(r.Description)
	e.str(r.Owner)
	e.str(string(r.Status))
	e.int(r.Version)
	if err := e.time(r.Created); err != nil {
		return fmt.Errorf("encode state of run %s: %w", r.Name, err)
	}
	if err := e.time(r.Updated); err != nil {
		return fmt.Errorf("encode state of run %s: %w", r.Name, err)
	}
	e.bool(r.Deleted)
	return nil
}

// restoreAndLogs writes the fields a state ends with: the pending restore
// and the logs.
func (e *stateEncoder) restoreAndLogs(r *domain.Run) error {
	if e.present(r.Restore != nil) {
		p := r.Restore
		e.str(p.ID)
		e.bool(p.Debug)
		e.str(p.Log)
		e.str(string(p.PreviousStatus))
		e.int(p.BackupVersion)
		e.str(p.RequestedBy)
	}
	e.length(r.Logs == nil, len(r.Logs))
	for _, l := range r.Logs {
		e.str(l.Name)
		e.str(string(l.Kind))
		if err := e.time(l.Created); err != nil {
			return fmt.Errorf("encode state of run %s: %w", r.Name, err)
		}
	}
	return nil
}

type stateEncoder struct{ buf []byte }

// sameConfig reports whether a and b are equal field by field, nil slices
// apart from empty ones (as reflect.DeepEqual has it, which a test checks
// this against): a configuration written once stands for both.
func sameConfig(a, b *domain.RunConfig) bool {
	if a == b {
		return true
	}
	same := func(x, y []string) bool { return (x == nil) == (y == nil) && slices.Equal(x, y) }
	return a.YAML == b.YAML && a.SettingsDigest == b.SettingsDigest &&
		same(a.Inputs.Images, b.Inputs.Images) && same(a.Inputs.Selavy, b.Inputs.Selavy) &&
		same(a.Inputs.Noise, b.Inputs.Noise) && same(a.Inputs.Background, b.Inputs.Background) &&
		same(a.Inputs.Epochs, b.Inputs.Epochs)
}

func (e *stateEncoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *stateEncoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *stateEncoder) str(s string)  { e.uint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *stateEncoder) float(f float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *stateEncoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// present writes whether an optional part follows, and returns it.
func (e *stateEncoder) present(ok bool) bool { e.bool(ok); return ok }

// length writes a slice's length, keeping nil (0) apart from empty (1).
func (e *stateEncoder) length(isNil bool, n int) {
	if isNil {
		e.uint(0)
	} else {
		e.uint(uint64(n) + 1)
	}
}

func (e *stateEncoder) time(t time.Time) error {
	// time's binary form is 15 or 16 bytes: its length is one byte.
	at := len(e.buf)
	buf, err := t.AppendBinary(append(e.buf, 0))
	if err != nil {
		return fmt.Errorf("encode time: %w", err)
	}
	n := len(buf) - at - 1
	if n >= 0x80 {
		return fmt.Errorf("encode time: %d bytes, more than a state allows", n)
	}
	buf[at] = byte(n)
	e.buf = buf
	return nil
}

func (e *stateEncoder) strs(s []string) {
	e.length(s == nil, len(s))
	for _, v := range s {
		e.str(v)
	}
}

// writtenConfig is a configuration already in the state, and the tag that
// refers to it.
type writtenConfig struct {
	c   *domain.RunConfig
	tag byte
}

// configAgainst writes c, not equal to any of written, as a configDelta
// against the one of written whose text it shares the most of, if that
// saves minDeltaSaving bytes; else whole.
func (e *stateEncoder) configAgainst(c *domain.RunConfig, written []writtenConfig) {
	var best writtenConfig
	bestPrefix, bestSuffix := 0, 0
	for _, w := range written {
		p, s := sharedEnds(w.c.YAML, c.YAML)
		if p+s > bestPrefix+bestSuffix {
			best, bestPrefix, bestSuffix = w, p, s
		}
	}
	if bestPrefix+bestSuffix < minDeltaSaving {
		e.buf = append(e.buf, configInline)
		e.config(c)
		return
	}
	e.buf = append(e.buf, configDelta, best.tag)
	e.uint(uint64(bestPrefix))
	e.uint(uint64(bestSuffix))
	e.str(c.YAML[bestPrefix : len(c.YAML)-bestSuffix])
	e.configRest(c)
}

// sharedEnds returns the lengths of the longest prefix and then the
// longest suffix a and b share, not overlapping in either.
func sharedEnds(a, b string) (prefix, suffix int) {
	// A block at a time while the blocks are equal (string comparison is
	// vectorised), then byte by byte: texts of kilobytes are compared for
	// every state written.
	const block = 64
	n := min(len(a), len(b))
	for prefix+block <= n && a[prefix:prefix+block] == b[prefix:prefix+block] {
		prefix += block
	}
	for prefix < n && a[prefix] == b[prefix] {
		prefix++
	}
	for suffix+block <= n-prefix && a[len(a)-suffix-block:len(a)-suffix] == b[len(b)-suffix-block:len(b)-suffix] {
		suffix += block
	}
	for suffix < n-prefix && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	return prefix, suffix
}

func (e *stateEncoder) config(c *domain.RunConfig) {
	e.str(c.YAML)
	e.configRest(c)
}

// configRest writes what follows a configuration's text.
func (e *stateEncoder) configRest(c *domain.RunConfig) {
	e.strs(c.Inputs.Images)
	e.strs(c.Inputs.Selavy)
	e.strs(c.Inputs.Noise)
	e.strs(c.Inputs.Background)
	e.strs(c.Inputs.Epochs)
	e.str(c.SettingsDigest)
}

func (e *stateEncoder) products(p *domain.Products) error {
	e.length(p.Artifacts == nil, len(p.Artifacts))
	for _, a := range p.Artifacts {
		e.str(a.Name)
		e.str(a.Digest)
		e.int(a.Size)
	}
	f := p.Figures
	for _, n := range [...]int{f.NImages, f.NSources, f.NSelavyMeasurements, f.NForcedMeasurements, f.NNewSources, f.NMeasurementPairs} {
		e.int(int64(n))
	}
	e.length(p.Images == nil, len(p.Images))
	for _, im := range p.Images {
		e.str(im.Name)
		e.str(im.Path)
		e.str(im.Epoch)
		if err := e.time(im.DateTime); err != nil {
			return err
		}
		for _, f := range [...]float64{im.FrequencyMHz, im.BMajDeg, im.BMinDeg, im.BPADeg, im.RADeg, im.DecDeg} {
			e.float(f)
		}
		e.int(int64(im.NMeasurements))
	}
	return nil
}

// DecodeState parses a state written by EncodeState, or a Run's plain JSON
// (as states were stored before), into *r.
func DecodeState(data []byte, r *domain.Run) error {
	if len(data) > 0 && figuresOf(data[0]) > 0 {
		return decodeBinary(string(data[1:]), figuresOf(data[0]), r)
	}
	return decodePlain(data, r)
}

// DecodeSharedState is DecodeState for a state that nothing will ever
// change: the strings of *r are slices of data's memory instead of a
// copy of it (an allocation and a copy of some kilobytes less per decode,
// which the command cache does for every command). data must stay as it
// is for as long as *r or any string taken from it lives.
func DecodeSharedState(data []byte, r *domain.Run) error {
	if len(data) > 1 && figuresOf(data[0]) > 0 {
		return decodeBinary(unsafe.String(&data[1], len(data)-1), figuresOf(data[0]), r)
	}
	return decodePlain(data, r)
}

// DecodeSharedStateHead is DecodeSharedState of the fields a state starts
// with only: Name, Description, Owner, Status, Version, Created, Updated
// and Deleted; the others are left zero. It reads a few dozen bytes of a
// state of kilobytes, for a reader that needs just those (the projector,
// writing a run's row from a state it stores as it is). A plain JSON state
// is decoded whole, then cut to the same fields.
func DecodeSharedStateHead(data []byte, r *domain.Run) error {
	if len(data) > 1 && figuresOf(data[0]) > 0 {
		whole := unsafe.String(&data[1], len(data)-1)
		d := stateDecoder{buf: unsafe.Slice(unsafe.StringData(whole), len(whole)), whole: whole}
		var s domain.Run
		d.head(&s)
		if d.err != nil {
			return fmt.Errorf("decode run state: %w", d.err)
		}
		*r = s
		return nil
	}
	var whole domain.Run
	if err := decodePlain(data, &whole); err != nil {
		return err
	}
	*r = domain.Run{Name: whole.Name, Description: whole.Description, Owner: whole.Owner, Status: whole.Status,
		Version: whole.Version, Created: whole.Created, Updated: whole.Updated, Deleted: whole.Deleted}
	return nil
}

func decodePlain(data []byte, r *domain.Run) error {
	var plain domain.Run
	if err := json.Unmarshal(data, &plain); err != nil {
		return fmt.Errorf("decode run state: %w", err)
	}
	*r = plain
	return nil
}

// decodeBinary decodes a binary state without its magic byte.
func decodeBinary(whole string, figures int, r *domain.Run) error {
	d := stateDecoder{buf: unsafe.Slice(unsafe.StringData(whole), len(whole)), whole: whole, figures: figures}
	var s domain.Run
	d.head(&s)

	var backupConfig *domain.RunConfig
	config := func(dst *domain.RunConfig) {
		switch tag := d.byte(); tag {
		case configInline:
			d.config(dst)
		case configSameAsCurrent:
			*dst = s.Config.ExactClone()
		case configSameAsLastSuccessful:
			if s.LastSuccessful == nil {
				d.fail(errors.New("a configuration refers to the last successful one, which the state lacks"))
				return
			}
			*dst = s.LastSuccessful.ExactClone()
		case configSameAsBackup:
			if backupConfig == nil {
				d.fail(errors.New("a configuration refers to the backup's, which the state lacks"))
				return
			}
			*dst = backupConfig.ExactClone()
		case configDelta:
			var base *domain.RunConfig
			switch tag := d.byte(); tag {
			case configSameAsCurrent:
				base = &s.Config
			case configSameAsLastSuccessful:
				base = s.LastSuccessful
			case configSameAsBackup:
				base = backupConfig
			default:
				d.fail(fmt.Errorf("unknown configuration tag %d for a configuration's base", tag))
				return
			}
			if base == nil {
				d.fail(errors.New("a configuration refers to one the state lacks"))
				return
			}
			d.configDelta(dst, base.YAML)
		default:
			d.fail(fmt.Errorf("unknown configuration tag %d", tag))
		}
	}
	d.config(&s.Config)
	if d.bool() {
		s.LastSuccessful = &domain.RunConfig{}
		config(s.LastSuccessful)
	}
	if d.bool() {
		s.Products = &domain.Products{}
		d.products(s.Products)
	}
	if d.bool() {
		s.Backup = &domain.Backup{Version: d.int()}
		config(&s.Backup.Config)
		backupConfig = &s.Backup.Config
		d.products(&s.Backup.Products)
	}
	if d.bool() {
		j := &domain.Job{ID: d.str(), Mode: domain.JobMode(d.str()), Debug: d.bool()}
		config(&j.Config)
		j.Log = d.str()
		j.PreviousStatus = domain.Status(d.str())
		started := d.uint()
		j.Started = started&1 == 1
		j.Starts = int(started >> 1)
		s.Job = j
	}
	d.restoreAndLogs(&s)
	if d.err == nil && len(d.buf) > 0 {
		d.fail(fmt.Errorf("%d bytes after the state", len(d.buf)))
	}
	if d.err != nil {
		return fmt.Errorf("decode run state: %w", d.err)
	}
	*r = s
	return nil
}

// stateDecoder reads what stateEncoder wrote. The first error sticks: the
// reads after it return zero values. Its strings are slices of one copy
// of the whole state (one allocation, not one per string).
type stateDecoder struct {
	buf   []byte // what is left to read
	whole string // the state, buf being its last len(buf) bytes
	err   error
	// figures is how many figures each products holds (see figuresOf).
	figures int
}

var errStateTruncated = errors.New("truncated")

// head reads the fields a state starts with (see DecodeSharedStateHead).
func (d *stateDecoder) head(s *domain.Run) {
	s.Name = d.str()
	s.Description = d.str()
	s.Owner = d.str()
	s.Status = domain.Status(d.str())
	s.Version = d.int()
	s.Created = d.time()
	s.Updated = d.time()
	s.Deleted = d.bool()
}

// restoreAndLogs reads the fields a state ends with.
func (d *stateDecoder) restoreAndLogs(s *domain.Run) {
	if d.bool() {
		s.Restore = &domain.PendingRestore{ID: d.str(), Debug: d.bool(), Log: d.str(), PreviousStatus: domain.Status(d.str()), BackupVersion: d.int(), RequestedBy: d.str()}
	}
	if n, ok := d.length(); ok {
		s.Logs = make([]domain.LogRef, n)
		for i := range s.Logs {
			s.Logs[i] = domain.LogRef{Name: d.str(), Kind: domain.LogKind(d.str()), Created: d.time()}
		}
	}
}

func (d *stateDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

func (d *stateDecoder) byte() byte {
	if len(d.buf) == 0 {
		d.fail(errStateTruncated)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *stateDecoder) bool() bool {
	switch b := d.byte(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("bad boolean %d", b))
		return false
	}
}

func (d *stateDecoder) uint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errStateTruncated)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *stateDecoder) int() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errStateTruncated)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// bytes returns the next n bytes, or nil if fewer are left.
func (d *stateDecoder) bytes(n uint64) []byte {
	if n > uint64(len(d.buf)) {
		d.fail(errStateTruncated)
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *stateDecoder) str() string {
	n := d.uint()
	start := len(d.whole) - len(d.buf)
	if d.bytes(n) == nil {
		return ""
	}
	return d.whole[start : start+int(n)]
}

func (d *stateDecoder) float() float64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// length reads a slice's length; ok is false for nil. A length longer
// than what is left of the state cannot be right (every element takes a
// byte at least), so it fails rather than allocates.
func (d *stateDecoder) length() (n int, ok bool) {
	v := d.uint()
	if v == 0 {
		return 0, false
	}
	if v-1 > uint64(len(d.buf)) {
		d.fail(errStateTruncated)
		return 0, false
	}
	return int(v - 1), true
}

func (d *stateDecoder) time() time.Time {
	var t time.Time
	b := d.bytes(d.uint())
	if d.err != nil {
		return t
	}
	if err := t.UnmarshalBinary(b); err != nil {
		d.fail(fmt.Errorf("decode time: %w", err))
	}
	return t
}

func (d *stateDecoder) strs() []string {
	n, ok := d.length()
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *stateDecoder) config(c *domain.RunConfig) {
	c.YAML = d.str()
	d.configRest(c)
}

// configDelta reads a configDelta's text, after its tag, against base.
func (d *stateDecoder) configDelta(c *domain.RunConfig, base string) {
	prefix, suffix := d.uint(), d.uint()
	middle := d.str()
	if d.err != nil {
		return
	}
	if prefix > uint64(len(base)) || suffix > uint64(len(base))-prefix {
		d.fail(fmt.Errorf("a configuration shares %d+%d bytes of one of %d", prefix, suffix, len(base)))
		return
	}
	c.YAML = base[:prefix] + middle + base[uint64(len(base))-suffix:]
	d.configRest(c)
}

func (d *stateDecoder) configRest(c *domain.RunConfig) {
	c.Inputs.Images = d.strs()
	c.Inputs.Selavy = d.strs()
	c.Inputs.Noise = d.strs()
	c.Inputs.Background = d.strs()
	c.Inputs.Epochs = d.strs()
	c.SettingsDigest = d.str()
}

func (d *stateDecoder) products(p *domain.Products) {
	if n, ok := d.length(); ok {
		p.Artifacts = make([]domain.Artifact, n)
		for i := range p.Artifacts {
			p.Artifacts[i] = domain.Artifact{Name: d.str(), Digest: d.str(), Size: d.int()}
		}
	}
	p.Figures = domain.Figures{NImages: int(d.int()), NSources: int(d.int()), NSelavyMeasurements: int(d.int()), NForcedMeasurements: int(d.int()), NNewSources: int(d.int())}
	if d.figures > 5 {
		p.Figures.NMeasurementPairs = int(d.int())
	}
	if n, ok := d.length(); ok {
		p.Images = make([]domain.ImageSummary, n)
		for i := range p.Images {
			p.Images[i] = domain.ImageSummary{
				Name: d.str(), Path: d.str(), Epoch: d.str(), DateTime: d.time(),
				FrequencyMHz: d.float(), BMajDeg: d.float(), BMinDeg: d.float(), BPADeg: d.float(), RADeg: d.float(), DecDeg: d.float(),
				NMeasurements: int(d.int()),
			}
		}
	}
}
