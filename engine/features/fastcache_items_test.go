package features

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/fastcache"
)

// fastcacheItemStore is the measured alternative to ItemStore: one fastcache entry per item,
// key = 4-byte dense id, value = hdrFloat32s1 + float32 LE per column up to the highest
// column set (NaN for gaps), so Gather reads a column straight from the copied bytes. It
// lives in a test file because ItemStore beat it (see RATIONALE.md "Why a dense arena for
// item features?"); it stays to keep the benchmark honest and reproducible.
//
// Set and SetRow are read-modify-write on a whole entry, so they lock a stripe per id.
type fastcacheItemStore struct {
	c       *fastcache.Cache
	maxCols int
	stripes [64]sync.Mutex
}

func newFastcacheItemStore(maxCols, maxBytes int) *fastcacheItemStore {
	return &fastcacheItemStore{c: fastcache.New(maxBytes), maxCols: maxCols}
}

func (s *fastcacheItemStore) SetRow(id uint32, cols []int, vals []float32) error {
	if len(cols) != len(vals) {
		return ErrLengthMismatch
	}
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], id)
	mu := &s.stripes[id%uint32(len(s.stripes))]
	mu.Lock()
	defer mu.Unlock()
	b := getBuf()
	defer putBuf(b)
	raw, ok := s.c.HasGet((*b)[:0], k[:])
	if !ok || len(raw) == 0 {
		raw = append(raw[:0], hdrFloat32s1)
	}
	for i, col := range cols {
		if uint(col) >= uint(s.maxCols) {
			panic("column out of range")
		}
		for off := 1 + 4*col; len(raw) < off+4; {
			raw = binary.LittleEndian.AppendUint32(raw, nanBits)
		}
		binary.LittleEndian.PutUint32(raw[1+4*col:], math.Float32bits(vals[i]))
	}
	*b = raw
	s.c.Set(k[:], raw)
	return nil
}

func (s *fastcacheItemStore) Set(id uint32, col int, v float32) error {
	return s.SetRow(id, []int{col}, []float32{v})
}

func (s *fastcacheItemStore) Get(id uint32, col int) float32 {
	return s.Gather([]uint32{id}, []int{col}, nil)[0]
}

// Gather has ItemStore.Gather's contract. It copies each item's entry into one reused
// scratch buffer and allocates nothing when dst has capacity.
func (s *fastcacheItemStore) Gather(ids []uint32, cols []int, dst []float32) []float32 {
	n := len(ids)
	need := n * len(cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	b := getBuf()
	var k [4]byte
	missing := Missing()
	for i, id := range ids {
		binary.LittleEndian.PutUint32(k[:], id)
		raw, ok := s.c.HasGet((*b)[:0], k[:])
		*b = raw
		if !ok || len(raw) == 0 || raw[0] != hdrFloat32s1 {
			raw = nil
		}
		for f, col := range cols {
			v := missing
			if off := 1 + 4*col; off+4 <= len(raw) {
				v = math.Float32frombits(binary.LittleEndian.Uint32(raw[off:]))
			}
			dst[f*n+i] = v
		}
	}
	putBuf(b)
	return dst
}

// mapItemStore is the benchmark baseline: map[uint32][]float32 under a sync.RWMutex, one
// dense vector per item, one RLock per Gather.
type mapItemStore struct {
	mu      sync.RWMutex
	m       map[uint32][]float32
	maxCols int
}

func newMapItemStore(maxCols int) *mapItemStore {
	return &mapItemStore{m: make(map[uint32][]float32), maxCols: maxCols}
}

func (s *mapItemStore) SetRow(id uint32, cols []int, vals []float32) error {
	if len(cols) != len(vals) {
		return ErrLengthMismatch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.m[id]
	for i, col := range cols {
		for len(row) <= col {
			row = append(row, Missing())
		}
		row[col] = vals[i]
	}
	s.m[id] = row
	return nil
}

func (s *mapItemStore) Gather(ids []uint32, cols []int, dst []float32) []float32 {
	n := len(ids)
	need := n * len(cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	missing := Missing()
	s.mu.RLock()
	for i, id := range ids {
		row := s.m[id]
		for f, col := range cols {
			v := missing
			if col < len(row) {
				v = row[col]
			}
			dst[f*n+i] = v
		}
	}
	s.mu.RUnlock()
	return dst
}

// itemGatherer is what the benchmark compares.
type itemGatherer interface {
	SetRow(id uint32, cols []int, vals []float32) error
	Gather(ids []uint32, cols []int, dst []float32) []float32
}

// TestItemStoresAgree checks the three implementations return the same matrices, so the
// benchmark compares equal work.
func TestItemStoresAgree(t *testing.T) {
	stores := map[string]itemGatherer{
		"arena":     NewItemStore(64, 0),
		"fastcache": newFastcacheItemStore(64, MinKVBytes),
		"map":       newMapItemStore(64),
	}
	for _, s := range stores {
		requireNoError(t, s.SetRow(3, []int{0, 40}, []float32{1, 2}), "SetRow 3")
		requireNoError(t, s.SetRow(3, []int{5}, []float32{3}), "SetRow 3 again")
		requireNoError(t, s.SetRow(2000, []int{63}, []float32{4}), "SetRow 2000")
	}
	ids := []uint32{3, 2000, 7, 3}
	cols := []int{0, 5, 40, 63, 1}
	want := stores["arena"].Gather(ids, cols, nil)
	requireSameFloats(t, want, []float32{1, nan, nan, 1, 3, nan, nan, 3, 2, nan, nan, 2, nan, 4, nan, nan, nan, nan, nan, nan}, "arena")
	for name, s := range stores {
		requireSameFloats(t, s.Gather(ids, cols, nil), want, name)
	}
	fc := stores["fastcache"].(*fastcacheItemStore)
	requireSameFloat(t, fc.Get(3, 40), 2, "fastcache Get")
	requireNoError(t, fc.Set(3, 40, 9), "fastcache Set")
	requireSameFloat(t, fc.Get(3, 40), 9, "fastcache Get after Set")
}
