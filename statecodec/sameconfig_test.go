package statecodec

import (
	"reflect"
	"testing"

	"github.com/piperun/piperun/domain"
)

// TestSameConfigIsDeepEqual checks sameConfig against reflect.DeepEqual
// on configurations that differ in one field at a time, every field found
// by reflection: a field added to RunConfig that sameConfig ignores fails
// here.
func TestSameConfigIsDeepEqual(t *testing.T) {
	base := domain.RunConfig{YAML: "run: x\n", SettingsDigest: "abc",
		Inputs: domain.Inputs{Images: []string{"a.fits"}, Selavy: []string{"a.txt"}, Noise: []string{"a.noise"}, Background: []string{"a.bkg"}}}
	variants := []domain.RunConfig{base}
	var walk func(v reflect.Value, set func(func(reflect.Value)))
	walk = func(v reflect.Value, set func(func(reflect.Value))) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				i := i
				walk(v.Field(i), func(f func(reflect.Value)) { set(func(c reflect.Value) { f(c.Field(i)) }) })
			}
		case reflect.String:
			set(func(c reflect.Value) { c.SetString(c.String() + "!") })
			set(func(c reflect.Value) { c.SetString("") })
		case reflect.Slice:
			set(func(c reflect.Value) { c.Set(reflect.Zero(c.Type())) })
			set(func(c reflect.Value) { c.Set(reflect.MakeSlice(c.Type(), 0, 0)) })
			set(func(c reflect.Value) { c.Set(reflect.Append(c, reflect.ValueOf("more"))) })
			set(func(c reflect.Value) {
				s := reflect.MakeSlice(c.Type(), 1, 1)
				s.Index(0).SetString("other")
				c.Set(s)
			})
		default:
			t.Fatalf("RunConfig has a field of kind %s: sameConfig and this test need to learn it", v.Kind())
		}
	}
	walk(reflect.ValueOf(&base).Elem(), func(change func(reflect.Value)) {
		c := base.Clone()
		change(reflect.ValueOf(&c).Elem())
		variants = append(variants, c)
	})
	if len(variants) < 20 {
		t.Fatalf("only %d variants: the walk missed fields", len(variants))
	}
	for i := range variants {
		for j := range variants {
			a, b := variants[i], variants[j]
			if got, want := sameConfig(&a, &b), reflect.DeepEqual(a, b); got != want {
				t.Errorf("sameConfig(%#v, %#v) = %v, reflect.DeepEqual says %v", a, b, got, want)
			}
		}
	}
}
