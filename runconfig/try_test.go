package runconfig

import (
	"fmt"
	"testing"

	"github.com/piperun/piperun/domain"
)

func TestTry(t *testing.T) {
	fmt.Println(Template("my run"))
	_, err := Parse([]byte(Template("x")))
	fmt.Println(err)
	s := Render(domain.Inputs{Images: []string{"a.fits", "01", "true", "x: y", "a\nb"}, Selavy: []string{"1", "2", "3", "4", "5"}, Noise: []string{"1", "2", "3", "4", "5"}, Epochs: []string{"01", "01", "2", "01", "2"}}, "r")
	fmt.Println(s)
	c, err := Parse([]byte(s))
	fmt.Printf("%#v %v\n", c.Inputs, err)
}
