package association

import (
	"context"
	"fmt"
	"testing"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testdata"
	"github.com/piperun/piperun/pipeline"
)

type nolog struct{}

func (nolog) Debugf(string, ...any) {}
func (nolog) Infof(string, ...any)  {}
func (nolog) Warnf(string, ...any)  {}

type dump struct{}

func (dump) Associate(ctx context.Context, store *artifacts.Store, in pipeline.AssociationInput, log pipeline.Logger) (pipeline.AssociationResult, error) {
	for _, im := range in.Images {
		fmt.Println(im.Image.ID, im.Image.Name, im.Image.DateTime, im.Image.BeamBMaj*3600, im.Image.BeamBMin*3600)
		ms, err := pipeline.ReadMeasurements(ctx, store, im.Measurements.Digest)
		if err != nil {
			return pipeline.AssociationResult{}, err
		}
		for _, m := range ms {
			fmt.Printf("  %d %s %.7f %.7f unc=%.10g/%.10g peak=%.6f int=%.6f snr=%.4f sib=%v isl=%s\n", m.ID, m.ComponentID, m.RA, m.Dec, m.UncertaintyEW, m.UncertaintyNS, m.FluxPeak, m.FluxInt, m.SNR, m.HasSiblings, m.IslandID)
		}
	}
	return pipeline.AssociationResult{}, nil
}

func TestScratch(t *testing.T) {
	var in domain.Inputs
	for _, e := range []string{"01", "02", "03", "04"} {
		in.Images = append(in.Images, "data/epoch"+e+".fits")
		in.Selavy = append(in.Selavy, "data/epoch"+e+".selavy.components.txt")
		in.Noise = append(in.Noise, "data/epoch"+e+".noiseMap.fits")
		in.Background = append(in.Background, "data/epoch"+e+".meanMap.fits")
	}
	store, _ := artifacts.New(t.TempDir())
	_, err := pipeline.Process(context.Background(), store, pipeline.Job{Run: "x", ImagesRoot: testdata.VASTDir(t), Config: domain.RunConfig{Inputs: in}, Associate: dump{}}, nolog{})
	if err != nil {
		t.Fatal(err)
	}
}
