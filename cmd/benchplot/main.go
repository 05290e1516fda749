// Command benchplot draws the speed table as a bar chart PNG (package
// benchplot, on gonum.org/v1/plot):
//
//	go run ./cmd/benchplot -in table.md -out docs/speed.png
//	go run ./cmd/benchplot -in go.json -in torch.json -in ort.json -out docs/speed.png
//
// It reads scripts/bench_compare.sh's markdown table (the first table with
// | row | threads | … | columns in the file, so the README itself will do)
// or the JSON records of `convlstm-run bench --json`, scripts/bench_torch.py
// and scripts/bench_ort.js. The chart code and its fonts add about 8 MB to
// a binary, so it is a command of its own rather than part of convlstm-run.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/convlstm-go/convlstm-go/benchplot"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchplot:", strings.TrimPrefix(err.Error(), "benchplot: "))
		}
		os.Exit(2)
	}
}

// run is the command without the process: args without the program name.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ins []string
	fs.Func("in", "benchmark results: a markdown file holding bench_compare.sh's table, or JSON records (repeatable; - for stdin)", func(s string) error {
		ins = append(ins, s)
		return nil
	})
	out := fs.String("out", "", "the chart to write (PNG)")
	title := fs.String("title", "", "title above the chart")
	width := fs.Int("width", 0, "width of each panel in pixels (default 300)")
	height := fs.Int("height", 0, "height in pixels (default 360)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: benchplot -in table.md|records.json [-in more.json ...] -out chart.png [-title T] [-width W] [-height H]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: give files with -in", fs.Arg(0))
	}
	if len(ins) == 0 || *out == "" {
		fs.Usage()
		return errors.New("-in and -out are both needed")
	}
	if !strings.EqualFold(pathExt(*out), ".png") {
		return fmt.Errorf("-out %s: the chart is a PNG; name it NAME.png", *out)
	}
	var cells []benchplot.Cell
	from := map[[3]string]string{} // row, threads, engine → the file that gave it
	for _, in := range ins {
		cs, err := readCells(in, stdin)
		if err != nil {
			return err
		}
		for _, c := range cs {
			k := [3]string{c.Row, fmt.Sprint(c.Threads), c.Engine}
			if prev, dup := from[k]; dup {
				return fmt.Errorf("%s and %s both time %s at %d thread(s) on %s; give each measurement once", prev, in, c.Engine, c.Threads, c.Row)
			}
			from[k] = in
		}
		cells = append(cells, cs...)
	}
	if err := benchplot.WritePNG(*out, cells, benchplot.Options{Title: *title, PanelWidth: *width, Height: *height}); err != nil {
		return err
	}
	rows := map[string]bool{}
	for _, c := range cells {
		rows[c.Row] = true
	}
	fmt.Fprintf(stdout, "wrote %s: %d measurements in %d row(s)\n", *out, len(cells), len(rows))
	return nil
}

// readCells reads one -in: JSON records as they are, markdown cut down to
// its speed table.
func readCells(name string, stdin io.Reader) ([]benchplot.Cell, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' && t[0] != '[' {
		data = speedTable(data)
	}
	cells, err := benchplot.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "benchplot: "))
	}
	return cells, nil
}

// speedTable returns the first markdown table whose header starts
// | row … | threads |, up to the first line that is not part of it, so that
// the tables around it in a README are not read as its rows. Without one it
// returns data unchanged (benchplot.Read then says what it wanted).
func speedTable(data []byte) []byte {
	var out bytes.Buffer
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if !in {
			f := strings.Split(strings.Trim(s, "|"), "|")
			if strings.HasPrefix(s, "|") && len(f) >= 3 && strings.HasPrefix(strings.ToLower(strings.TrimSpace(f[0])), "row") && strings.EqualFold(strings.TrimSpace(f[1]), "threads") {
				in = true
			} else {
				continue
			}
		} else if !strings.HasPrefix(s, "|") {
			break
		}
		out.WriteString(s)
		out.WriteByte('\n')
	}
	if !in {
		return data
	}
	return out.Bytes()
}

func pathExt(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 && !strings.ContainsAny(p[i:], `/\`) {
		return p[i:]
	}
	return ""
}
