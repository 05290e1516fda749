package loader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Formats are told apart by content: every fixture is detected as what it
// is, also when copied to a name that says otherwise.
func TestDetectFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{"../fixtures/pt/checkpoint.pt", FormatPTZip},
		{"../fixtures/pt/renamed_folder.pt", FormatPTZip},
		{"../fixtures/pt/torch2_zip.pt", FormatPTZip},
		{"../fixtures/pt/checkpoint_legacy.pt", FormatPTLegacy},
		{"../fixtures/real/soccer-ball-convlstm.pth", FormatPTLegacy},
		{"../fixtures/pt/checkpoint.npz", FormatNPZ},
		{"../fixtures/forward/one-layer-3x3/input.npy", FormatNPY},
		{"../fixtures/onnx/static_op13.onnx", FormatONNX},
		{"../fixtures/onnx/dynamic_op11.onnx", FormatONNX},
	} {
		data, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		// A misleading name: detection must not look at it.
		renamed := filepath.Join(dir, "weights.safetensors")
		if err := os.WriteFile(renamed, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{tc.path, renamed} {
			got, err := DetectFile(p)
			if err != nil || got != tc.want {
				t.Errorf("DetectFile(%s) = %q, %v; want %q", p, got, err, tc.want)
			}
		}
		if got, err := DetectBytes(tc.path, data); err != nil || got != tc.want {
			t.Errorf("DetectBytes(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	sts, _ := filepath.Glob("../fixtures/safetensors/*.safetensors")
	if len(sts) == 0 {
		t.Fatal("no safetensors fixtures")
	}
	for _, p := range sts {
		if got, err := DetectFile(p); err != nil || got != FormatSafetensors {
			t.Errorf("DetectFile(%s) = %q, %v; want safetensors", p, got, err)
		}
	}
	for name, content := range map[string]string{
		"empty.pt": "",
		"text.pt":  "hello, this is not a model",
		"zip.pt":   "PK\x03\x04garbage",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if got, err := DetectFile(p); err == nil {
			t.Errorf("DetectFile(%s) = %q, want an error", name, got)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("DetectFile(%s): error %q does not name the file", name, err)
		}
	}
}
