package features

import (
	"fmt"
	"sync"
	"testing"
)

func TestKVBytes(t *testing.T) {
	kv := NewKV(1)
	requireEqual(t, kv.Stats().MaxBytes >= MinKVBytes, true, "capacity rounded up to MinKVBytes")
	_, ok := kv.Get(nil, []byte("a"))
	requireEqual(t, ok, false, "Get absent")
	requireNoError(t, kv.Set([]byte("a"), []byte("xyz")), "Set")
	requireNoError(t, kv.Set([]byte("empty"), nil), "Set empty value")
	got, ok := kv.Get([]byte("pre:"), []byte("a"))
	requireEqual(t, ok, true, "Get ok")
	requireEqual(t, string(got), "pre:xyz", "Get appends to dst")
	got, ok = kv.Get(nil, []byte("empty"))
	requireEqual(t, ok && len(got) == 0, true, "empty value is present")
	requireEqual(t, kv.Has([]byte("a")), true, "Has")
	kv.Del([]byte("a"))
	requireEqual(t, kv.Has([]byte("a")), false, "Has after Del")
	requireEqual(t, kv.Stats().Entries, uint64(1), "Entries")
	kv.Reset()
	requireEqual(t, kv.Has([]byte("empty")), false, "Has after Reset")
	requirePanics(t, func() { NewKV(0) }, "NewKV(0)")
}

func TestKVEntryLimit(t *testing.T) {
	kv := NewKV(MinKVBytes)
	key := []byte("0123456789abcdef")
	// The largest float32 vector that fits under a 16-byte key, and one more.
	fit := (MaxEntryBytes - len(key) - 1) / 4
	big := make([]float32, fit)
	big[fit-1] = 42
	requireNoError(t, kv.PutFloat32s(key, big), "PutFloat32s at the limit")
	got, ok := kv.GetFloat32s(key, nil)
	requireEqual(t, ok, true, "GetFloat32s at the limit")
	requireEqual(t, len(got), fit, "len at the limit")
	requireEqual(t, got[fit-1], float32(42), "last value at the limit")

	requireErrorIs(t, kv.PutFloat32s(key, make([]float32, fit+1)), ErrTooLarge, "PutFloat32s over the limit")
	requireErrorIs(t, kv.PutUint64s(key, make([]uint64, MaxEntryBytes/8)), ErrTooLarge, "PutUint64s over the limit")
	requireErrorIs(t, kv.Set(key, make([]byte, MaxEntryBytes-len(key)+1)), ErrTooLarge, "Set over the limit")
	requireNoError(t, kv.Set(key, make([]byte, MaxEntryBytes-len(key))), "Set at the limit")
	raw, ok := kv.Get(nil, key)
	requireEqual(t, ok && len(raw) == MaxEntryBytes-len(key), true, "raw value at the limit is stored")
}

func TestKVTyped(t *testing.T) {
	kv := NewKV(MinKVBytes)
	requireNoError(t, kv.PutFloat32s([]byte("s:1"), []float32{0.5, nan, -1}), "PutFloat32s")
	requireNoError(t, kv.PutUint64s([]byte("c:1"), []uint64{1 << 40, 3}), "PutUint64s")

	dst := make([]float32, 5, 8)
	got, ok := kv.GetFloat32s([]byte("s:1"), dst)
	requireEqual(t, ok, true, "GetFloat32s ok")
	requireSameFloats(t, got, []float32{0.5, nan, -1}, "GetFloat32s")
	if &got[0] != &dst[0] {
		t.Fatal("GetFloat32s did not reuse dst")
	}
	u, ok := kv.GetUint64s([]byte("c:1"), nil)
	requireEqual(t, ok, true, "GetUint64s ok")
	requireEqual(t, u, []uint64{1 << 40, 3}, "GetUint64s")

	// Absent keys and keys of the other kind read as not found, with an empty result.
	got, ok = kv.GetFloat32s([]byte("nope"), dst)
	requireEqual(t, ok || len(got) != 0, false, "GetFloat32s absent")
	got, ok = kv.GetFloat32s([]byte("c:1"), dst)
	requireEqual(t, ok || len(got) != 0, false, "GetFloat32s on uint64s")
	u, ok = kv.GetUint64s([]byte("s:1"), u)
	requireEqual(t, ok || len(u) != 0, false, "GetUint64s on float32s")
	requireNoError(t, kv.Set([]byte("raw"), []byte{hdrFloat32s1, 1, 2}), "Set raw")
	_, ok = kv.GetFloat32s([]byte("raw"), nil)
	requireEqual(t, ok, false, "GetFloat32s on corrupt bytes")
}

// TestKVHammer has writers replace vectors while readers decode them under -race; every
// vector read must be one a writer stored whole (all elements equal to the generation).
func TestKVHammer(t *testing.T) {
	kv := NewKV(MinKVBytes)
	const keys, gens = 64, 50
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]float32, 16)
			for g := 0; g < gens; g++ {
				for i := range v {
					v[i] = float32(g)
				}
				for k := w; k < keys; k += 2 {
					if err := kv.PutFloat32s([]byte(fmt.Sprint("k", k)), v[:1+k%16]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []float32
			for n := 0; n < gens*keys; n++ {
				k := n % keys
				var ok bool
				dst, ok = kv.GetFloat32s([]byte(fmt.Sprint("k", k)), dst)
				if !ok {
					continue
				}
				if len(dst) != 1+k%16 {
					t.Errorf("key %d: %d values", k, len(dst))
					return
				}
				for _, x := range dst {
					if x != dst[0] {
						t.Errorf("key %d: torn vector %v", k, dst)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	got, ok := kv.GetFloat32s([]byte("k5"), nil)
	requireEqual(t, ok, true, "final k5")
	requireSameFloats(t, got, []float32{gens - 1, gens - 1, gens - 1, gens - 1, gens - 1, gens - 1}, "final k5")
}
