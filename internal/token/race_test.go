//go:build race

package token

// raceEnabled: the race detector's instrumentation changes escape analysis,
// so allocation counts are only asserted without it.
const raceEnabled = true
