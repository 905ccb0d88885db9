package mmr

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/podium-rank/podium/sdk/abi"
)

// TestManifest checks manifest.json against the ABI and that its default params, with the
// features and attributes the host adds, configure a Diversifier.
func TestManifest(t *testing.T) {
	b, err := os.ReadFile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != abi.KindDiversity || m.ABI != abi.Version || m.Name != "diversity/mmr" {
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
