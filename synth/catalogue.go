package synth

import (
	"math"
	"strconv"
	"strings"
)

// field is one catalogue column: its name, unit, text width and how to
// format a component's value.
type field struct {
	name, unit string
	width      int
	format     func(b []byte, c *component) []byte
}

func num(prec int, v func(c *component) float64) func([]byte, *component) []byte {
	return func(b []byte, c *component) []byte { return strconv.AppendFloat(b, v(c), 'f', prec, 64) }
}

func text(v string) func([]byte, *component) []byte {
	return func(b []byte, _ *component) []byte { return append(b, v...) }
}

// fields lists the columns of a selavy text catalogue, in its order.
var fields = []field{
	{"island_id", "--", 13, func(b []byte, c *component) []byte {
		return strconv.AppendInt(append(b, "island_"...), int64(c.island), 10)
	}},
	{"component_id", "--", 16, func(b []byte, c *component) []byte {
		return append(strconv.AppendInt(append(b, "component_"...), int64(c.id), 10), 'a')
	}},
	{"component_name", "", 15, func(b []byte, c *component) []byte { return jname(b, c.ra, c.dec) }},
	{"ra_hms_cont", "", 11, func(b []byte, c *component) []byte { return sexagesimal(b, c.ra/15, false, 1) }},
	{"dec_dms_cont", "", 12, func(b []byte, c *component) []byte { return sexagesimal(b, c.dec, true, 0) }},
	{"ra_deg_cont", "[deg]", 12, num(6, func(c *component) float64 { return c.ra })},
	{"dec_deg_cont", "[deg]", 12, num(6, func(c *component) float64 { return c.dec })},
	{"ra_err", "[arcsec]", 8, num(2, func(c *component) float64 { return c.raErr })},
	{"dec_err", "[arcsec]", 8, num(2, func(c *component) float64 { return c.decErr })},
	{"freq", "[MHz]", 6, num(1, func(*component) float64 { return FrequencyHz / 1e6 })},
	{"flux_peak", "[mJy/beam]", 11, num(6, func(c *component) float64 { return c.peak })},
	{"flux_peak_err", "[mJy/beam]", 13, num(6, func(c *component) float64 { return c.peakErr })},
	{"flux_int", "[mJy]", 11, num(6, func(c *component) float64 { return c.intg })},
	{"flux_int_err", "[mJy]", 12, num(6, func(c *component) float64 { return c.intErr })},
	{"maj_axis", "[arcsec]", 8, num(2, func(c *component) float64 { return c.maj })},
	{"min_axis", "[arcsec]", 8, num(2, func(c *component) float64 { return c.min })},
	{"pos_ang", "[deg]", 7, num(2, func(c *component) float64 { return c.pa })},
	{"maj_axis_err", "[arcsec]", 12, num(2, func(c *component) float64 { return c.majErr })},
	{"min_axis_err", "[arcsec]", 12, num(2, func(c *component) float64 { return c.minErr })},
	{"pos_ang_err", "[deg]", 11, num(2, func(c *component) float64 { return c.paErr })},
	{"maj_axis_deconv", "[arcsec]", 15, num(2, func(c *component) float64 { return c.majDec })},
	{"min_axis_deconv", "[arcsec]", 15, num(2, func(c *component) float64 { return c.minDec })},
	{"pos_ang_deconv", "[deg]", 14, num(2, func(c *component) float64 { return c.paDec })},
	{"maj_axis_deconv_err", "[arcsec]", 19, num(2, func(*component) float64 { return 0 })},
	{"min_axis_deconv_err", "[arcsec]", 19, num(2, func(*component) float64 { return 0 })},
	{"pos_ang_deconv_err", "[deg]", 18, num(2, func(*component) float64 { return 0 })},
	{"chi_squared_fit", "--", 15, num(6, func(c *component) float64 { return c.chi2 })},
	{"rms_fit_gauss", "[mJy/beam]", 13, num(6, func(c *component) float64 { return c.rmsFit })},
	{"spectral_index", "--", 14, num(2, func(c *component) float64 { return c.spectralIdx })},
	{"spectral_curvature", "--", 18, num(2, func(*component) float64 { return -99 })},
	{"spectral_index_err", "--", 18, num(2, func(*component) float64 { return 0 })},
	{"spectral_curvature_err", "--", 22, num(2, func(*component) float64 { return 0 })},
	{"rms_image", "[mJy/beam]", 10, num(6, func(c *component) float64 { return c.rms })},
	{"has_siblings", "", 12, text("0")},
	{"fit_is_estimate", "", 15, text("0")},
	{"spectral_index_from_TT", "", 22, text("1")},
	{"flag_c4", "", 7, text("0")},
}

func pad(b []byte, n int) []byte {
	for range n {
		b = append(b, ' ')
	}
	return b
}

