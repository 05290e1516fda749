package loader

import (
	"os"
	"testing"
)

// FuzzLoadPT feeds arbitrary bytes to the .pt loader: it must return a
// checkpoint or an error, never panic or allocate beyond what the input
// justifies, and a checkpoint it returns must be self-consistent.
// Seeds: loader/testdata/fuzz/FuzzLoadPT (tiny real files and crafted
// pickles) plus the small fixtures.
func FuzzLoadPT(f *testing.F) {
	for _, name := range []string{"views_legacy.pt", "dtypes_legacy.pt", "renamed_folder.pt", "torch2_bigendian.pt"} {
		if b, err := os.ReadFile("../fixtures/pt/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		IsPT(data)
		ck, err := LoadPTBytes("fuzz.pt", data)
		if err != nil {
			if ck != nil {
				t.Fatal("checkpoint and error")
			}
			return
		}
		if len(ck.Names) != len(ck.Tensors) {
			t.Fatalf("%d names, %d tensors", len(ck.Names), len(ck.Tensors))
		}
		for _, n := range ck.Names {
			tt := ck.Tensors[n]
			if tt == nil || len(tt.Data) != tt.NumElements() {
				t.Fatalf("%s: %+v", n, tt)
			}
		}
	})
}
