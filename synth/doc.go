// Package synth generates synthetic survey inputs for tests and benchmarks:
// per epoch a small but valid FITS image with its noise and mean maps, and
// a selavy component catalogue laid out like the real ones. Output is a
// function of the options alone (seeded), and the truth (which sources are
// variable, which appear late) is returned so tests can check results.
package synth
