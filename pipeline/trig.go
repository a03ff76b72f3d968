package pipeline

import "math"

// VAST computes error radii with the spherical law of cosines, whose
// result for sub-arcsecond separations is decided by the last bit of each
// sine and cosine. numpy uses the C library's sin and cos, which are
// correctly rounded; Go's math.Sin and math.Cos may be off by one unit in
// the last place. These versions evaluate in double-double arithmetic
// (about 106 bits) and round once, which gives the correctly rounded result
// except in cases so close to a rounding boundary that they do not occur in
// practice, so that error radii, and the weights built on them, are VAST's.

// dd is an unevaluated sum hi + lo with |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

func (a dd) add(b dd) dd {
	s := twoSum(a.hi, b.hi)
	t := twoSum(a.lo, b.lo)
	s.lo += t.hi
	s = quickTwoSum(s.hi, s.lo)
	s.lo += t.lo
	return quickTwoSum(s.hi, s.lo)
}

func (a dd) neg() dd { return dd{-a.hi, -a.lo} }

func (a dd) mul(b dd) dd {
	p := twoProd(a.hi, b.hi)
	p.lo += a.hi*b.lo + a.lo*b.hi
	return quickTwoSum(p.hi, p.lo)
}

func (a dd) div(b float64) dd {
	q1 := a.hi / b
	p := twoProd(q1, b)
	r := twoSum(a.hi, -p.hi)
	r.lo += a.lo - p.lo
	q2 := (r.hi + r.lo) / b
	return quickTwoSum(q1, q2)
}

// π/2 split into three doubles whose sum is π/2 to about 160 bits.
var pio2 = [3]float64{
	math.Float64frombits(0x3FF921FB54442D18),
	math.Float64frombits(0x3C91A62633145C07),
	math.Float64frombits(0xB91F1976B7ED8FBC),
}

// sinCoef[n] = (-1)^n / (2n+1)!, cosCoef[n] = (-1)^n / (2n)!: enough terms
// for |r| <= π/4 to 2^-110.
var sinCoef, cosCoef [15]dd

func init() {
	f := dd{1, 0} // 1/k!
	for k := 1; k <= 2*len(sinCoef); k++ {
		if k%2 == 1 {
			c := f
			if (k/2)%2 == 1 {
				c = c.neg()
			}
			cosCoef[k/2] = c
		} else {
			c := f
			if (k/2-1)%2 == 1 {
				c = c.neg()
			}
			sinCoef[k/2-1] = c
		}
		f = f.div(float64(k))
	}
}

// maxReduce bounds the arguments reduced in double-double; beyond it (far
// outside the angles used here) the library functions are used.
const maxReduce = 1 << 20

// reduce returns r = x - k π/2 in double-double and k mod 4.
func reduce(x float64) (dd, int) {
	k := math.RoundToEven(x * (2 / math.Pi))
	r := dd{x, 0}.add(twoProd(k, pio2[0]).neg())
	r = r.add(twoProd(k, pio2[1]).neg())
	r = r.add(dd{-k * pio2[2], 0})
	return r, int(int64(k) & 3)
}

// terms returns how many series terms make the truncation error negligible
// (below 2^-110 relative) for |r|: small arguments, such as the differences
// of nearby right ascensions, need only a few.
func terms(r float64) int {
	a := math.Abs(r)
	for i, lim := range termLimits {
		if a <= lim {
			return i + 1
		}
	}
	return len(sinCoef)
}

// termLimits[n-1] is the largest |r| for which n terms suffice: the first
// omitted term, r^(2n)/(2n)!, is below 2^-110 (for sin, r^(2n+1)/(2n+1)!
// relative to r is smaller still).
var termLimits = func() []float64 {
	var lims []float64
	fact := 1.0
	for n := 1; n < len(sinCoef); n++ {
		fact *= float64(2*n-1) * float64(2*n)
		lims = append(lims, math.Pow(math.Ldexp(fact, -110), 1/float64(2*n)))
	}
	return lims
}()

// poly evaluates c[0] + c[1] z + ... + c[n-1] z^(n-1) by Horner's rule.
func poly(c *[15]dd, n int, z dd) dd {
	acc := c[n-1]
	for i := n - 2; i >= 0; i-- {
		acc = acc.mul(z).add(c[i])
	}
	return acc
}

func sinDD(r dd) dd { return r.mul(poly(&sinCoef, terms(r.hi), r.mul(r))) }
func cosDD(r dd) dd { return poly(&cosCoef, terms(r.hi), r.mul(r)) }

// crSin is sin(x), correctly rounded.
func crSin(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > maxReduce {
		return math.Sin(x)
	}
	if x == 0 {
		return x
	}
	r, q := reduce(x)
	var v dd
	switch q {
	case 0:
		v = sinDD(r)
	case 1:
		v = cosDD(r)
	case 2:
		v = sinDD(r).neg()
	default:
		v = cosDD(r).neg()
	}
	return v.hi + v.lo
}

// crCos is cos(x), correctly rounded.
func crCos(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > maxReduce {
		return math.Cos(x)
	}
	r, q := reduce(x)
	var v dd
	switch q {
	case 0:
		v = cosDD(r)
	case 1:
		v = sinDD(r).neg()
	case 2:
		v = cosDD(r).neg()
	default:
		v = sinDD(r)
	}
	return v.hi + v.lo
}

// acos is arccos with full relative accuracy near 1, where math.Acos
// loses digits to cancellation: acos(x) = 2 asin(√((1-x)/2)), and 1-x is
// exact there.
func acos(x float64) float64 {
	if x > 0.5 && x <= 1 {
		return 2 * math.Asin(math.Sqrt((1-x)/2))
	}
	return math.Acos(x)
}
