// Package pipeline is the processing job of a run: it reads each image's
// FITS header, noise and background maps and selavy catalogue, builds
// VAST-style measurements, and writes them as content-addressed Parquet
// products (one file per image, plus images, bands and sky regions). Source
// association plugs in through the Associator seam.
//
// Sub-packages fits and selavy read the input formats and check every
// number they read for what it may hold; inputs opens the files, beneath the
// images root and only regular files, whatever changed since the
// configuration was checked.
package pipeline
