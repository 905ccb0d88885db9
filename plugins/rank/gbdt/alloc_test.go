//go:build !race

package gbdt

import "testing"

func TestRankDoesNotAllocate(t *testing.T) {
	_, data := loadFixture(t, "logistic")
	m, err := ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Bind(demoColumns, false)
	if err != nil {
		t.Fatal(err)
	}
	feat := benchInput(1000, 0.1)
	out := make([]float32, 1000)
	if a := testing.AllocsPerRun(20, func() { _ = r.Rank(feat, out) }); a != 0 {
		t.Fatalf("Rank allocates %v times per call", a)
	}
}
