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
	folder, err := ptZipFolder(name, zr.File)
	if err != nil {
		return "", err
	}
	if folder != "" {
		return FormatPTZip, nil
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".npy") {
			return FormatNPZ, nil
		}
	}
	return "", &FormatError{File: name, Msg: "a zip archive with neither <folder>/data.pkl (PyTorch) nor .npy entries (NumPy .npz)"}
}

// isDataPkl reports whether a zip entry is the pickle of a torch.save zip:
// data.pkl inside exactly one top-level folder (torch names the folder after
// the file, "archive" since torch 2.1; any name is accepted).
func isDataPkl(name string) bool {
	dir, ok := strings.CutSuffix(name, "/data.pkl")
	return ok && dir != "" && !strings.Contains(dir, "/")
}

// ptZipFolder finds the folder holding data.pkl among a zip's entries: ""
// when there is none (not a torch.save zip), an error when two folders
// each hold one. Both format detection and the .pt reader use it, so that
// what is detected as a PyTorch zip is what the reader opens.
func ptZipFolder(name string, files []*zip.File) (string, error) {
	folder := ""
	for _, f := range files {
		if !isDataPkl(f.Name) {
			continue
		}
		dir := strings.TrimSuffix(f.Name, "/data.pkl")
		if folder != "" && dir != folder {
			return "", &FormatError{File: name, Record: "zip directory", Msg: fmt.Sprintf("data.pkl in two folders, %q and %q", folder, dir)}
		}
		folder = dir
	}
	return folder, nil
}

// DetectHead recognises the non-zip formats from a file's first bytes and
// its size; it returns "" if none matches.
func DetectHead(head []byte, size int64) string {
	switch {
	case bytes.HasPrefix(head, legacyMagic):
		return FormatPTLegacy
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return FormatNPY
	case len(head) >= 9:
		// safetensors: a little-endian u64 header length, then a JSON object.
		if n := binary.LittleEndian.Uint64(head); n > 1 && n <= uint64(size-8) && head[8] == '{' {
			return FormatSafetensors
		}
	}
	if IsONNX(head) {
		return FormatONNX
	}
	return ""
}
