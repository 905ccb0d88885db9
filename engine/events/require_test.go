package events

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
)

// A tiny require-style helper set; each stops the test on failure.

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func isErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func eq[T any](t testing.TB, got, want T, what string, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, want %v", fmt.Sprintf(what, args...), got, want)
	}
}

func near(t testing.TB, got, want, tol float64, what string, args ...any) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Fatalf("%s = %v, want %v ± %v", fmt.Sprintf(what, args...), got, want, tol)
	}
}

func truth(t testing.TB, cond bool, what string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(what, args...)
	}
}
