package loader

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Formats that Detect reports.
const (
	FormatPTZip       = "pytorch-zip"
	FormatPTLegacy    = "pytorch-legacy"
	FormatNPY         = "npy"
	FormatNPZ         = "npz"
	FormatSafetensors = "safetensors"
	FormatONNX        = "onnx"
)

// legacyHead is how torch's legacy (non-zip) format starts: a protocol 2
// pickle of the long 0x1950a86a20f9469cfc6c.
var legacyHead = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// DetectFile tells a file's format from its content, never its name.
func DetectFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	if n == 0 {
		return "", &FormatError{File: path, Msg: "the file is empty"}
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		zr, err := zip.NewReader(f, st.Size())
		if err != nil {
			return "", &FormatError{File: path, Msg: "a zip archive that cannot be read: " + err.Error()}
		}
		return detectZip(path, zr)
	}
	if format := DetectHead(head, st.Size()); format != "" {
		return format, nil
	}
	return "", &FormatError{File: path, Msg: fmt.Sprintf("not a PyTorch .pt (zip or legacy), safetensors, ONNX, .npy or .npz file (starts with % x)", head[:min(n, 8)])}
}

// DetectBytes is DetectFile for a file held in memory.
func DetectBytes(name string, data []byte) (string, error) {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return "", &FormatError{File: name, Msg: "a zip archive that cannot be read: " + err.Error()}
		}
		return detectZip(name, zr)
	}
	if format := DetectHead(data[:min(len(data), 64)], int64(len(data))); format != "" {
		return format, nil
	}
	return "", &FormatError{File: name, Msg: "not a PyTorch .pt (zip or legacy), safetensors, ONNX, .npy or .npz file"}
}

func detectZip(name string, zr *zip.Reader) (string, error) {
	npy := 0
	for _, f := range zr.File {
		if f.Name == "data.pkl" || strings.HasSuffix(f.Name, "/data.pkl") {
			return FormatPTZip, nil
		}
		if strings.HasSuffix(f.Name, ".npy") {
			npy++
		}
	}
	if npy > 0 {
		return FormatNPZ, nil
	}
	return "", &FormatError{File: name, Msg: "a zip archive with neither */data.pkl (PyTorch) nor .npy entries (NumPy .npz)"}
}

// DetectHead recognises the non-zip formats from a file's first bytes and
// its size; it returns "" if none matches.
func DetectHead(head []byte, size int64) string {
	switch {
	case bytes.HasPrefix(head, legacyHead):
		return FormatPTLegacy
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return FormatNPY
	case len(head) >= 9:
		// safetensors: a little-endian u64 header length, then a JSON object.
		if n := binary.LittleEndian.Uint64(head); n > 1 && n <= uint64(size-8) && head[8] == '{' {
			return FormatSafetensors
		}
	}
	if looksLikeONNX(head) {
		return FormatONNX
	}
	return ""
}

// looksLikeONNX checks for a ModelProto's first field, ir_version (field 1,
// varint, a small number), followed by another ModelProto field tag.
func looksLikeONNX(head []byte) bool {
	if len(head) < 3 || head[0] != 0x08 {
		return false
	}
	v, n := binary.Uvarint(head[1:])
	if n <= 0 || v == 0 || v > 64 || 1+n >= len(head) {
		return false
	}
	switch head[1+n] {
	case 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x4a, 0x72, 0x7a, 0x8a:
		return true
	}
	return false
}
