package convlstm

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Options choose which ConvLSTM in a file to use and how to read it.
type Options struct {
	// Prefix selects the ConvLSTM whose keys start with it: the part before
	// "cell_list." for a stack (e.g. "model_state_dict.conv_lstm") or before
	// ".conv.weight" for a single cell (e.g. "enc1"). Empty: find it.
	Prefix string
	// Gates is the gate order ("" = ifog).
	Gates string
	// ShapesOnly accepts tensors without data (as loader.InspectPT returns
	// them) and checks the architecture only: the model can be described,
	// not run.
	ShapesOnly bool
}

var (
	stackKey = regexp.MustCompile(`^(?:(.*)\.)?cell_list\.(\d+)\.conv\.(weight|bias)$`)
	cellKey  = regexp.MustCompile(`^(?:(.*)\.)?conv\.weight$`)
)

// candidate is one ConvLSTM found among a file's tensors.
type candidate struct {
	prefix string
	kind   string // "cell_list" or "cell"
}

func (c candidate) String() string {
	p := c.prefix
	if p == "" {
		p = "(no prefix)"
	}
	if c.kind == "cell" {
		return p + " (single ConvLSTMCell)"
	}
	return p + " (ConvLSTM cell_list)"
}

// findCandidates lists the ConvLSTM stacks among names and, only if there
// are none, the single cells: a 4-D "P.conv.weight" whose output channels
// are a multiple of 4 and whose input channels exceed a quarter of them
// (input + hidden, with hidden = rows/4).
func findCandidates(names []string, ts map[string]*tensor.Tensor) []candidate {
	var stacks []candidate
	seen := map[string]bool{}
	for _, n := range names {
		m := stackKey.FindStringSubmatch(n)
		if m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		stacks = append(stacks, candidate{prefix: m[1], kind: "cell_list"})
	}
	if len(stacks) > 0 {
		return stacks
	}
	var cells []candidate
	for _, n := range names {
		m := cellKey.FindStringSubmatch(n)
		if m == nil || !isCellWeight(ts[n]) {
			continue
		}
		cells = append(cells, candidate{prefix: m[1], kind: "cell"})
	}
	return cells
}

func isCellWeight(t *tensor.Tensor) bool {
	if t == nil || len(t.Shape) != 4 || !t.IsFloat() {
		return false
	}
	rows, cols := t.Shape[0], t.Shape[1]
	return rows > 0 && rows%4 == 0 && cols > rows/4
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// FromTensors finds a ConvLSTM among named tensors (names in file order),
// infers its architecture and validates it. file is used in messages.
func FromTensors(file string, names []string, ts map[string]*tensor.Tensor, opts Options) (*Model, error) {
	gates, err := ParseGateOrder(opts.Gates)
	if err != nil {
		return nil, err
	}
	cands := findCandidates(names, ts)
	var pick candidate
	prefix := strings.TrimSuffix(opts.Prefix, ".")
	switch {
	case opts.Prefix != "":
		found := false
		if _, ok := ts[join(prefix, "cell_list.0.conv.weight")]; ok {
			pick, found = candidate{prefix: prefix, kind: "cell_list"}, true
		} else if t, ok := ts[join(prefix, "conv.weight")]; ok && len(t.Shape) == 4 {
			pick, found = candidate{prefix: prefix, kind: "cell"}, true
		} else {
			// The user may have named a parent of the ConvLSTM ("model_state_dict");
			// accept it when exactly one candidate lies below it.
			var under []candidate
			for _, c := range cands {
				if strings.HasPrefix(c.prefix+".", prefix+".") {
					under = append(under, c)
				}
			}
			if len(under) == 1 {
				pick, found = under[0], true
			}
		}
		if !found {
			return nil, fmt.Errorf("convlstm: %s: no ConvLSTM under prefix %q (no %s or %s); found: %s",
				file, opts.Prefix, join(prefix, "cell_list.0.conv.weight"), join(prefix, "conv.weight"), listCandidates(cands))
		}
	case len(cands) == 0:
		return nil, fmt.Errorf("convlstm: %s: no ConvLSTM weights found: want keys like cell_list.0.conv.weight (a ConvLSTM) or P.conv.weight with 4·hidden output channels (a ConvLSTMCell); the file holds %s", file, sampleNames(names))
	case len(cands) > 1:
		return nil, fmt.Errorf("convlstm: %s: several ConvLSTMs found, choose one with --prefix: %s", file, listCandidates(cands))
	default:
		pick = cands[0]
	}
	return build(file, names, ts, pick, cands, gates, opts.ShapesOnly)
}

// Found is one ConvLSTM found among a file's tensors: its model, or why it
// cannot be one.
type Found struct {
	Prefix string // selects it as Options.Prefix ("" for a bare state_dict)
	Kind   string // "cell_list" (a ConvLSTM stack) or "cell" (one ConvLSTMCell)
	Model  *Model // nil when Err is set
	Err    error
}

// FindAllTensors describes every ConvLSTM among named tensors, each as
// FromTensors would read it with its prefix, in file order. With
// opts.Prefix set it describes that one only. It returns nothing when no
// tensor looks like a ConvLSTM's.
func FindAllTensors(file string, names []string, ts map[string]*tensor.Tensor, opts Options) []Found {
	if opts.Prefix != "" {
		m, err := FromTensors(file, names, ts, opts)
		if err != nil {
			return []Found{{Prefix: opts.Prefix, Err: err}}
		}
		return []Found{{Prefix: m.Source.Prefix, Kind: m.Source.Kind, Model: m}}
	}
	gates, gerr := ParseGateOrder(opts.Gates)
	cands := findCandidates(names, ts)
	out := make([]Found, 0, len(cands))
	for _, c := range cands {
		f := Found{Prefix: c.prefix, Kind: c.kind, Err: gerr}
		if gerr == nil {
			f.Model, f.Err = build(file, names, ts, c, cands, gates, opts.ShapesOnly)
		}
		out = append(out, f)
	}
	return out
}

// build reads and validates the ConvLSTM pick.
func build(file string, names []string, ts map[string]*tensor.Tensor, pick candidate, cands []candidate, gates GateOrder, shapesOnly bool) (*Model, error) {
	m := &Model{Gates: gates}
	var keys []string
	if pick.kind == "cell" {
		l, k, err := readLayer(file, join(pick.prefix, "conv"), ts, shapesOnly)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, l)
		keys = k
	} else {
		idx := map[int]bool{}
		maxIdx := -1
		for _, n := range names {
			mm := stackKey.FindStringSubmatch(n)
			if mm == nil || mm[1] != pick.prefix {
				continue
			}
			i, err := strconv.Atoi(mm[2])
			if err != nil || i > 1<<16 {
				return nil, fmt.Errorf("convlstm: %s: %s: layer index out of range", file, n)
			}
			idx[i] = true
			maxIdx = max(maxIdx, i)
		}
		for i := 0; i <= maxIdx; i++ {
			if !idx[i] {
				var have []string
				for j := range idx {
					have = append(have, strconv.Itoa(j))
				}
				sort.Strings(have)
				return nil, fmt.Errorf("convlstm: %s: layer %d is missing: found %s for layers %s", file, i, join(pick.prefix, "cell_list.N.conv.weight"), strings.Join(have, ", "))
			}
			l, k, err := readLayer(file, join(pick.prefix, fmt.Sprintf("cell_list.%d.conv", i)), ts, shapesOnly)
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, l)
			keys = append(keys, k...)
		}
	}
	var others []string
	for _, c := range cands {
		if c != pick {
			others = append(others, c.String())
		}
	}
	dtypes := map[string]bool{}
	var dl []string
	for _, k := range keys {
		if d := string(ts[k].DType); d != "" && !dtypes[d] {
			dtypes[d] = true
			dl = append(dl, d)
		}
	}
	m.Source = Source{File: file, Prefix: pick.prefix, Kind: pick.kind, Keys: keys, DTypes: dl, Others: others}
	validate := m.Validate
	if shapesOnly {
		validate = m.validateConfig
	}
	if err := validate(); err != nil {
		return nil, fmt.Errorf("%w (in %s, prefix %q)", err, file, pick.prefix)
	}
	return m, nil
}

