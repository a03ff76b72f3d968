package wiring

import (
	"context"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/association"
	"github.com/piperun/piperun/workers"
)

// processFunc adapts the pipeline to the processing worker: measurements,
// then VAST's basic source association.
func processFunc(store *artifacts.Store, imagesRoot string) workers.ProcessFunc {
	return func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		return pipeline.Process(ctx, store, pipeline.Job{
			Run: run, Config: cfg, ImagesRoot: imagesRoot, Previous: previous, Add: add,
			Associate: association.Associator{},
		}, log)
	}
}
