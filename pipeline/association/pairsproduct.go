package association

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
)

// MeasurementPairsProduct is the name of the measurement pairs product:
// every pair of each source's measurements with its two-epoch metrics.
const MeasurementPairsProduct = "measurement_pairs.parquet"

// pairChunk is a run of sources, in id order, whose pairs are computed
// together and written as one row group. A source with more pairs than a
// batch holds is a chunk of its own, computed while it is written and
// split into row groups of a batch each.
type pairChunk struct {
	lo, hi int // e.sources[lo:hi]
	pairs  int
	big    bool
}

// pairBatchRows is how many pair rows fit in maxPartitionMB.
func pairBatchRows(maxPartitionMB int) int {
	if maxPartitionMB <= 0 {
		maxPartitionMB = DefaultSettings().MaxPartitionMB
	}
	return max(1024, maxPartitionMB<<20/int(unsafe.Sizeof(PairRow{})))
}

// pairChunks splits the sources into chunks of at most batch pairs, at
// source boundaries. The split depends on the sources alone, so the
// product's bytes do not depend on the number of workers.
func (e *engine) pairChunks(batch int) []pairChunk {
	var chunks []pairChunk
	cur := pairChunk{}
	for i, s := range e.sources {
		n := len(s.Rows)
		p := n * (n - 1) / 2
		switch {
		case p > batch:
			if cur.hi > cur.lo {
				chunks = append(chunks, cur)
			}
			chunks = append(chunks, pairChunk{lo: i, hi: i + 1, pairs: p, big: true})
			cur = pairChunk{lo: i + 1, hi: i + 1}
			continue
		case cur.pairs+p > batch && cur.hi > cur.lo:
			chunks = append(chunks, cur)
			cur = pairChunk{lo: i, hi: i}
		}
		cur.hi = i + 1
		cur.pairs += p
	}
	if cur.hi > cur.lo {
		chunks = append(chunks, cur)
	}
	return chunks
}

// pairSink receives the pair rows in product order; flush ends a row
// group.
type pairSink interface {
	write(rows []PairRow) error
	flush() error
}

// pairInputs is what pair computation needs of the run's images.
type pairInputs struct {
	names []string
	times []int64
}

func newPairInputs(images []pipeline.ImageRow) pairInputs {
	in := pairInputs{names: make([]string, len(images)), times: make([]int64, len(images))}
	for i, im := range images {
		in.names[i] = im.Name
		in.times[i] = im.DateTime.UnixMicro()
	}
	return in
}

// sourcePairMeasurements lists a source's measurements for sourcePairs.
func (e *engine) sourcePairMeasurements(s *source, in pairInputs, dst []PairMeasurement) []PairMeasurement {
	dst = dst[:0]
	for _, r := range s.Rows {
		m := &e.meas[r.Meas]
		dst = append(dst, PairMeasurement{
			ID: m.ID, Image: m.Image, Time: in.times[m.Image],
			FluxPeak: m.FluxPeak, FluxPeakErr: m.FluxPeakErr, FluxInt: m.FluxInt, FluxIntErr: m.FluxIntErr,
		})
	}
	return dst
}

func setAggregates(r *SourceRow, a PairAggregates) {
	r.VsAbsSignificantMaxPeak, r.MAbsSignificantMaxPeak = a.VsPeak, a.MPeak
	r.VsAbsSignificantMaxInt, r.MAbsSignificantMaxInt = a.VsInt, a.MInt
}

