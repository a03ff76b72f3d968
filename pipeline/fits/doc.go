// Package fits reads what the pipeline needs from FITS files: the primary
// header (80-character cards in 2880-byte blocks up to END), the facts about
// an image that VAST records (observation time, restoring beam, centre,
// frequency, field of view) and robust statistics of a noise map's pixels.
//
// It is deliberately small: primary HDUs only, no CONTINUE long strings, and
// the WCS celestial projections the survey uses (SIN, plus TAN and ARC) with
// a linear fallback for anything else.
package fits