// readLayer reads base+".weight" and, if present, base+".bias".
func readLayer(file, base string, ts map[string]*tensor.Tensor, shapesOnly bool) (Layer, []string, error) {
	wk, bk := base+".weight", base+".bias"
	w, ok := ts[wk]
	if !ok {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s is missing", file, wk)
	}
	if len(w.Shape) != 4 {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s has shape %s, want 4 dimensions (4·hidden, input+hidden, kh, kw)", file, wk, tensor.ShapeString(w.Shape))
	}
	if !w.IsFloat() {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s is a %s tensor, want floating-point weights", file, wk, w.DType)
	}
	rows, cols, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	if rows%4 != 0 || rows == 0 {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s has %d output channels, not a positive multiple of 4: a ConvLSTM conv produces 4 gates of hidden channels each", file, wk, rows)
	}
	hid := rows / 4
	if cols <= hid {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s has %d input channels, want input+hidden with hidden = %d/4 = %d, so more than %d", file, wk, cols, rows, hid, hid)
	}
	if len(w.Data) != w.NumElements() && !(shapesOnly && w.Data == nil) {
		return Layer{}, nil, fmt.Errorf("convlstm: %s: %s has %d values for shape %s", file, wk, len(w.Data), tensor.ShapeString(w.Shape))
	}
	l := Layer{LayerConfig: LayerConfig{InputDim: cols - hid, HiddenDim: hid, KernelH: kh, KernelW: kw}, Weight: w.Data}
	keys := []string{wk}
	if b, ok := ts[bk]; ok {
		if len(b.Shape) != 1 || b.Shape[0] != rows || !b.IsFloat() || (len(b.Data) != rows && !(shapesOnly && b.Data == nil)) {
			return Layer{}, nil, fmt.Errorf("convlstm: %s: %s has shape %s, want (%d,)", file, bk, tensor.ShapeString(b.Shape), rows)
		}
		l.HasBias, l.Bias = true, b.Data
		keys = append(keys, bk)
	}
	return l, keys, nil
}

func listCandidates(cs []candidate) string {
	if len(cs) == 0 {
		return "none"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

func sampleNames(names []string) string {
	if len(names) == 0 {
		return "no tensors"
	}
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(", … (%d tensors)", len(names))
	}
	return strings.Join(names, ", ")
}
