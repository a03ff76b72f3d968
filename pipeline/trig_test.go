package pipeline

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

const bigPrec = 300

// bigSinCos evaluates sin and cos by their Taylor series in 300-bit
// arithmetic after reducing by a 300-bit π/2, then rounds to float64: the
// correctly rounded reference.
func bigSinCos(x float64) (float64, float64) {
	pi, _, _ := big.ParseFloat("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706798214808651328230664709384460955058223172535940812848111745028410270193852110555964462294895493038196", 10, bigPrec, big.ToNearestEven)
	halfPi := new(big.Float).SetPrec(bigPrec).Quo(pi, big.NewFloat(2))
	bx := new(big.Float).SetPrec(bigPrec).SetFloat64(x)
	kf, _ := new(big.Float).Quo(bx, halfPi).Float64()
	k := math.RoundToEven(kf)
	r := new(big.Float).SetPrec(bigPrec).Sub(bx, new(big.Float).SetPrec(bigPrec).Mul(halfPi, big.NewFloat(k)))
	r2 := new(big.Float).SetPrec(bigPrec).Mul(r, r)
	sin := new(big.Float).SetPrec(bigPrec)
	cos := new(big.Float).SetPrec(bigPrec)
	termS := new(big.Float).SetPrec(bigPrec).Set(r)
	termC := new(big.Float).SetPrec(bigPrec).SetInt64(1)
	for n := 1; n < 60; n++ {
		sin.Add(sin, termS)
		cos.Add(cos, termC)
		termS.Mul(termS, r2).Quo(termS, big.NewFloat(float64(-(2*n)*(2*n+1))))
		termC.Mul(termC, r2).Quo(termC, big.NewFloat(float64(-(2*n-1)*(2*n))))
	}
	s, _ := sin.Float64()
	c, _ := cos.Float64()
	switch int64(k) & 3 {
	case 1:
		return c, -s
	case 2:
		return -s, -c
	case 3:
		return -c, s
	}
	return s, c
}

func TestCorrectlyRoundedSinCos(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	inputs := []float64{0.5, -0.5235987755982988, 1e-9, -3e-12, math.Pi / 2, math.Pi, 2 * math.Pi, 6.283, 100, -1000.25}
	// Arguments at the edges of the term-count ranges.
	for _, lim := range termLimits {
		inputs = append(inputs, lim, -lim*0.999, lim*1.001)
	}
	for range 400 {
		inputs = append(inputs, (rng.Float64()*2-1)*2*math.Pi, (rng.Float64()*2-1)*1e-6, (rng.Float64()*2-1)*0.6)
	}
	var goWrong int
	for _, x := range inputs {
		s, c := bigSinCos(x)
		if got := crSin(x); got != s {
			t.Fatalf("crSin(%v) = %v, want %v", x, got, s)
		}
		if got := crCos(x); got != c {
			t.Fatalf("crCos(%v) = %v, want %v", x, got, c)
		}
		if math.Sin(x) != s || math.Cos(x) != c {
			goWrong++
		}
	}
	t.Logf("math.Sin/Cos differed from the correctly rounded value for %d of %d inputs", goWrong, len(inputs))
	if crSin(0) != 0 || !math.Signbit(crSin(math.Copysign(0, -1))) || crCos(0) != 1 || !math.IsNaN(crSin(math.NaN())) {
		t.Error("special values")
	}
}

func TestPio2Split(t *testing.T) {
	want, _, _ := big.ParseFloat("1.57079632679489661923132169163975144209858469968755291048747229615390820314310449931401741267105853399107404326", 10, bigPrec, big.ToNearestEven)
	sum := new(big.Float).SetPrec(bigPrec)
	for _, p := range pio2 {
		sum.Add(sum, new(big.Float).SetPrec(bigPrec).SetFloat64(p))
	}
	diff, _ := new(big.Float).Sub(sum, want).Float64()
	if math.Abs(diff) > 1e-48 {
		t.Fatalf("pio2 parts sum to π/2 %+g", diff)
	}
}

func TestAcosNearOne(t *testing.T) {
	for _, x := range []float64{1, math.Nextafter(1, 0), 1 - 1e-10, 0.9, 0.3, -1} {
		got := acos(x)
		ref := math.Acos(x)
		if x > 0.5 && x < 1 {
			// cos(acos(x)) must give back x to high relative accuracy in 1-x.
			back := 1 - 2*math.Pow(math.Sin(got/2), 2)
			if math.Abs((1-back)-(1-x)) > 1e-12*(1-x) {
				t.Errorf("acos(%v) = %v: 1-cos = %v, want %v", x, got, 1-back, 1-x)
			}
		} else if math.Abs(got-ref) > 1e-15 {
			t.Errorf("acos(%v) = %v, want %v", x, got, ref)
		}
	}
}
