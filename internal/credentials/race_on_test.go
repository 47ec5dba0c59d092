//go:build integration && race

package credentials

// raceEnabled relaxes timing assertions that the race detector's overhead
// (5–10×) would make meaningless.
const raceEnabled = true
