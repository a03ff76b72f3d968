package bench

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
)

// SurveyDir is the folder, under the images root, where the benchmarks
// write the synthetic survey their runs are configured with.
const SurveyDir = "piperun-bench"

// fixture is what a restorable run is made of: the configuration and
// products before and after an addition of one image.
type fixture struct {
	Before, After                 domain.RunConfig
	BeforeProducts, AfterProducts domain.Products
}

// surveyConfigs writes (if needed) a small synthetic survey of images+1
// epochs under imagesRoot/SurveyDir and returns valid configurations over
// its first images epochs and over all of them.
func surveyConfigs(imagesRoot string, images int) (before, after domain.RunConfig, err error) {
	sv, err := synth.Generate(filepath.Join(imagesRoot, SurveyDir), synth.Options{Images: images + 1, Sources: 20, Seed: 1})
	if err != nil {
		return before, after, err
	}
	files := make([]synth.ImageFiles, len(sv.Images))
	for i, im := range sv.Images {
		files[i] = synth.ImageFiles{
			Image: path.Join(SurveyDir, im.Image), Selavy: path.Join(SurveyDir, im.Selavy),
			Noise: path.Join(SurveyDir, im.Noise), Background: path.Join(SurveyDir, im.Background),
		}
	}
	parse := func(fs []synth.ImageFiles) (domain.RunConfig, error) {
		c, err := runconfig.Parse([]byte(runconfig.Render(synth.Inputs(fs), "bench")))
		if err == nil {
			err = c.CheckPaths(imagesRoot, true)
		}
		if err != nil {
			return domain.RunConfig{}, fmt.Errorf("benchmark configuration: %w", err)
		}
		return c.Domain(), nil
	}
	if before, err = parse(files[:images]); err != nil {
		return before, after, err
	}
	after, err = parse(files)
	return before, after, err
}

// processedFixture processes the survey as the processing worker would:
// the first images, then the last one added in add mode. Its products are
// real artifacts in store.
func processedFixture(ctx context.Context, store *artifacts.Store, imagesRoot string, images int) (fixture, error) {
	var fx fixture
	var err error
	if fx.Before, fx.After, err = surveyConfigs(imagesRoot, images); err != nil {
		return fx, err
	}
	if fx.BeforeProducts, err = pipeline.Process(ctx, store, pipeline.Job{Run: "bench", Config: fx.Before, ImagesRoot: imagesRoot}, quietLog{}); err != nil {
		return fx, fmt.Errorf("process the benchmark survey: %w", err)
	}
	prev := fx.BeforeProducts.Clone()
	if fx.AfterProducts, err = pipeline.Process(ctx, store, pipeline.Job{Run: "bench", Config: fx.After, ImagesRoot: imagesRoot, Previous: &prev, Add: true}, quietLog{}); err != nil {
		return fx, fmt.Errorf("process the benchmark survey in add mode: %w", err)
	}
	return fx, nil
}

type quietLog struct{}

func (quietLog) Debugf(string, ...any) {}
func (quietLog) Infof(string, ...any)  {}
func (quietLog) Warnf(string, ...any)  {}

// seedRestorable makes a run that can be restored: created over fx.Before,
// processed, its configuration changed to fx.After and processed again in
// add mode (which takes the backup). Each step is a command of svc, decided
// by the domain and appended as the service and its workers append them,
// snapshots included; only the processing itself is skipped, its products
// being fx's.
func seedRestorable(ctx context.Context, svc *command.Service, name string, owner domain.Actor, fx fixture) error {
	const worker = "system:processing-worker"
	jobs := [2]string{uuid.NewString(), uuid.NewString()}
	steps := []struct {
		actor  string
		decide func(r *domain.Run) ([]domain.Event, error)
	}{
		{owner.Name, func(r *domain.Run) ([]domain.Event, error) {
			return r.Create(domain.CreateRun{Name: name, Description: "seeded by piperun bench", Config: fx.Before, Actor: owner})
		}},
		{owner.Name, func(r *domain.Run) ([]domain.Event, error) {
			return r.RequestProcessing(domain.RequestProcessing{JobID: jobs[0], Log: "2024-05-01-12-00-00_log.txt", Actor: owner})
		}},
		{worker, func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(jobs[0]), nil }},
		{worker, func(r *domain.Run) ([]domain.Event, error) {
			return r.FinishProcessing(jobs[0], &fx.BeforeProducts, nil), nil
		}},
		{owner.Name, func(r *domain.Run) ([]domain.Event, error) { return r.UpdateConfig(fx.After, owner) }},
		{owner.Name, func(r *domain.Run) ([]domain.Event, error) {
			return r.RequestProcessing(domain.RequestProcessing{JobID: jobs[1], Log: "2024-05-01-13-00-00_log.txt", Actor: owner})
		}},
		{worker, func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(jobs[1]), nil }},
		{worker, func(r *domain.Run) ([]domain.Event, error) {
			return r.FinishProcessing(jobs[1], &fx.AfterProducts, nil), nil
		}},
	}
	var res command.Result
	for _, st := range steps {
		var err error
		if res, err = svc.ExecRun(ctx, name, st.actor, st.decide); err != nil {
			return fmt.Errorf("seed run %s: %w", name, err)
		}
	}
	if !res.Run.RestoreAvailable() {
		return fmt.Errorf("seed run %s: the seeded run is %s and cannot be restored", name, res.Run.Status)
	}
	return nil
}

// seedMany seeds runs name(0) .. name(n-1) with writers concurrent
// appenders, reporting progress to progress (nil: none).
func seedMany(ctx context.Context, svc *command.Service, n, writers int, name func(int) string, owner domain.Actor, fx fixture, progress func(done int)) error {
	var next, done atomic.Int64
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for range max(1, writers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := seedRestorable(ctx, svc, name(i), owner, fx); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				if d := done.Add(1); progress != nil && d%5000 == 0 {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return parent.Err()
}

// seeder is the service the benchmarks seed runs with: its own, so that
// the cache of the server under test starts empty, as after a restart. It
// keeps only the states of the runs being seeded (one per seeding
// goroutine).
func seeder(store eventstore.Store) *command.Service {
	svc := command.New(store)
	svc.CachedRuns = 128
	return svc
}
