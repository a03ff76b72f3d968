// Decoding a run state, binary or plain JSON.

package statecodec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/piperun/piperun/domain"
)

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
	if d.bool() {
		s.Restore = &domain.PendingRestore{ID: d.str(), Debug: d.bool(), Log: d.str(), PreviousStatus: domain.Status(d.str()), BackupVersion: d.int(), RequestedBy: d.str()}
	}
	if n, ok := d.length(); ok {
		s.Logs = make([]domain.LogRef, n)
		for i := range s.Logs {
			s.Logs[i] = domain.LogRef{Name: d.str(), Kind: domain.LogKind(d.str()), Created: d.time()}
		}
	}
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
