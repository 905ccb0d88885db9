package twotower

import (
	"encoding/json"
	"testing"

	"github.com/podium-rank/podium/sdk/abi"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// TestManifest checks manifest.json against the ABI and that its default params, with the
// features the host adds, configure a Ranker.
func TestManifest(t *testing.T) {
	m := sdktest.Manifest(t, "manifest.json")
	if m.Kind != abi.KindRank || m.ABI != abi.Version || m.Name != "rank/two-tower" {
		t.Fatalf("manifest %+v", m)
	}
	var params map[string]any
	if err := json.Unmarshal(m.Params, &params); err != nil {
		t.Fatal(err)
	}
	params["features"] = m.Features
	params["attributes"] = m.Needs.Attributes
	p, _ := json.Marshal(params)
	if _, err := New(p, NativeKernels); err != nil {
		t.Fatalf("default params: %v", err)
	}
}

// effective returns params as the host gives them to the plugin (sdk/ABI.md §2).
func effective(t testing.TB, params []byte) []byte {
	t.Helper()
	return sdktest.EffectiveParams(t, "manifest.json", params)
}
