// Package association is the VAST pipeline's source association: it groups
// the measurements of a run's images into sources, image by image in time
// order (epoch by epoch in epoch mode), with VAST's three methods — basic
// (each measurement to its nearest source within the radius), advanced
// (every source within the radius, with VAST's one-to-many, many-to-one and
// many-to-many rules) and de Ruiter (advanced, with matches judged by the
// de Ruiter radius of the two positions' uncertainties) — and writes VAST's
// sources, associations and relations products with the sources' aggregate
// metrics. Associator plugs it into pipeline.Process.
package association
