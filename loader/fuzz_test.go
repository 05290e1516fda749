package loader

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
			if tt == nil || tt.Check() != nil {
				t.Fatalf("%s: %+v", n, tt)
			}
		}
	})
}

// FuzzPTPickle fuzzes data.pkl alone inside a well-formed zip whose
// storages data/0 … data/7 hold 64 bytes each, so that mutations reach the
// pickle machine, the torch hooks and the flattener rather than dying in
// the zip directory. Seeds: the data.pkl of every zip fixture.
func FuzzPTPickle(f *testing.F) {
	files, _ := filepath.Glob("../fixtures/pt/*.pt")
	for _, name := range files {
		zr, err := zip.OpenReader(name)
		if err != nil {
			continue
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "/data.pkl") && zf.UncompressedSize64 < 4096 {
				rc, _ := zf.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	recs := map[string][]byte{}
	for i := 0; i < 8; i++ {
		b := make([]byte, 64)
		for j := range b {
			b[j] = byte(i*64 + j)
		}
		recs[fmt.Sprintf("data/%d", i)] = b
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		ck, err := LoadPTBytes("fuzz.pt", zipPT(t, pkl, recs, zip.Store))
		if err != nil {
			return
		}
		for _, n := range ck.Names {
			if tt := ck.Tensors[n]; tt == nil || tt.Check() != nil {
				t.Fatalf("%s: %+v", n, tt)
			}
		}
	})
}
