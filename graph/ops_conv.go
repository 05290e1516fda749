package graph

// Convolution, pooling, resizing and padding. The Conv kernel is in
// conv.go, on the engine's convolution.

func init() {
	register(
		&opDef{name: "Conv", since: v(1, 11), in: io(2, 3), out: io(1, 1),
			attrs: []attrSpec{aString("auto_pad", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"), aInts("dilations"), aInt("group"), aInts("kernel_shape"), aInts("pads"), aInts("strides")},
			check: checkConv, run: runConv},
	)
}
