//go:build integration && !race

package credentials

const raceEnabled = false
