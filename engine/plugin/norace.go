//go:build !race

package plugin

// raceSlowdown scales call and init deadlines; see race.go.
const raceSlowdown = 1
