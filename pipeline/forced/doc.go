// Package forced measures the flux of sources at fixed positions on an
// image where the source finder did not detect them: VAST's forced
// extraction, as its forced_phot package does it. The image's restoring
// beam, an elliptical Gaussian of fixed shape centred on the position, is
// fitted to the background-subtracted image (image − meanMap) weighted by
// the noise map; only the amplitude is free. Sources closer together than
// a threshold are fitted together.
//
// Results follow forced_phot 0.2.0 as the VAST pipeline drives it (its
// numba path): the same cut-outs, rounding, edge filter, clustering and
// uncertainties, so that fluxes agree with VAST's to rounding.
package forced
