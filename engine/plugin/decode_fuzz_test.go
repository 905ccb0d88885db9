package plugin

import (
	"testing"

	"github.com/podium-rank/podium/sdk/abi"
)

// FuzzDecode feeds arbitrary guest outputs to the host's output checks: whatever a guest
// writes, decode must not panic, and what it accepts must satisfy sdk/ABI.md §4.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), uint8(5), []byte{0, 0, 128, 63})
	f.Add(uint8(2), uint8(3), []byte{1, 0, 7, 255, 255, 255, 255})
	f.Add(uint8(3), uint8(4), []byte{2, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, kindCode, n uint8, out []byte) {
		kind := abi.KindOf(uint32(kindCode%3) + 1)
		h, err := abi.NewHeader(kind, 3, abi.Shape{N: int(n)})
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, h.Len())
		h.Put(b)
		// The guest's writes land on the output sections and the order length word.
		copy(b[h[abi.HOutScore]:], out)
		if len(out) > 0 {
			copy(b[h[abi.HOutOrder]:], out[1:])
			b[4*abi.HOutOrderLen] = out[0]
		}
		p := &Plugin{kind: kind}
		var o Output
		if msg := p.decode(b, &h, &o, &instance{}); msg != "" {
			return
		}
		switch kind {
		case abi.KindDiversity:
			seen := map[int32]bool{}
			for _, i := range o.Order {
				if i < 0 || int(i) >= int(n) || seen[i] {
					t.Fatalf("accepted order %v for %d candidates", o.Order, n)
				}
				seen[i] = true
			}
		default:
			if len(o.Scores) != int(n) {
				t.Fatalf("%d scores for %d candidates", len(o.Scores), n)
			}
			for _, pin := range o.Pin {
				if pin < -1 || int(pin) >= int(n) {
					t.Fatalf("accepted pin %d", pin)
				}
			}
		}
	})
}
