//go:build race

package ann

// raceEnabled is true under -race, where tests shrink their data sets about tenfold.
const raceEnabled = true
