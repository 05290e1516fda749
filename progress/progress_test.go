package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// Not a terminal (a pipe, as in CI): nothing is written.
func TestSilentOffTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := New(w, 3, "reading")
	if b.Enabled() {
		t.Fatal("a bar on a pipe")
	}
	b.Update(1, 3)
	b.Add(2)
	b.Finish()
	w.Close()
	out, _ := io.ReadAll(r)
	if len(out) != 0 {
		t.Fatalf("wrote %q to a pipe", out)
	}
	var nilBar *Bar
	nilBar.Update(1, 2)
	nilBar.Finish()
	if New(nil, 1, "x").Enabled() {
		t.Fatal("a bar on no file")
	}
}

// On a writer it is told to use, the bar shows the description and count,
// learns a total given late and ends its line.
func TestDraws(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, 0, "frames")
	b.Update(1, 4)
	b.Update(4, 4)
	b.Finish()
	out := buf.String()
	for _, w := range []string{"frames", "4/4", "100%"} {
		if !strings.Contains(out, w) {
			t.Errorf("bar output %q lacks %q", out, w)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("bar output %q does not end its line", out)
	}
}
