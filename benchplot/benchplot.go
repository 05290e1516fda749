// Package benchplot draws the speed table (rows × engines × threads) as a
// grouped bar chart PNG with gonum.org/v1/plot, for the README; the
// command is cmd/benchplot (kept out of convlstm-run: the chart code and
// its fonts add about 8 MB to a binary).
//
// It reads what the benchmarks print: the JSON records of `convlstm-run
// bench --json`, scripts/bench_torch.py and scripts/bench_ort.js (one or
// many, concatenated or in arrays), or the markdown table
// scripts/bench_compare.sh prints.
package benchplot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/convlstm-go/convlstm-go/loader"
)

// The engines, in the order their bars are drawn.
const (
	PyTorch     = "PyTorch"
	ONNXRuntime = "ONNX Runtime"
	ConvLSTMGo  = "convlstm-go"
)

var engines = []string{PyTorch, ONNXRuntime, ConvLSTMGo}

// Cell is one measurement of the table: a row (a model and input shape), a
// thread count, an engine and its median time.
type Cell struct {
	Row      string
	Threads  int
	Engine   string // PyTorch, ONNXRuntime or ConvLSTMGo
	MedianMS float64
}

// engineName maps the names the benchmarks use to the three engines.
func engineName(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pytorch", "torch", "pytorch ms":
		return PyTorch, true
	case "onnxruntime", "onnx runtime", "ort", "ort ms", "onnx runtime ms":
		return ONNXRuntime, true
	case "convlstm-go", "go", "convlstm-go ms":
		return ConvLSTMGo, true
	}
	return "", false
}

// Read reads benchmark results: JSON records or bench_compare.sh's table.
//
// A JSON record needs "threads" and "median_ms"; "engine" names the engine
// (pytorch, onnxruntime, convlstm-go; a record without it but with
// "kernel" is convlstm-go's `bench --json`); "row" names the row, or, when
// absent, it is the "shape" written B×T×C×H×W (with " stream" for
// mode "stream-step"). Several records of one row, thread count and engine
// (rounds) become their median.
func Read(r io.Reader) ([]Cell, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("benchplot: %v", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("benchplot: no benchmark results (empty input)")
	}
	var cells []Cell
	if trimmed[0] == '{' || trimmed[0] == '[' {
		cells, err = readJSON(trimmed)
	} else {
		cells, err = readTable(trimmed)
	}
	if err != nil {
		return nil, err
	}
	return medians(cells), nil
}

type record struct {
	Engine   *string  `json:"engine"`
	Row      *string  `json:"row"`
	Threads  *int     `json:"threads"`
	MedianMS *float64 `json:"median_ms"`
	Kernel   *string  `json:"kernel"`
	Shape    []int    `json:"shape"`
	Mode     string   `json:"mode"`
}

func readJSON(data []byte) ([]Cell, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var cells []Cell
	n := 0
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("benchplot: JSON value %d: %v", n+1, err)
		}
		var recs []record
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			if err := json.Unmarshal(raw, &recs); err != nil {
				return nil, fmt.Errorf("benchplot: JSON value %d: %v", n+1, err)
			}
		} else {
			var rec record
			if err := json.Unmarshal(raw, &rec); err != nil {
				return nil, fmt.Errorf("benchplot: JSON value %d: %v", n+1, err)
			}
			recs = []record{rec}
		}
		for _, rec := range recs {
			n++
			c, err := rec.cell()
			if err != nil {
				return nil, fmt.Errorf("benchplot: record %d: %v", n, err)
			}
			cells = append(cells, c)
		}
	}
	return cells, nil
}

func (r record) cell() (Cell, error) {
	var c Cell
	switch {
	case r.Engine != nil:
		e, ok := engineName(*r.Engine)
		if !ok {
			return c, fmt.Errorf("engine %q: want pytorch, onnxruntime or convlstm-go", *r.Engine)
		}
		c.Engine = e
	case r.Kernel != nil:
		c.Engine = ConvLSTMGo
	default:
		return c, errors.New(`no "engine" (and no "kernel", which would mark convlstm-go's bench --json)`)
	}
	if r.Threads == nil || *r.Threads < 1 {
		return c, errors.New(`no positive "threads"`)
	}
	if r.MedianMS == nil || !(*r.MedianMS > 0) || math.IsInf(*r.MedianMS, 0) {
		return c, errors.New(`no positive "median_ms"`)
	}
	c.Threads, c.MedianMS = *r.Threads, *r.MedianMS
	switch {
	case r.Row != nil && *r.Row != "":
		c.Row = *r.Row
	case len(r.Shape) > 0:
		parts := make([]string, len(r.Shape))
		for i, d := range r.Shape {
			parts[i] = strconv.Itoa(d)
		}
		c.Row = strings.Join(parts, "×")
		if r.Mode == "stream-step" {
			c.Row += " stream"
		}
	default:
		return c, errors.New(`no "row" and no "shape" to name the row by`)
	}
	return c, nil
}

