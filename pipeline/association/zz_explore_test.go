package association

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/internal/testdata"
)

func TestZZDump(t *testing.T) {
	vast := testdata.VASTDir(t)
	for _, n := range []string{"associations.parquet", "relations.parquet", "sources.parquet"} {
		f, err := os.Open(filepath.Join(vast, "expected", "basic-association", n))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("==", n)
		r := parquet.NewGenericReader[any](pf)
		rows := make([]any, 100)
		k, _ := r.Read(rows)
		for _, row := range rows[:k] {
			fmt.Printf("%v\n", row)
		}
	}
}
