package graph

import "github.com/convlstm-go/convlstm-go/tensor"

// Convolution, pooling, resizing and padding. The Conv kernel itself is in
// conv.go (it moves to the shared engine package).

func init() {
	register(
		&opDef{name: "Conv", since: v(1, 11), in: io(2, 3), out: io(1, 1),
			attrs: []attrSpec{aString("auto_pad", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"), aInts("dilations"), aInt("group"), aInts("kernel_shape"), aInts("pads"), aInts("strides")},
			check: checkConv, run: runConv},
	)
}

// checkConv refuses what the Conv kernel does not implement, whatever the
// weights, and packs constant weights.
func checkConv(c *compiler, n *node) error {
	if g := attrInt(n, "group", 1); g != 1 {
		return c.unsupportedAttr(n, "group", "group=%d: only group=1 is supported", g)
	}
	for _, name := range []string{"strides", "dilations"} {
		if v, ok := attrInts(n, name); ok {
			for _, s := range v {
				if s != 1 {
					return c.unsupportedAttr(n, name, "%s=%v: only 1 is supported", name, v)
				}
			}
		}
	}
	if v, ok := attrInts(n, "kernel_shape"); ok && len(v) != 2 {
		return c.unsupportedAttr(n, "kernel_shape", "kernel_shape=%v: only 2-D convolutions are supported", v)
	}
	if v, ok := attrInts(n, "pads"); ok && len(v) != 4 {
		return c.unsupportedAttr(n, "pads", "pads=%v: only 2-D convolutions (4 pads) are supported", v)
	}
	return c.prepareConv(n, c.prog)
}

func runConv(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return x.conv(n, in)
}
