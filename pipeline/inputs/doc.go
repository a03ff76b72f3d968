// Package inputs opens a run's input files (FITS images, noise and
// background maps, selavy catalogues) beneath the images root, and only
// there: paths are resolved through an os.Root, so a symbolic link that
// leads outside the root is refused when the file is opened, however the
// tree changed since the configuration was checked. Only regular files are
// opened, and a FIFO or device is refused without blocking on it.
package inputs
