package fits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/piperun/piperun/pipeline/inputs"
)

// PixelStats summarises an image's valid pixels.
type PixelStats struct {
	// N is the number of valid pixels; Min, Max and Median are NaN when it
	// is zero.
	N                int64
	Min, Max, Median float64
}

// ReadHeaderFile reads the primary header of the FITS file at path.
func ReadHeaderFile(ctx context.Context, path string) (*Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := inputs.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("read FITS header: %w", err)
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("read FITS header of %s: %w", path, err)
	}
	return h, nil
}

// ReadPixelStats reads the FITS file at path and summarises its primary
// data; see PixelStatsOf.
func ReadPixelStats(ctx context.Context, path string) (*Header, PixelStats, error) {
	f, err := inputs.OpenFile(path)
	if err != nil {
		return nil, PixelStats{}, fmt.Errorf("read pixels: %w", err)
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return nil, PixelStats{}, fmt.Errorf("read FITS header of %s: %w", path, err)
	}
	st, err := PixelStatsOf(ctx, f, h)
	if err != nil {
		return nil, PixelStats{}, fmt.Errorf("read pixels of %s: %w", path, err)
	}
	return h, st, nil
}

// PixelStatsOf summarises the primary data of a FITS file whose header is h,
// read from r (the whole file). Pixels that are NaN, BLANK or exactly zero
// are left out: VAST leaves zeros out of noise-map statistics because they
// mark the unobserved border. The median is exact and computed numpy's way
// (the mean of the two middle values for an even count, in float32 for
// float32 data), without holding the pixels in memory: a radix selection
// over the values' sortable bit patterns, 16 bits per pass over the data.
func PixelStatsOf(ctx context.Context, r io.ReaderAt, h *Header) (PixelStats, error) {
	d, err := newDataDesc(h)
	if err != nil {
		return PixelStats{}, err
	}
	st := PixelStats{Min: math.Inf(1), Max: math.Inf(-1)}
	var hist [2][1 << 16]uint64
	// Pass 0: count, extremes and the top 16 bits of every value.
	err = d.scan(ctx, r, func(v float64) {
		st.N++
		st.Min = math.Min(st.Min, v)
		st.Max = math.Max(st.Max, v)
		hist[0][sortKey(v)>>48]++
	})
	if err != nil {
		return PixelStats{}, err
	}
	if st.N == 0 {
		nan := math.NaN()
		return PixelStats{Min: nan, Max: nan, Median: nan}, nil
	}
	hist[1] = hist[0]
	ranks := [2]uint64{uint64(st.N-1) / 2, uint64(st.N) / 2}
	var prefix [2]uint64
	pick(&hist, &ranks, &prefix, 48)
	for shift := 32; shift >= 0; shift -= 16 {
		hist = [2][1 << 16]uint64{}
		mask := ^uint64(0) << (shift + 16)
		err = d.scan(ctx, r, func(v float64) {
			k := sortKey(v)
			for t := range 2 {
				if k&mask == prefix[t] {
					hist[t][(k>>shift)&0xffff]++
				}
			}
		})
		if err != nil {
			return PixelStats{}, err
		}
		pick(&hist, &ranks, &prefix, shift)
	}
	lo, hi := fromSortKey(prefix[0]), fromSortKey(prefix[1])
	if d.float32Native() {
		st.Median = float64((float32(lo) + float32(hi)) / 2)
	} else {
		st.Median = (lo + hi) / 2
	}
	return st, nil
}

// pick finds, for each target, the 16-bit digit at shift whose bucket holds
// the target's rank, and narrows the rank to that bucket.
func pick(hist *[2][1 << 16]uint64, ranks *[2]uint64, prefix *[2]uint64, shift int) {
	for t := range 2 {
		var cum uint64
		for digit, n := range hist[t] {
			if ranks[t] < cum+n {
				ranks[t] -= cum
				prefix[t] |= uint64(digit) << shift
				break
			}
			cum += n
		}
	}
}

// sortKey maps a float64 to a uint64 with the same order.
func sortKey(v float64) uint64 {
	b := math.Float64bits(v)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

func fromSortKey(k uint64) float64 {
	if k>>63 != 0 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// dataDesc describes the primary data array.
type dataDesc struct {
	PixelFormat
	offset       int64
	count        int64
	bytesPerElem int
}

func newDataDesc(h *Header) (*dataDesc, error) {
	pf, err := ParsePixelFormat(h)
	if err != nil {
		return nil, err
	}
	d := &dataDesc{PixelFormat: pf, offset: h.Size(), bytesPerElem: pf.BytesPerPixel()}
	naxis, err := h.Int("NAXIS")
	if err != nil {
		return nil, err
	}
	if naxis < 0 || naxis > 999 {
		return nil, fmt.Errorf("keyword NAXIS: %d out of range: %w", naxis, ErrBadValue)
	}
	d.count = 0
	if naxis > 0 {
		d.count = 1
	}
	for i := int64(1); i <= naxis; i++ {
		key := fmt.Sprintf("NAXIS%d", i)
		n, err := h.Int(key)
		if err != nil {
			return nil, err
		}
		if n < 0 || n > MaxAxisLength || d.count > 0 && n > (1<<50)/d.count {
			return nil, fmt.Errorf("keyword %s = %d: out of range: %w", key, n, ErrBadValue)
		}
		d.count *= n
	}
	return d, nil
}

func (d *dataDesc) float32Native() bool { return d.BitPix == -32 && !d.Scaled() }

var errTruncated = errors.New("data shorter than the header says")

// scan calls fn with every valid pixel value, in file order.
func (d *dataDesc) scan(ctx context.Context, r io.ReaderAt, fn func(float64)) error {
	sr := io.NewSectionReader(r, d.offset, d.count*int64(d.bytesPerElem))
	// A multiple of every element size.
	buf := make([]byte, 1<<16)
	left := d.count * int64(d.bytesPerElem)
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := io.ReadFull(sr, buf[:n]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return errTruncated
			}
			return err
		}
		left -= n
		for off := 0; off < int(n); off += d.bytesPerElem {
			if v, ok := d.decode(buf[off:]); ok {
				fn(v)
			}
		}
	}
	return nil
}

// decode returns a pixel's physical value, and false for pixels that carry
// no measurement (BLANK, NaN or exactly 0, as VAST's statistics skip them).
func (d *dataDesc) decode(b []byte) (float64, bool) {
	v, ok := d.Value(b)
	if !ok || math.IsNaN(v) || v == 0 {
		return 0, false
	}
	return v, true
}
