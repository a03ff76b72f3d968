// Package association is the end-to-end test of source association through
// the service: processing, adding images and restoring a run change real
// sources, and restore gives back exactly the pre-addition products.
package association
