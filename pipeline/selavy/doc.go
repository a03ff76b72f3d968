// Package selavy reads component catalogues written by the Selavy source
// finder (ASKAPsoft) in its three forms: the fixed-width text file (two
// header lines starting with '#', names then units), the CASDA CSV export
// and the VOTable. Columns are found by name, so their order and any extra
// columns do not matter; a missing column, an unreadable value or a number
// its column cannot hold (not finite, a position off the sky, a negative
// error) is an error naming the file, the line and the column.
package selavy