// readTable reads bench_compare.sh's markdown table: a header with "row…",
// "threads" and one "… ms" column per engine, then one line per row and
// thread count (a blank row name repeats the one above, as in the README);
// "n/a" is a missing measurement.
func readTable(data []byte) ([]Cell, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cols []string
	var cells []Cell
	line, prev := 0, ""
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(s, "|") {
			continue
		}
		fields := strings.Split(strings.Trim(s, "|"), "|")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		if cols == nil {
			if len(fields) >= 3 && strings.HasPrefix(strings.ToLower(fields[0]), "row") && strings.EqualFold(fields[1], "threads") {
				cols = fields
			}
			continue
		}
		if strings.HasPrefix(fields[0], "---") || strings.HasPrefix(fields[0], ":--") {
			continue
		}
		if len(fields) != len(cols) {
			return nil, fmt.Errorf("benchplot: table line %d has %d columns, the header %d", line, len(fields), len(cols))
		}
		if fields[0] == "" { // the README's tables leave a repeated row name blank
			if prev == "" {
				return nil, fmt.Errorf("benchplot: table line %d has no row name and no row above it", line)
			}
			fields[0] = prev
		}
		prev = fields[0]
		threads, err := strconv.Atoi(fields[1])
		if err != nil || threads < 1 {
			return nil, fmt.Errorf("benchplot: table line %d: threads %q is not a positive count", line, fields[1])
		}
		for i := 2; i < len(cols); i++ {
			e, ok := engineName(cols[i])
			if !ok || fields[i] == "n/a" {
				continue
			}
			ms, err := strconv.ParseFloat(fields[i], 64)
			if err != nil || !(ms > 0) {
				return nil, fmt.Errorf("benchplot: table line %d: %s %q is not a time in ms", line, cols[i], fields[i])
			}
			cells = append(cells, Cell{Row: fields[0], Threads: threads, Engine: e, MedianMS: ms})
		}
	}
	if cols == nil {
		return nil, errors.New("benchplot: neither JSON records nor a markdown table with | row | threads | … | columns")
	}
	if len(cells) == 0 {
		return nil, errors.New("benchplot: the table has no measurements")
	}
	return cells, nil
}

