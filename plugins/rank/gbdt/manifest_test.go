package gbdt

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/podium-rank/podium/sdk/abi"
)

// TestManifest checks manifest.json against the ABI and that its default params, with the
// features the host adds and the fixture model, configure a Ranker.
func TestManifest(t *testing.T) {
	b, err := os.ReadFile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != abi.KindRank || m.ABI != abi.Version || m.Name != "rank/gbdt" {
		t.Fatalf("manifest %+v", m)
	}
	var params map[string]any
	if err := json.Unmarshal(m.Params, &params); err != nil {
		t.Fatal(err)
	}
	params["features"] = m.Features
	params["attributes"] = m.Needs.Attributes
	p, _ := json.Marshal(params)
	if _, err := New(p); err == nil {
		t.Fatal("default params without a model should not configure a ranker")
	}
	_, model := loadFixture(t, "logistic")
	params["model"] = json.RawMessage(model)
	p, _ = json.Marshal(params)
	if _, err := New(p); err != nil {
		t.Fatalf("default params with the fixture model: %v", err)
	}
}

// effective returns params as the host gives them to the plugin (sdk/ABI.md §2): the
// manifest's default params with each top-level key of params replacing the default, and
// "features" and "attributes" set from the manifest unless params give them.
func effective(t testing.TB, params []byte) []byte {
	t.Helper()
	b, err := os.ReadFile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	merged := map[string]json.RawMessage{}
	if len(m.Params) > 0 {
		if err := json.Unmarshal(m.Params, &merged); err != nil {
			t.Fatal(err)
		}
	}
	features, _ := json.Marshal(m.Features)
	attributes, _ := json.Marshal(m.Needs.Attributes)
	merged["features"], merged["attributes"] = features, attributes
	var over map[string]json.RawMessage
	if err := json.Unmarshal(params, &over); err != nil {
		t.Fatal(err)
	}
	for k, v := range over {
		merged[k] = v
	}
	out, err := json.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
