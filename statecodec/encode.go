// Encoding a run state in the binary form.

package statecodec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
)

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
	e.buf = append(e.buf, stateMagic)
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

	written := []writtenConfig{{&r.Config, configSameAsCurrent}}
	config := func(c *domain.RunConfig, as byte) {
		for _, w := range written {
			if sameConfig(w.c, c) {
				e.buf = append(e.buf, w.tag)
				return
			}
		}
		e.buf = append(e.buf, configInline)
		e.config(c)
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
