// Package fits reads what the pipeline needs from FITS files: the primary
// header (80-character cards in 2880-byte blocks up to END), the facts about
// an image that VAST records (observation time, restoring beam, centre,
// frequency, field of view) and robust statistics of a noise map's pixels.
// What it extracts is checked for what it may be (a positive beam and pixel
// scale, a reference point on the sky, axes of at most MaxAxisLength), so
// a hostile header fails with the keyword named instead of reaching the
// science.
//
// It is deliberately small: primary HDUs only, no CONTINUE long strings, and
// the WCS celestial projections the survey uses (SIN, plus TAN and ARC) with
// a linear fallback for anything else.
package fits
