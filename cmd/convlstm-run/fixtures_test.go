package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/convlstm-go/convlstm-go/loader"
)

// fixtureCase is a fixtures/forward/<case>/case.json, written with the
// fixture files by scripts/make_fixtures.py from real PyTorch.
type fixtureCase struct {
	Args        []string   `json:"args"`
	Description string     `json:"description"`
	Weights     string     `json:"weights"`
	Input       string     `json:"input"`
	StateIn     string     `json:"state_in"`
	Expected    string     `json:"expected"`
	Tolerance   *tolerance `json:"tolerance"`
	Model       struct {
		Hidden []int `json:"hidden"`
	} `json:"model"`
}

// runCLI runs convlstm-run with args as a user would, in-process.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	rootCmd.SetArgs(args)
	rootCmd.SetOut(&out)
	rootCmd.SetErr(io.Discard)
	// Flags keep their values between Execute calls; reset them.
	for _, c := range rootCmd.Commands() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				sv.Replace(nil)
			} else {
				f.Value.Set(f.DefValue)
			}
			f.Changed = false
		})
	}
	err := rootCmd.Execute()
	return out.String(), err
}

func TestForwardFixtures(t *testing.T) {
	dirs, err := filepath.Glob("../../fixtures/forward/*/case.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	for _, cj := range dirs {
		dir := filepath.Dir(cj)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(cj)
			if err != nil {
				t.Fatal(err)
			}
			var c fixtureCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s: %v", cj, err)
			}
			// The case's own bar, which may be tighter than the project's
			// parity bar but never looser.
			if c.Tolerance == nil {
				t.Fatalf("%s: no \"tolerance\"", cj)
			}
			tol := *c.Tolerance
			if !(tol.Abs >= 0 && tol.Rel >= 0 && tol.Abs <= parityBar.Abs && tol.Rel <= parityBar.Rel) {
				t.Fatalf("%s: tolerance %s is looser than the parity bar %s", cj, tol, parityBar)
			}
			lo := layout{timeFirst: slices.Contains(c.Args, "--time-first"), layers: len(c.Model.Hidden)}
			out := filepath.Join(t.TempDir(), "out.npz")
			args := []string{"run", "--weights", filepath.Join(dir, c.Weights), "--input", filepath.Join(dir, c.Input), "--output", out}
			if c.StateIn != "" {
				args = append(args, "--state-in", filepath.Join(dir, c.StateIn))
			}
			args = append(args, c.Args...)
			for _, threads := range []string{"1", "2"} {
				if _, err := runCLI(t, append(args, "--threads", threads)...); err != nil {
					t.Fatalf("%s: %v", c.Description, err)
				}
				compareNPZ(t, fmt.Sprintf("%s (threads %s)", filepath.Base(dir), threads), out, filepath.Join(dir, c.Expected), tol, lo, true)
			}
		})
	}
}

func TestBundledExample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.npz")
	text, err := runCLI(t, "run", "--output", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bundled example model", "(1, 10, 1, 32, 32)", "output: (1, 10, 8, 32, 32)"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	compareNPZ(t, "example", out, "../../fixtures/example/expected.npz", parityBar, layout{}, false)
}

// A state_dict saved as .npz (keys cell_list.{l}.conv.weight|bias) runs like
// the .pt it came from.
func TestNPZWeights(t *testing.T) {
	dir := "../../fixtures/forward/two-layer-mixed-kernels/"
	ck, err := loader.LoadPT(dir + "weights.pt")
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(t.TempDir(), "weights.npz")
	if err := loader.WriteNPZ(w, ck.Names, ck.Tensors); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.npz")
	if _, err := runCLI(t, "run", "--weights", w, "--input", dir+"input.npy", "--output", out); err != nil {
		t.Fatal(err)
	}
	compareNPZ(t, "npz weights", out, dir+"expected.npz", parityBar, layout{}, true)
}
