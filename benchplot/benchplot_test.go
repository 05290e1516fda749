package benchplot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The speed table as bench_compare.sh prints it (the README's, abridged).
const table = `## convlstm-go vs PyTorch vs ONNX Runtime

- date: 2025-01-01 00:00:00 UTC

| row (B,T,C,H,W; hidden; kernels) | threads | PyTorch ms | ONNX Runtime ms | convlstm-go ms | vs the faster |
|---|---:|---:|---:|---:|---:|
| mnist: 1,10,1,64,64; [64,64]; 3×3,3×3 | 1 | 591.8 | 514.3 | 302.9 | 1.70× |
| | 2 | 330.1 | 280.5 | 160.2 | 1.75× |
| stream | 1 | 70.2 | n/a | 30.6 | 2.29× |
`

func TestReadTable(t *testing.T) {
	cells, err := Read(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cell{
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 1, PyTorch, 591.8},
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 1, ONNXRuntime, 514.3},
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 1, ConvLSTMGo, 302.9},
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 2, PyTorch, 330.1},
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 2, ONNXRuntime, 280.5},
		{"mnist: 1,10,1,64,64; [64,64]; 3×3,3×3", 2, ConvLSTMGo, 160.2},
		{"stream", 1, PyTorch, 70.2},
		{"stream", 1, ConvLSTMGo, 30.6},
	}
	if !reflect.DeepEqual(cells, want) {
		t.Fatalf("read %+v\nwant %+v", cells, want)
	}
}

// The three benchmarks' JSON lines, rounds merged by their median.
func TestReadJSON(t *testing.T) {
	in := `{"engine": "pytorch", "torch": "1.13", "row": "mnist", "threads": 1, "median_ms": 10, "times_ms": [10]}
{"engine": "pytorch", "row": "mnist", "threads": 1, "median_ms": 30}
{"engine": "pytorch", "row": "mnist", "threads": 1, "median_ms": 20}
{"engine":"onnxruntime","version":"1.30.0","row":"mnist","threads":1,"median_ms":8,"min_ms":7}
[{"weights": "m.pt", "shape": [1, 10, 1, 64, 64], "threads": 1, "kernel": "avx2", "mode": "forward", "median_ms": 4},
 {"row": "mnist", "shape": [1, 10, 1, 64, 64], "threads": 2, "kernel": "avx2", "median_ms": 2.5},
 {"shape": [1, 1, 1, 64, 64], "threads": 2, "kernel": "avx2", "mode": "stream-step", "median_ms": 0.5}]`
	cells, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cell{
		{"mnist", 1, PyTorch, 20},
		{"mnist", 1, ONNXRuntime, 8},
		{"1×10×1×64×64", 1, ConvLSTMGo, 4},
		{"mnist", 2, ConvLSTMGo, 2.5},
		{"1×1×1×64×64 stream", 2, ConvLSTMGo, 0.5},
	}
	if !reflect.DeepEqual(cells, want) {
		t.Fatalf("read %+v\nwant %+v", cells, want)
	}
}

func TestReadErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "empty input",
		"hello":                          "neither JSON records nor a markdown table",
		`{"engine": "tf", "threads": 1}`: `engine "tf"`,
		`{"engine": "ort", "row": "a", "threads": 1}`:                     `no positive "median_ms"`,
		`{"row": "a", "threads": 1, "median_ms": 3}`:                      `no "engine"`,
		`{"engine": "go", "threads": 1, "median_ms": 3}`:                  `no "row" and no "shape"`,
		`{"engine": "go", "row": "a", "threads": 1, "median_ms": 3} {`:    "JSON value 2",
		"| row | threads | PyTorch ms |\n|---|---|---|\n| a | x | 3 |":    `threads "x"`,
		"| row | threads | PyTorch ms |\n|---|---|---|\n| a | 1 | fast |": `PyTorch ms "fast"`,
		"| row | threads | PyTorch ms |\n|---|---|---|\n| a | 1 |":        "has 2 columns, the header 3",
	} {
		_, err := Read(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "benchplot: ") {
			t.Errorf("Read(%q): %v, want %q", in, err, want)
		}
	}
}

// The chart decodes as a PNG of the asked size with every engine's bars.
func TestRender(t *testing.T) {
	cells, err := Read(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := WritePNG(path, cells, Options{Title: "ConvLSTM forward pass, 2-core EPYC"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := m.Bounds(); b.Dx() != 2*300 || b.Dy() != 360+48 {
		t.Fatalf("chart is %d×%d, want 600×408 (two panels)", b.Dx(), b.Dy())
	}
	for name, c := range colours {
		if n := count(m, c); n < 200 {
			t.Errorf("%d pixels of %s's colour: its bars are missing", n, name)
		}
	}
	if err := Render(&bytes.Buffer{}, nil, Options{}); err == nil {
		t.Error("rendered nothing without an error")
	}
	if err := WritePNG(filepath.Join(t.TempDir(), "no", "x.png"), cells, Options{}); err == nil || !strings.Contains(err.Error(), "x.png") {
		t.Errorf("unwritable path: %v", err)
	}
}

func count(m image.Image, c color.Color) int {
	r0, g0, b0, _ := c.RGBA()
	n := 0
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			if r == r0 && g == g0 && bl == b0 {
				n++
			}
		}
	}
	return n
}
