package loader

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// WriteAtomic creates path through a temporary file in the same directory:
// fill writes into it (buffered), and only if fill succeeds is it synced,
// given the usual permissions and renamed into place. Readers never see a
// partial file and a failure leaves nothing behind. Every writer of output
// files (.npy/.npz, ONNX, safetensors, images) goes through it.
func WriteAtomic(path string, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; give it the usual permissions.
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
