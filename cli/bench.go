package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/bench"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/association"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
)

var benchHelp = help{
	usage: []string{"bench associate [--images N] [--sources M] [--jitter ARCSEC] [--method basic|advanced|deruiter] [--monitor [--pixels N]] [--pair-metrics=true|false] [--workers N] [--workers-io N] [--seed S] [--dir DIR] [--cpuprofile FILE]",
		"bench http|restore|projections|forced [FLAGS]"},
	description: `
Generates a synthetic survey (N images of the same field, M sources of
which some vary and some appear after the first image, positions scattered
by --jitter), processes it as a run would (measurements, then association
with --method, VAST's basic, advanced or de Ruiter association, at the
default settings) and reports how long each part took, measurements per
second, and the peak memory. With --monitor the images hold their sources
(N x N pixels of 2.5 arcsec, the field sized to fit) and association
includes forced extraction of the sources each image missed.

--pair-metrics (variability.pair_metrics, on by default as in VAST) adds
the two-epoch metrics of every pair of each source's measurements and the
measurement_pairs product (N(N-1)/2 pairs per source of N measurements:
about 45 million for 100 images x 10,000 sources); their time is reported
apart. --workers and --workers-io are processing.num_workers and
num_workers_io (0: VAST's defaults). --cpuprofile writes a CPU profile of
the processing for 'go tool pprof'.

Memory is the Go runtime's total mapped memory (runtime/metrics
/memory/classes/total:bytes, close to the resident size), sampled every
5 ms: over the whole processing, and over association alone (memory is
returned to the system before it starts, so that figure is association's).

The survey is written to --dir, or to a temporary directory removed
afterwards.

'bench http', 'bench restore' and 'bench projections' measure the service
itself: commands over HTTP under load, restore time at several run sizes,
and the rebuild of the read models; 'bench forced' times forced extraction
on a large image. Each has its own --help.`,
	examples: `
piperun bench associate --images 100 --sources 10000
piperun bench associate --images 100 --sources 10000 --pair-metrics=false
piperun bench associate --images 100 --sources 10000 --method deruiter
piperun bench associate --images 10 --sources 1000 --jitter 2
piperun bench associate --images 20 --sources 2000 --monitor`,
}

