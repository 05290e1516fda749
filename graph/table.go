package graph

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// maxOpset is the newest default-domain opset a model may import.
const maxOpset = 21

// many is the input or output count of a variadic op.
const many = 1 << 20

// opDef declares one operator: everything the compiler and the runner know
// about it. Each family file (ops_shape.go, ops_reduce.go, ...) declares its
// ops in one table literal and registers it in its init.
type opDef struct {
	name string
	// since lists the ONNX since-versions implemented, ascending; the op
	// runs at opsets from since[0] to until (0: maxOpset). until is the
	// opset before the first version we do not implement.
	since []int64
	until int64
	// in and out are the allowed counts {min, max}. Inputs below min must be
	// named unless optIn is set (Loop's M and cond); outputs may be omitted
	// ("") from index out[0] on.
	in, out [2]int
	optIn   bool
	// seqIn: the op takes sequences (ops_sequence.go) as inputs; any other
	// op given one is refused.
	seqIn bool
	// attrs are the attributes the op accepts; any other is refused.
	attrs []attrSpec
	// check validates attribute values and prepares per-node state at
	// compile time (nil: nothing beyond attrs).
	check func(c *compiler, n *node) error
	// run is the shape/dtype rule and the kernel in one: it checks the
	// inputs, works out each output's shape and dtype and, unless the
	// value is a float in the dry pass (x.dry), computes it. Integer
	// values are computed in the dry pass too: shapes flow through them.
	run func(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// attrSpec is one attribute an op accepts: its type, the opsets where it
// exists (0: no bound), and for strings the values we implement.
type attrSpec struct {
	name     string
	kind     onnxpb.AttributeProto_AttributeType
	from, to int64
	values   []string
}

// Attribute constructors for the tables.
func aInt(name string) attrSpec    { return attrSpec{name: name, kind: onnxpb.AttributeProto_INT} }
func aInts(name string) attrSpec   { return attrSpec{name: name, kind: onnxpb.AttributeProto_INTS} }
func aFloat(name string) attrSpec  { return attrSpec{name: name, kind: onnxpb.AttributeProto_FLOAT} }
func aFloats(name string) attrSpec { return attrSpec{name: name, kind: onnxpb.AttributeProto_FLOATS} }
func aTensor(name string) attrSpec { return attrSpec{name: name, kind: onnxpb.AttributeProto_TENSOR} }
func aGraph(name string) attrSpec  { return attrSpec{name: name, kind: onnxpb.AttributeProto_GRAPH} }

// aString accepts a string attribute with one of the given values (any
// value when none are given).
func aString(name string, values ...string) attrSpec {
	return attrSpec{name: name, kind: onnxpb.AttributeProto_STRING, values: values}
}

// upTo and since bound the opsets where the attribute exists.
func (a attrSpec) upTo(v int64) attrSpec   { a.to = v; return a }
func (a attrSpec) sinceV(v int64) attrSpec { a.from = v; return a }
func (a attrSpec) inRange(opset int64) bool {
	return (a.from == 0 || opset >= a.from) && (a.to == 0 || opset <= a.to)
}

var table = map[string]*opDef{}

// register adds a family's ops to the table (from the family file's init).
func register(defs ...*opDef) {
	for _, d := range defs {
		if table[d.name] != nil {
			panic("graph: operator " + d.name + " registered twice")
		}
		if len(d.since) == 0 || d.run == nil {
			panic("graph: operator " + d.name + " has no versions or no kernel")
		}
		table[d.name] = d
	}
}

// SupportedOps lists the operators the interpreter runs (OpsetRange gives
// the opsets of each).
func SupportedOps() []string {
	var s []string
	for k := range table {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// OpsetRange is the range of opsets in which op is supported (0, 0 when it
// is not).
func OpsetRange(op string) (from, to int64) {
	d := table[op]
	if d == nil {
		return 0, 0
	}
	return d.since[0], d.last()
}

func (d *opDef) last() int64 {
	if d.until != 0 {
		return d.until
	}
	return maxOpset
}

// checkNode resolves a node's op in the table and checks its opset, arity
// and attributes. It is the only place an op's declaration is enforced.
func (c *compiler) checkNode(n *node) error {
	d := table[n.op]
	if d == nil {
		return c.unsupported(n, "", "operator %s is not supported (%d operators are; see graph.SupportedOps)", n.op, len(table))
	}
	if n.opset < d.since[0] || n.opset > d.last() {
		return c.unsupported(n, "", "%s is supported at opsets %d to %d, the model uses opset %d", n.op, d.since[0], d.last(), n.opset)
	}
	n.def = d
	if len(n.in) < d.in[0] || len(n.in) > d.in[1] {
		return c.errf(n, "%d inputs, want %s", len(n.in), countRange(d.in))
	}
	if len(n.out) < d.out[0] || len(n.out) > d.out[1] {
		return c.errf(n, "%d outputs, want %s", len(n.out), countRange(d.out))
	}
	if !d.optIn {
		for i := 0; i < d.in[0]; i++ {
			if n.in[i] == "" {
				return c.errf(n, "required input #%d is empty", i)
			}
		}
	}
	for i := 0; i < d.out[0]; i++ {
		if n.out[i] == "" {
			return c.errf(n, "required output #%d has an empty name", i)
		}
	}
	names := make([]string, 0, len(n.attrs))
	for name := range n.attrs {
		names = append(names, name)
	}
	sort.Strings(names) // report the first in a stable order
	for _, name := range names {
		a := n.attrs[name]
		i := slices.IndexFunc(d.attrs, func(s attrSpec) bool { return s.name == name })
		if i < 0 || !d.attrs[i].inRange(n.opset) {
			return c.unsupported(n, name, "attribute %q is not supported", name)
		}
		spec := d.attrs[i]
		if a.GetRefAttrName() != "" {
			return c.unsupported(n, name, "attribute %q refers to a function attribute (%q); functions are not supported", name, a.GetRefAttrName())
		}
		if t := a.GetType(); t != spec.kind && t != onnxpb.AttributeProto_UNDEFINED {
			return c.errAttr(n, name, "attribute %q has type %s, want %s", name, t, spec.kind)
		}
		if spec.kind == onnxpb.AttributeProto_STRING && len(spec.values) > 0 && !slices.Contains(spec.values, string(a.GetS())) {
			return c.unsupported(n, name, "attribute %s=%q is not supported (supported: %s)", name, a.GetS(), strings.Join(spec.values, ", "))
		}
	}
	if d.check != nil {
		return d.check(c, n)
	}
	return nil
}

func countRange(r [2]int) string {
	switch {
	case r[0] == r[1]:
		return fmt.Sprint(r[0])
	case r[1] >= many:
		return fmt.Sprintf("%d or more", r[0])
	}
	return fmt.Sprintf("%d to %d", r[0], r[1])
}

// Attribute accessors for kernels and checks. A missing attribute gives
// the default; checkNode has already checked the types.

func attrInt(n *node, name string, def int64) int64 {
	if a := n.attrs[name]; a != nil && a.I != nil {
		return a.GetI()
	}
	return def
}

func attrInts(n *node, name string) ([]int64, bool) {
	a := n.attrs[name]
	if a == nil {
		return nil, false
	}
	return a.Ints, true
}

func attrFloat(n *node, name string, def float32) float32 {
	if a := n.attrs[name]; a != nil && a.F != nil {
		return a.GetF()
	}
	return def
}

func attrString(n *node, name, def string) string {
	if a := n.attrs[name]; a != nil && a.S != nil {
		return string(a.S)
	}
	return def
}

func hasAttr(n *node, name string) bool { return n.attrs[name] != nil }
