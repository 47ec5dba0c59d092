//go:build !race

package token

// raceEnabled: see race_test.go.
const raceEnabled = false
