package features

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// A tiny require-style helper set; each stops the test at the first failure.

func requireEqual[T any](t testing.TB, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func requireNoError(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func requireErrorIs(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// requireSameFloat compares bit-for-bit-equivalent values, treating every NaN as equal.
func requireSameFloat(t testing.TB, got, want float32, what string) {
	t.Helper()
	if got != want && !(isNaN(got) && isNaN(want)) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func requireSameFloats(t testing.TB, got, want []float32, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] && !(isNaN(got[i]) && isNaN(want[i])) {
			t.Fatalf("%s: [%d] got %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

func requirePanics(t testing.TB, f func(), what string) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s: did not panic", what)
		}
	}()
	f()
}

func isNaN(v float32) bool { return math.IsNaN(float64(v)) }

var nan = Missing()