// cmdBench runs a benchmark: association here, the service's own in
// speedBenchmarks.
func cmdBench(e *env, args []string) error {
	if len(args) > 0 {
		if run, ok := speedBenchmarks[args[0]]; ok {
			e.path += " " + args[0]
			return run(e, args[1:])
		}
	}
	fs := e.flagSet()
	images := fs.Int("images", 100, "number of images `N`")
	sources := fs.Int("sources", 10000, "number of sources `M`")
	jitter := fs.Float64("jitter", 0.5, "positional scatter per image, in `ARCSEC`")
	method := fs.String("method", runconfig.MethodBasic, "association `METHOD`: basic, advanced or deruiter")
	seed := fs.Uint64("seed", 1, "random `SEED`; equal options give equal surveys")
	dir := fs.String("dir", "", "`DIR` to write the survey and products to (default: a temporary directory)")
	monitor := fs.Bool("monitor", false, "also run forced extraction (source_monitoring.monitor), on images holding their sources")
	pixels := fs.Int("pixels", 2048, "image side `N` in pixels of 2.5 arcsec with --monitor")
	pairMetrics := fs.Bool("pair-metrics", true, "compute measurement pair metrics and the measurement_pairs product")
	workers := fs.Int("workers", 0, "processing.num_workers `N` (0: one less than the cores)")
	workersIO := fs.Int("workers-io", 0, "processing.num_workers_io `N` (0: VAST's default, 5)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the processing to `FILE`")
	pos, err := e.parse(fs, benchHelp, args, 1, 1, "what to time: associate")
	if err != nil {
		return err
	}
	if pos[0] != "associate" {
		return usagef("unknown benchmark %q: associate, http, restore, projections or forced", pos[0])
	}
	if *images < 1 || *sources < 1 || *jitter < 0 || *workers < 0 || *workersIO < 0 {
		return usagef("--images and --sources must be at least 1, --jitter, --workers and --workers-io not negative")
	}
	if *pixels < 1 || *pixels > 32768 {
		return usagef("--pixels must be between 1 and 32768")
	}
	switch *method {
	case runconfig.MethodBasic, runconfig.MethodAdvanced, runconfig.MethodDeRuiter:
	default:
		return usagef("--method must be basic, advanced or deruiter, not %q", *method)
	}
	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "piperun-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	imagesDir := filepath.Join(root, "images")

	t0 := time.Now()
	opts := synth.Options{Images: *images, Sources: *sources, Seed: *seed, JitterArcsec: *jitter}
	if *jitter == 0 {
		// synth reads 0 as its default; a tiny scatter is as good as none.
		opts.JitterArcsec = 1e-9
	}
	if *monitor {
		opts.InjectSources, opts.Pixels = true, *pixels
		opts.FieldRadiusDeg = bench.ForcedFieldRadiusDeg(*pixels, 2.5)
	}
	sv, err := synth.Generate(imagesDir, opts)
	if err != nil {
		return fmt.Errorf("generate survey: %w", err)
	}
	components := 0
	for _, im := range sv.Images {
		components += im.Components
	}
	fmt.Fprintf(e.stdout, "survey: %d images x %d sources (jitter %g arcsec), %d catalogue components, generated in %s\n",
		*images, *sources, *jitter, components, time.Since(t0).Round(time.Millisecond))

	text := runconfig.Render(sv.Inputs(), "bench")
	if *monitor {
		text = strings.Replace(text, "  monitor: false\n", "  monitor: true\n", 1)
	}
	cfg, err := runconfig.Parse([]byte(text))
	if err != nil {
		return fmt.Errorf("survey configuration: %w", err)
	}
	cfg.SourceAssociation.Method = *method
	cfg.Variability.PairMetrics = *pairMetrics
	cfg.Processing.NumWorkers = *workers
	if *workersIO > 0 {
		cfg.Processing.NumWorkersIO = *workersIO
	}
	settings, err := association.SettingsFromConfig(cfg.Domain())
	if err != nil {
		return fmt.Errorf("survey configuration: %w", err)
	}
	settings.Method = cfg.SourceAssociation.Method
	settings.PairMetrics = cfg.Variability.PairMetrics
	settings.Workers = cfg.Processing.NumWorkers
	measSettings, err := pipeline.SettingsFromConfig(cfg.Domain())
	if err != nil {
		return fmt.Errorf("survey configuration: %w", err)
	}
	measSettings.NumWorkers, measSettings.NumWorkersIO = cfg.Processing.NumWorkers, cfg.Processing.NumWorkersIO
	store, err := artifacts.New(filepath.Join(root, "artifacts"))
	if err != nil {
		return err
	}

	mem := newMemSampler()
	defer mem.stop()
	timed := &timedAssociator{inner: association.Associator{Settings: &settings}, mem: mem}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	log := &benchLog{}
	t1 := time.Now()
	p, err := pipeline.Process(e.ctx, store, pipeline.Job{
		Run: "bench", Config: cfg.Domain(), ImagesRoot: imagesDir, Associate: timed, Settings: &measSettings,
	}, log)
	if err != nil {
		return fmt.Errorf("process survey: %w", err)
	}
	total := time.Since(t1)
	processPeak := mem.stop()
	n := p.Figures.NSelavyMeasurements
	measure := total - timed.took
	fmt.Fprintf(e.stdout, "measurements: %d read from the catalogues and stored in %s (%.0f meas/s)\n",
		n, measure.Round(time.Millisecond), float64(n)/measure.Seconds())
	fmt.Fprintf(e.stdout, "association (%s): %d measurements in %s (%.0f meas/s): %d sources, %d new; peak memory %s\n",
		*method, n, timed.took.Round(time.Millisecond), float64(n)/timed.took.Seconds(), p.Figures.NSources, p.Figures.NNewSources, mib(timed.peak))
	if *monitor {
		fmt.Fprintf(e.stdout, "forced extraction (in association): %d forced measurements\n", p.Figures.NForcedMeasurements)
	}
	if a, ok := pipeline.FindArtifact(p, association.MeasurementPairsProduct); ok {
		fmt.Fprintf(e.stdout, "%s (%s of association; %s, %d workers, batches of %d MB)\n",
			log.pairs, association.MeasurementPairsProduct, mib(uint64(a.Size)), pipeline.Workers(settings.Workers), settings.MaxPartitionMB)
	} else {
		fmt.Fprintf(e.stdout, "measurement pairs: off\n")
	}
	fmt.Fprintf(e.stdout, "processing: %s in all; peak memory %s\n", total.Round(time.Millisecond), mib(processPeak))
	return nil
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// timedAssociator times the association and samples its peak memory.
type timedAssociator struct {
	inner pipeline.Associator
	mem   *memSampler
	took  time.Duration
	peak  uint64
}

func (t *timedAssociator) Associate(ctx context.Context, store *artifacts.Store, in pipeline.AssociationInput, log pipeline.Logger) (pipeline.AssociationResult, error) {
	debug.FreeOSMemory()
	t.mem.resetPhase()
	start := time.Now()
	res, err := t.inner.Associate(ctx, store, in, log)
	t.took = time.Since(start)
	t.peak = t.mem.resetPhase()
	return res, err
}

// memSampler records the peak of the Go runtime's total mapped memory,
// overall and since the last resetPhase.
type memSampler struct {
	overall, phase atomic.Uint64
	done           chan struct{}
	wg             sync.WaitGroup
	once           sync.Once
}

const memMetric = "/memory/classes/total:bytes"

func newMemSampler() *memSampler {
	m := &memSampler{done: make(chan struct{})}
	m.sample()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *memSampler) sample() uint64 {
	s := []metrics.Sample{{Name: memMetric}}
	metrics.Read(s)
	v := s[0].Value.Uint64()
	for _, peak := range []*atomic.Uint64{&m.overall, &m.phase} {
		for {
			old := peak.Load()
			if v <= old || peak.CompareAndSwap(old, v) {
				break
			}
		}
	}
	return v
}

// resetPhase returns the phase's peak (including now) and starts a new
// phase at the current value.
func (m *memSampler) resetPhase() uint64 {
	m.sample()
	peak := m.phase.Load()
	s := []metrics.Sample{{Name: memMetric}}
	metrics.Read(s)
	m.phase.Store(s[0].Value.Uint64())
	return peak
}

// stop ends sampling and returns the overall peak.
func (m *memSampler) stop() uint64 {
	m.once.Do(func() {
		close(m.done)
		m.wg.Wait()
	})
	m.sample()
	return m.overall.Load()
}

// benchLog drops the job's log lines but the measurement pairs' one: the
// benchmark prints its own.
type benchLog struct {
	mu    sync.Mutex
	pairs string
}

func (*benchLog) Debugf(string, ...any) {}
func (l *benchLog) Infof(format string, args ...any) {
	if strings.HasPrefix(format, "measurement pairs:") {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.pairs = fmt.Sprintf(format, args...)
	}
}
func (*benchLog) Warnf(string, ...any) {}
