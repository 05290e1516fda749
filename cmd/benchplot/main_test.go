package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README itself is a valid input: its speed table (bench_compare.sh's
// form, measured numbers) is found among its other tables and drawn, one
// panel per row.
func TestREADMETable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "speed.png")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-in", "../../README.md", "-out", out, "-title", "forward pass"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows: table lines after the header and the rule whose first cell is
	// not blank (the README leaves a repeated row name blank).
	nrows := 0
	for i, line := range strings.Split(strings.TrimSpace(string(speedTable(readme))), "\n") {
		if i >= 2 && !strings.HasPrefix(line, "| |") {
			nrows++
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if nrows < 1 || m.Bounds().Dx() != 300*nrows {
		t.Errorf("chart %v for %d rows; want %d panels of 300 pixels", m.Bounds(), nrows, nrows)
	}
	if !strings.Contains(stdout.String(), "wrote "+out) {
		t.Errorf("stdout: %q", stdout.String())
	}
}

// JSON records from several files (and stdin) add up; a measurement given
// twice, a missing flag, a non-PNG output and junk input are errors, and
// leave no chart.
func TestJSONAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("go.json"), []byte(`{"engine": "convlstm-go", "row": "mnist", "threads": 1, "median_ms": 4}
{"engine": "convlstm-go", "row": "mnist", "threads": 2, "median_ms": 2.5}`), 0o644)
	torch := `[{"engine": "pytorch", "row": "mnist", "threads": 1, "median_ms": 9}, {"engine": "pytorch", "row": "mnist", "threads": 2, "median_ms": 5}]`
	os.WriteFile(p("junk.md"), []byte("no table here\n"), 0o644)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-in", p("go.json"), "-in", "-", "-out", p("c.png")}, strings.NewReader(torch), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "4 measurements in 1 row(s)") {
		t.Errorf("stdout: %q", stdout.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-in", p("go.json"), "-in", p("go.json"), "-out", p("d.png")}, "both time convlstm-go"},
		{[]string{"-in", p("go.json")}, "-out"},
		{[]string{"-in", p("go.json"), "-out", p("d.svg")}, "d.svg"},
		{[]string{"-in", p("junk.md"), "-out", p("d.png")}, "junk.md"},
		{[]string{"-in", p("nope.json"), "-out", p("d.png")}, "nope.json"},
		{[]string{"-in", p("go.json"), "-out", p("no/such/dir/d.png")}, "d.png"},
		{[]string{"-in", p("go.json"), "-out", p("d.png"), "stray"}, "stray"},
	} {
		err := run(tc.args, strings.NewReader(""), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
	if m, _ := filepath.Glob(p("d.*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}
