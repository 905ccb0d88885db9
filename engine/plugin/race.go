//go:build race

package plugin

// raceSlowdown scales call and init deadlines in race-detector builds, whose host code
// (feature gathering, copies, the watchdog) runs 5-20x slower, so that tests under -race
// check behaviour rather than the detector's speed. Production builds never use -race.
const raceSlowdown = 10
