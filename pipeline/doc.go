// Package pipeline is the processing job of a run: it reads each image's
// FITS header, noise and background maps and selavy catalogue, builds
// VAST-style measurements, and writes them as content-addressed Parquet
// products (one file per image, plus images, bands and sky regions). Source
// association plugs in through the Associator seam.
//
// Sub-packages fits and selavy read the input formats.
package pipeline
