// Package progress shows a progress bar for long runs (folders of
// sequences, many demo batches) on a terminal, and nothing anywhere else:
// piped or redirected output, CI logs and tests stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is a progress bar, or nothing. The nil *Bar and a silent one accept
// every call and do nothing.
type Bar struct {
	pb  *progressbar.ProgressBar
	max int
}

// New returns a bar drawn on f (normally os.Stderr) if f is a terminal, and
// a silent one otherwise. total is the number of steps; 0 or less means not
// known yet (a spinner until Update gives it).
func New(f *os.File, total int, description string) *Bar {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return &Bar{}
	}
	return newBar(f, total, description)
}

// newBar draws on w whatever w is.
func newBar(w io.Writer, total int, description string) *Bar {
	if total <= 0 {
		total = -1
	}
	pb := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return &Bar{pb: pb, max: total}
}

// Enabled reports whether the bar draws anything.
func (b *Bar) Enabled() bool { return b != nil && b.pb != nil }

// Add advances the bar by n steps.
func (b *Bar) Add(n int) {
	if b.Enabled() {
		b.pb.Add(n)
	}
}

// Update sets the bar to done of total steps; its signature is that of
// frames.ReadOptions.Progress and demo.Options.Progress.
func (b *Bar) Update(done, total int) {
	if !b.Enabled() {
		return
	}
	if total > 0 && total != b.max {
		b.pb.ChangeMax(total)
		b.max = total
	}
	b.pb.Set(done)
}

// Finish completes the bar (ending its line) if it has not completed.
func (b *Bar) Finish() {
	if b.Enabled() && !b.pb.IsFinished() {
		b.pb.Finish()
	}
}