// computePairs computes the pairs of every source (rows[i] is the row of
// e.sources[i]), sets each row's aggregate pair metrics and hands the
// pairs, in source id order, to sink.
// At most workers goroutines compute, and at most workers+1 chunks of at
// most batch rows each are held at once. It returns the number of pairs.
func (e *engine) computePairs(ctx context.Context, in pairInputs, rows []SourceRow, minAbsVs float64, workers, batch int, sink pairSink) (int64, error) {
	chunks := e.pairChunks(batch)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan []PairRow, len(chunks))
	for i := range results {
		results[i] = make(chan []PairRow, 1)
	}
	slots := make(chan struct{}, workers+1)
	pool := sync.Pool{New: func() any { return make([]PairRow, 0, batch) }}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var ms []PairMeasurement
			for {
				// A slot is taken before a chunk is claimed, so chunks are
				// claimed in order and the writer's next chunk always
				// has one.
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				k := int(next.Add(1) - 1)
				if k >= len(chunks) {
					<-slots
					return
				}
				c := chunks[k]
				if c.big {
					results[k] <- nil
					continue
				}
				buf := pool.Get().([]PairRow)[:0]
				emit := func(r *PairRow) error { buf = append(buf, *r); return nil }
				for i := c.lo; i < c.hi; i++ {
					ms = e.sourcePairMeasurements(e.sources[i], in, ms)
					agg, _ := sourcePairs(e.sources[i].ID, ms, in.names, minAbsVs, emit)
					setAggregates(&rows[i], agg)
				}
				results[k] <- buf
			}
		})
	}
	defer wg.Wait()

	var n int64
	var ms []PairMeasurement
	for k, c := range chunks {
		var buf []PairRow
		select {
		case buf = <-results[k]:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if c.big {
			// Computed here, written a batch at a time.
			big := pool.Get().([]PairRow)[:0]
			emit := func(r *PairRow) error {
				big = append(big, *r)
				if len(big) < batch {
					return nil
				}
				err := writeBatch(sink, big)
				big = big[:0]
				return err
			}
			s := e.sources[c.lo]
			ms = e.sourcePairMeasurements(s, in, ms)
			agg, err := sourcePairs(s.ID, ms, in.names, minAbsVs, emit)
			if err == nil && len(big) > 0 {
				err = writeBatch(sink, big)
			}
			if err != nil {
				return 0, err
			}
			setAggregates(&rows[c.lo], agg)
			buf = big
		} else if len(buf) > 0 {
			if err := writeBatch(sink, buf); err != nil {
				return 0, err
			}
		}
		n += int64(c.pairs)
		if buf != nil {
			pool.Put(buf[:0])
		}
		<-slots
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func writeBatch(sink pairSink, rows []PairRow) error {
	if err := sink.write(rows); err != nil {
		return err
	}
	return sink.flush()
}

// parquetPairs writes pairs to a Parquet writer.
type parquetPairs struct {
	w *parquet.GenericWriter[PairRow]
}

func (p parquetPairs) write(rows []PairRow) error {
	_, err := p.w.Write(rows)
	return err
}

func (p parquetPairs) flush() error { return p.w.Flush() }

// teePairs hands the rows to every sink.
type teePairs []pairSink

func (t teePairs) write(rows []PairRow) error {
	for _, s := range t {
		if err := s.write(rows); err != nil {
			return err
		}
	}
	return nil
}

func (t teePairs) flush() error {
	for _, s := range t {
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

// writePairs computes the pairs and aggregates and writes the measurement
// pairs product; extra, when not nil, receives the rows too.
func (e *engine) writePairs(ctx context.Context, store *artifacts.Store, in pairInputs, rows []SourceRow, s Settings, extra pairSink) (domain.Artifact, int64, error) {
	var n int64
	art, err := pipeline.PutParquetStream(ctx, store, MeasurementPairsProduct, func(w *parquet.GenericWriter[PairRow]) error {
		var sink pairSink = parquetPairs{w}
		if extra != nil {
			sink = teePairs{sink, extra}
		}
		var err error
		n, err = e.computePairs(ctx, in, rows, s.PairMinAbsVs, pipeline.Workers(s.Workers), pairBatchRows(s.MaxPartitionMB), sink)
		if err != nil {
			return fmt.Errorf("measurement pairs: %w", err)
		}
		return nil
	}, pairWriterOptions()...)
	return art, n, err
}

// pairWriterOptions make the largest product cheaper to write: no page
// bounds (min/max) for the fluxes, metrics and image names, which nobody
// filters on and which cost as much as encoding them, and Snappy's fast
// encoder (still Snappy) instead of its better-compressing one.
func pairWriterOptions() []parquet.WriterOption {
	opts := []parquet.WriterOption{parquet.Compression(&fastSnappy{})}
	for _, f := range parquet.SchemaOf(PairRow{}).Fields() {
		switch f.Name() {
		case "meas_id_a", "meas_id_b", "source_id":
		default:
			opts = append(opts, parquet.SkipPageBounds(f.Name()))
		}
	}
	return opts
}

// fastSnappy is the Snappy codec with S2's fast Snappy-compatible encoder.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}
