// Package association is the VAST pipeline's basic source association: it
// groups the measurements of a run's images into sources, image by image in
// time order (epoch by epoch in epoch mode), matching each measurement to
// the nearest source within the association radius, forking a source when
// several measurements of one step claim it, and writes VAST's sources,
// associations and relations products with the sources' aggregate metrics.
// Associator plugs it into pipeline.Process.
package association
