package export

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
)

// A minimal .npy/.npz reader for the fixtures (little-endian float32, C
// order), so these tests do not depend on loader/npy.go's API.

var npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)

func parseNPY(b []byte) (*loader.Tensor, error) {
	if len(b) < 10 || string(b[1:6]) != "NUMPY" {
		return nil, fmt.Errorf("not npy")
	}
	var hl, off int
	if b[6] == 1 {
		hl, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	} else {
		hl, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	h := string(b[off : off+hl])
	if !strings.Contains(h, "'<f4'") || strings.Contains(h, "'fortran_order': True") {
		return nil, fmt.Errorf("want <f4 C order, header %s", h)
	}
	m := npyShape.FindStringSubmatch(h)
	t := &loader.Tensor{DType: "float32", Shape: []int{}}
	for _, p := range strings.Split(m[1], ",") {
		if p = strings.TrimSpace(p); p != "" {
			d, _ := strconv.Atoi(p)
			t.Shape = append(t.Shape, d)
		}
	}
	data := b[off+hl:]
	t.Data = make([]float32, t.NumElements())
	for i := range t.Data {
		t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return t, nil
}

func readNPY(path string) (*loader.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseNPY(b)
}

func readNPZ(path string) (map[string]*loader.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	out := map[string]*loader.Tensor{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		t, err := parseNPY(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f.Name, err)
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = t
	}
	return out, nil
}

func readNPYTest(t *testing.T, path string) *loader.Tensor {
	t.Helper()
	x, err := readNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func readNPZTest(t *testing.T, path string) map[string]*loader.Tensor {
	t.Helper()
	x, err := readNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
