package pipeline

import "testing"

func TestAffinity(t *testing.T) {
	var a Affinity
	a.Reset()
	if a.Active() || a.Get(3) != 0 {
		t.Fatal("empty affinity is active")
	}
	a.Attr = 1
	a.Add(3, 0.5)
	a.Add(0, 9)  // a missing value
	a.Add(4, -1) // not a weight
	a.Add(5, 1)
	a.Add(3, 1) // 3 now weighs 1.5
	a.Normalize()
	if !a.Active() || a.Get(3) != 1 || a.Get(5) != float32(1)/1.5 || a.Get(4) != 0 || a.Get(0) != 0 || len(a.Codes) != 2 {
		t.Fatalf("affinity %+v", a)
	}
	a.Reset()
	if a.Active() || a.Attr != -1 {
		t.Fatalf("after Reset %+v", a)
	}
}
