package ops

// The kernels the exported functions call. Fast paths chosen at start-up
// replace these; the generic versions are always available as twins.
var (
	convGemm  = convGemmGeneric
	lstmGates = lstmGatesGeneric
)
