//go:build !amd64 || purego

package ops

// The Winograd transforms: the pure-Go versions on this build.
var (
	winoIn  = winoInGo
	winoOut = winoOutGo
)