// textCatalogue writes the fixed-width layout: '#' lines of names and
// units, then one right-aligned row per component, and the empty comment
// column at the end as selavy leaves it.
func textCatalogue(cs []component) []byte {
	lineLen := 12
	for _, f := range fields {
		lineLen += f.width + 1
	}
	out := make([]byte, 0, (len(cs)+2)*(lineLen+8))
	// The two header lines are laid out like the rows, each name and unit
	// ending where its column's values end; the '#' takes the place of the
	// first space, as in selavy's files. Readers that infer the column
	// edges from the header (pandas' read_fwf, as VAST uses) depend on it.
	line := len(out)
	for _, f := range fields {
		out = append(pad(out, f.width-len(f.name)+1), f.name...)
	}
	out[line] = '#'
	out = append(out, "    comment\n"...)
	line = len(out)
	for _, f := range fields {
		out = append(pad(out, f.width-len(f.unit)+1), f.unit...)
	}
	out[line] = '#'
	out = append(out, '\n')
	var scratch []byte
	for i := range cs {
		for _, f := range fields {
			scratch = f.format(scratch[:0], &cs[i])
			out = append(pad(out, max(1, f.width-len(scratch)+1)), scratch...)
		}
		out = append(out, "           \n"...)
	}
	return out
}

// csvFields is the CASDA CSV column order; names map to the text columns
// (CASDA writes spectral_index_from_tt in lower case).
var csvFields = strings.Split("id,catalogue_id,first_sbid,other_sbids,project_id,island_id,component_id,component_name,ra_hms_cont,dec_dms_cont,ra_deg_cont,dec_deg_cont,ra_err,dec_err,freq,flux_peak,flux_peak_err,flux_int,flux_int_err,maj_axis,min_axis,pos_ang,maj_axis_err,min_axis_err,pos_ang_err,maj_axis_deconv,min_axis_deconv,maj_axis_deconv_err,pos_ang_deconv,min_axis_deconv_err,pos_ang_deconv_err,chi_squared_fit,rms_fit_gauss,spectral_index,spectral_index_err,spectral_curvature,spectral_curvature_err,rms_image,has_siblings,fit_is_estimate,spectral_index_from_tt,flag_c4,comment,quality_level,released_date", ",")

func csvCatalogue(cs []component) []byte {
	byName := map[string]field{}
	for _, f := range fields {
		byName[strings.ToLower(f.name)] = f
	}
	extra := map[string]func([]byte, *component) []byte{
		"id":            func(b []byte, c *component) []byte { return strconv.AppendInt(b, int64(c.id), 10) },
		"catalogue_id":  text("1"),
		"first_sbid":    text("1"),
		"other_sbids":   text(""),
		"project_id":    text("1"),
		"comment":       text(""),
		"quality_level": text("NOT_VALIDATED"),
		"released_date": text("2020-11-18T08:43:42.979Z"),
	}
	out := append([]byte(strings.Join(csvFields, ",")), '\n')
	for i := range cs {
		for j, name := range csvFields {
			if j > 0 {
				out = append(out, ',')
			}
			if f, ok := byName[name]; ok {
				out = f.format(out, &cs[i])
			} else {
				out = extra[name](out, &cs[i])
			}
		}
		out = append(out, '\n')
	}
	return out
}

// sexagesimal formats v (hours or degrees) as [±]dd:mm:ss[.f].
func sexagesimal(b []byte, v float64, signed bool, decimals int) []byte {
	if signed {
		if v < 0 {
			b = append(b, '-')
		} else {
			b = append(b, '+')
		}
	}
	v = math.Abs(v)
	scale := math.Pow(10, float64(decimals))
	total := math.Round(v * 3600 * scale)
	whole := int64(total / scale)
	frac := int64(total) - whole*int64(scale)
	d, m, s := whole/3600, whole/60%60, whole%60
	b = two(b, d)
	b = two(append(b, ':'), m)
	b = two(append(b, ':'), s)
	if decimals > 0 {
		b = append(b, '.')
		f := strconv.FormatInt(frac, 10)
		b = append(b, strings.Repeat("0", decimals-len(f))+f...)
	}
	return b
}

func two(b []byte, v int64) []byte {
	if v < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, v, 10)
}

// jname is the IAU-style name Jhhmmss±ddmmss, truncated as selavy does.
func jname(b []byte, ra, dec float64) []byte {
	b = append(b, 'J')
	h := math.Floor(ra / 15 * 3600)
	b = two(b, int64(h)/3600)
	b = two(b, int64(h)/60%60)
	b = two(b, int64(h)%60)
	if dec < 0 {
		b = append(b, '-')
	} else {
		b = append(b, '+')
	}
	d := math.Floor(math.Abs(dec) * 3600)
	b = two(b, int64(d)/3600)
	b = two(b, int64(d)/60%60)
	return two(b, int64(d)%60)
}