// medians merges cells of one row, thread count and engine into their
// median, keeping rows in the order they first appear.
func medians(cells []Cell) []Cell {
	type key struct {
		row     string
		threads int
		engine  string
	}
	vals := map[key][]float64{}
	var order []key
	for _, c := range cells {
		k := key{c.Row, c.Threads, c.Engine}
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = append(vals[k], c.MedianMS)
	}
	out := make([]Cell, 0, len(order))
	for _, k := range order {
		v := vals[k]
		sort.Float64s(v)
		m := v[len(v)/2]
		if len(v)%2 == 0 {
			m = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		out = append(out, Cell{k.row, k.threads, k.engine, m})
	}
	return out
}

// Options for the chart.
type Options struct {
	Title string // above the chart, left of the legend ("" for none)
	// PanelWidth and Height are in pixels (at 96 dpi); defaults 300 and 360.
	PanelWidth, Height int
}

var colours = map[string]color.Color{
	PyTorch:     color.RGBA{238, 76, 44, 255},
	ONNXRuntime: color.RGBA{120, 120, 120, 255},
	ConvLSTMGo:  color.RGBA{0, 173, 216, 255},
}

// Render draws cells as a PNG on w: one panel per row (its own time
// scale), a group of bars per thread count, one bar per engine, and above
// convlstm-go's bar its speed-up over the faster of the other two.
func Render(w io.Writer, cells []Cell, opt Options) error {
	if len(cells) == 0 {
		return errors.New("benchplot: nothing to draw")
	}
	if opt.PanelWidth == 0 {
		opt.PanelWidth = 300
	}
	if opt.Height == 0 {
		opt.Height = 360
	}
	if opt.PanelWidth < 100 || opt.Height < 100 || opt.PanelWidth > 4000 || opt.Height > 4000 {
		return fmt.Errorf("benchplot: panels of %d×%d pixels: want 100 to 4000 per side", opt.PanelWidth, opt.Height)
	}
	var rows []string
	for _, c := range cells {
		if !slices.Contains(rows, c.Row) {
			rows = append(rows, c.Row)
		}
	}
	const dpi = 96
	px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }
	plots := [][]*plot.Plot{make([]*plot.Plot, len(rows))}
	for i, row := range rows {
		p, err := panel(row, cells)
		if err != nil {
			return err
		}
		plots[0][i] = p
	}
	const bandH = 48 // title and legend
	W, H := px(opt.PanelWidth*len(rows)), px(opt.Height+bandH)
	img := vgimg.NewWith(vgimg.UseWH(W, H), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	sty := plot.New().Title.TextStyle
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	mid := H - px(bandH)/2
	if opt.Title != "" {
		sty.Font.Size = vg.Points(13)
		dc.FillText(sty, vg.Point{X: px(12), Y: mid}, opt.Title)
	}
	// The legend, right-aligned in the band: a swatch and a name per engine.
	sty.Font.Size = vg.Points(11)
	x := W - px(12)
	for k := len(engines) - 1; k >= 0; k-- {
		e := engines[k]
		x -= sty.Width(e)
		dc.FillText(sty, vg.Point{X: x, Y: mid}, e)
		x -= px(18)
		dc.SetColor(colours[e])
		dc.Fill(vg.Rectangle{Min: vg.Point{X: x, Y: mid - px(6)}, Max: vg.Point{X: x + px(12), Y: mid + px(6)}}.Path())
		x -= px(18)
	}
	dc.Max.Y -= px(bandH)
	tiles := draw.Tiles{Rows: 1, Cols: len(rows), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range rows {
		plots[0][i].Draw(canvases[0][i])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("benchplot: %v", err)
	}
	return nil
}

// panel draws one row.
func panel(row string, cells []Cell) (*plot.Plot, error) {
	var threads []int
	ms := map[string]map[int]float64{}
	for _, c := range cells {
		if c.Row != row {
			continue
		}
		if !slices.Contains(threads, c.Threads) {
			threads = append(threads, c.Threads)
		}
		if ms[c.Engine] == nil {
			ms[c.Engine] = map[int]float64{}
		}
		ms[c.Engine][c.Threads] = c.MedianMS
	}
	slices.Sort(threads)
	p := plot.New()
	p.Title.Text = wrap(row)
	p.Y.Label.Text = "ms (lower is better)"
	p.Y.Min = 0
	names := make([]string, len(threads))
	for i, t := range threads {
		names[i] = fmt.Sprintf("%d thread", t)
		if t > 1 {
			names[i] += "s"
		}
	}
	barW := vg.Points(14)
	top := 0.0
	for k, e := range engines {
		vals := make(plotter.Values, len(threads))
		for i, t := range threads {
			vals[i] = ms[e][t] // 0 when not measured
			top = max(top, vals[i])
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, fmt.Errorf("benchplot: row %s: %v", row, err)
		}
		bars.Color = colours[e]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(k-1) * barW
		p.Add(bars)
	}
	// Speed-up of convlstm-go over the faster anchor, above its bar.
	var xys plotter.XYs
	var labels []string
	for i, t := range threads {
		g, ok := ms[ConvLSTMGo][t]
		best := math.Inf(1)
		for _, e := range engines[:2] {
			if v, ok := ms[e][t]; ok {
				best = min(best, v)
			}
		}
		if ok && !math.IsInf(best, 1) {
			xys = append(xys, plotter.XY{X: float64(i), Y: g})
			labels = append(labels, fmt.Sprintf("%.2f×", best/g))
		}
	}
	if len(xys) > 0 {
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, fmt.Errorf("benchplot: row %s: %v", row, err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
			l.TextStyle[i].Font.Size = vg.Points(9)
		}
		l.Offset = vg.Point{X: barW, Y: vg.Points(3)}
		p.Add(l)
	}
	p.Y.Max = top * 1.15
	p.NominalX(names...)
	return p, nil
}

// wrap breaks a row name such as the README's "stream: one step,
// 1,1,64,64, carried state; [64,64]; 3×3" into lines that fit a panel: the
// name, then the details, split at "; " when long.
func wrap(row string) string {
	name, detail, ok := strings.Cut(row, ": ")
	if !ok {
		return row
	}
	if len(detail) > 36 {
		detail = strings.ReplaceAll(detail, "; ", "\n")
	}
	return name + "\n" + detail
}

// WritePNG renders cells to path atomically (see Render).
func WritePNG(path string, cells []Cell, opt Options) error {
	if err := loader.WriteAtomic(path, func(w io.Writer) error { return Render(w, cells, opt) }); err != nil {
		return fmt.Errorf("benchplot: writing %s: %v", path, strings.TrimPrefix(err.Error(), "benchplot: "))
	}
	return nil
}
