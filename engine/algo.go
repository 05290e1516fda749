package engine

// Which algorithm runs a convolution is decided here, and only here.

// Algo is how a Conv2D computes.
type Algo int

const (
	// Direct is the offset GEMM: the zero-padded input is read through a
	// table of tap offsets, one output column per padded pixel position
	// (stride 1, any dilation, groups).
	Direct Algo = iota
	// Winograd is F(2×2, 3×3): 16 multiplications per 2×2 output tile and
	// input channel instead of 36, or for a 5×5 kernel F(2×2, 5×5): 36
	// instead of 100 (bf16 precision: as four 3×3 blocks, 64); other
	// kernels with sides of 3 and 5 run as 3×3 blocks.
	Winograd
	// Gather copies the taps of each output pixel into a dense matrix
	// first (im2col): strided convolutions, where the offset GEMM would
	// compute stride² times the outputs needed.
	Gather
)

func (a Algo) String() string {
	return [...]string{"direct", "winograd", "gather"}[a]
}

// WinogradMinChannels is the fewest channels for which a convolution with
// kernel sides of 3 and 5 (other than 5×5) runs as Winograd F(2×2, 3×3)
// blocks: below it the transforms cost more than the 2.25× fewer
// multiplications save (measured on Zen 3: break even at 8, 1.34× at 16,
// about 1.6× at 32). For a plain convolution the channels are its input
// channels; for a ConvLSTM cell they are its hidden channels, since the
// recurrent half is what every step must recompute (its input half may then
// be a single channel: it adds one row to the GEMM).
const WinogradMinChannels = 16

// WinogradMinChannels5x5 is WinogradMinChannels for a 5×5 kernel, which
// runs F(2×2, 5×5): 36 multiplications per tile and channel for the direct
// method's 100. BenchmarkWinograd5x5 on Zen 5 (AVX-512), 64×64, against the
// direct offset GEMM: 1.70× at 16 input channels, 1.42× at 8, 0.94× at 4.
// (In bf16 precision a 5×5 kernel runs as four 3×3 blocks, about even with
// direct from 8 to 16 channels.)
const WinogradMinChannels5x5 = 8

// winogradMinChannels is the threshold for the spec's kernel.
func winogradMinChannels(s ConvSpec) int {
	if s.KH == 5 && s.KW == 5 {
		return WinogradMinChannels5x5
	}
	return WinogradMinChannels
}

// winoSide reports whether a kernel side can run as Winograd 3×3 blocks.
func winoSide(k int) bool { return k == 3 || k == 5 }

// chooseAlgo picks the algorithm for a convolution; channels is what
// WinogradMinChannels is compared with. direct forbids Winograd (a user's
// choice, for comparison).
func chooseAlgo(s ConvSpec, channels int, direct bool) Algo {
	if s.strideH() > 1 || s.strideW() > 1 {
		return Gather
	}
	if !direct && s.groups() == 1 && s.dilH() == 1 && s.dilW() == 1 &&
		winoSide(s.KH) && winoSide(s.KW) && channels >= winogradMinChannels(s) {
		return Winograd
	}
	return Direct
}
