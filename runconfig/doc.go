// Package runconfig reads a run's configuration, written in the YAML format
// of the ASKAP VAST pipeline, into typed settings and the domain's
// RunConfig. Parsing is strict (unknown keys and wrong types are errors, every
// problem is reported at once) and fills in VAST's defaults, so that the
// settings digest the domain compares when images are added depends only on
// setting values, never on how the file was written.
package runconfig
