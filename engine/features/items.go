package features

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Arena geometry. An item's values for 16 consecutive columns (one column group) sit in one
// 64-byte cache line, so gathering 32 adjacent features of an item touches two lines. A block
// holds one column group for 1024 consecutive item ids (64 KiB) and is allocated only when a
// column of its group is first written for one of those items.
const (
	chunkBits  = 10
	chunkItems = 1 << chunkBits // item ids per chunk
	groupBits  = 4
	groupCols  = 1 << groupBits // columns per group: 16 × 4 B = 64 B
	blockLen   = chunkItems * groupCols
	blockBytes = blockLen * 4
)

// DefaultMaxItems is the item limit NewItemStore uses when given maxItems <= 0.
const DefaultMaxItems = 1 << 26

// block holds the bits of one column group for chunkItems items, item-major:
// value (item i, column g*16+k) is at i<<groupBits | k. Elements are read and written only
// with sync/atomic, so readers never race with writers.
type block [blockLen]uint32

// itemChunk holds one block pointer per column group for chunkItems consecutive item ids.
// A chunk never moves once published; only its nil block pointers are filled in later.
type itemChunk struct {
	groups []atomic.Pointer[block]
}

// ItemStore holds float32 item features by (dense item id, column id) in a chunked columnar
// arena. It grows with the highest item id written, without moving existing data, and costs
// memory only for column groups that were written: 64 KiB per 1024 items per 16 columns.
//
// A value that was never set, or was cleared, reads as NaN (see Missing). Callers that want
// a per-column default substitute it when they see NaN; storing NaN is the same as clearing.
//
// ItemStore is goroutine-safe and built for many readers beside a few writers: every value
// is stored and loaded atomically, so a concurrent Gather sees each value either before or
// after a write, never torn. A row written by SetRow is not atomic as a whole: a reader may
// see some of its new values next to old ones. Reads take no lock; writes lock only to grow.
//
// Why an arena rather than fastcache is in RATIONALE.md, "Why a dense arena for item features?".
type ItemStore struct {
	maxCols  int
	ngroups  int
	maxItems uint64

	mu     sync.Mutex // serialises growth: the chunk directory and block allocation
	dir    atomic.Pointer[[]*itemChunk]
	blocks atomic.Int64 // allocated blocks, for SizeBytes
}

// NewItemStore returns an empty store for column ids 0..maxCols-1 and item ids
// 0..maxItems-1 (DefaultMaxItems if maxItems <= 0). Pass Schema.MaxCols() as maxCols.
// It panics if maxCols is not in 1..MaxColumns (a programming error).
func NewItemStore(maxCols, maxItems int) *ItemStore {
	if maxCols <= 0 || maxCols > MaxColumns {
		panic(fmt.Sprintf("features: NewItemStore(%d, _): maxCols must be in 1..%d", maxCols, MaxColumns))
	}
	if maxItems <= 0 || uint64(maxItems) > 1<<32 {
		maxItems = DefaultMaxItems
	}
	s := &ItemStore{
		maxCols:  maxCols,
		ngroups:  (maxCols + groupCols - 1) / groupCols,
		maxItems: uint64(maxItems),
	}
	s.dir.Store(new([]*itemChunk))
	return s
}

// MaxCols returns the column limit given to NewItemStore.
func (s *ItemStore) MaxCols() int { return s.maxCols }

// checkCol panics on a column id outside the store: column ids come from a Schema with the
// same limit, so a bad one is a programming error.
func (s *ItemStore) checkCol(col int) {
	if uint(col) >= uint(s.maxCols) {
		panic(fmt.Sprintf("features: column %d out of range [0,%d)", col, s.maxCols))
	}
}

// chunkForWrite returns the chunk of id, growing the directory if needed.
func (s *ItemStore) chunkForWrite(id uint32) (*itemChunk, error) {
	ci := int(id >> chunkBits)
	if dir := *s.dir.Load(); ci < len(dir) {
		return dir[ci], nil
	}
	if uint64(id) >= s.maxItems {
		return nil, fmt.Errorf("cannot store item %d: %w (limit %d)", id, ErrIDOutOfRange, s.maxItems)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := *s.dir.Load()
	if ci < len(dir) {
		return dir[ci], nil
	}
	// Appending may write into the shared backing array beyond len(dir); readers of the
	// old directory never index that far, so this does not race with them.
	for len(dir) <= ci {
		dir = append(dir, &itemChunk{groups: make([]atomic.Pointer[block], s.ngroups)})
	}
	s.dir.Store(&dir)
	return dir[ci], nil
}

// blockForWrite returns the block of column group g in c, allocating it (all NaN) if needed.
func (s *ItemStore) blockForWrite(c *itemChunk, g int) *block {
	if b := c.groups[g].Load(); b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := c.groups[g].Load(); b != nil {
		return b
	}
	b := new(block)
	for i := range b {
		b[i] = nanBits // not yet published: plain stores are fine
	}
	c.groups[g].Store(b)
	s.blocks.Add(1)
	return b
}

// slotIndex returns the index of (id, col) inside its block.
func slotIndex(id uint32, col int) int {
	return int(id&(chunkItems-1))<<groupBits | col&(groupCols-1)
}

// Set stores v as feature col of item id. It returns ErrIDOutOfRange if id is at or above
// the item limit, and panics if col is out of range.
func (s *ItemStore) Set(id uint32, col int, v float32) error {
	s.checkCol(col)
	c, err := s.chunkForWrite(id)
	if err != nil {
		return err
	}
	b := s.blockForWrite(c, col>>groupBits)
	atomic.StoreUint32(&b[slotIndex(id, col)], math.Float32bits(v))
	return nil
}

// SetRow stores vals[k] as feature cols[k] of item id for every k. Readers may observe the
// row half written. It returns ErrLengthMismatch or ErrIDOutOfRange without storing anything,
// and panics if a column is out of range.
func (s *ItemStore) SetRow(id uint32, cols []int, vals []float32) error {
	if len(cols) != len(vals) {
		return fmt.Errorf("cannot store item %d: %w (%d columns, %d values)", id, ErrLengthMismatch, len(cols), len(vals))
	}
	for _, col := range cols {
		s.checkCol(col)
	}
	c, err := s.chunkForWrite(id)
	if err != nil {
		return err
	}
	for k, col := range cols {
		b := s.blockForWrite(c, col>>groupBits)
		atomic.StoreUint32(&b[slotIndex(id, col)], math.Float32bits(vals[k]))
	}
	return nil
}

// Clear marks every feature of item id missing. It allocates nothing.
func (s *ItemStore) Clear(id uint32) {
	dir := *s.dir.Load()
	ci := int(id >> chunkBits)
	if ci >= len(dir) {
		return
	}
	base := int(id&(chunkItems-1)) << groupBits
	for g := range dir[ci].groups {
		if b := dir[ci].groups[g].Load(); b != nil {
			for k := 0; k < groupCols; k++ {
				atomic.StoreUint32(&b[base+k], nanBits)
			}
		}
	}
}

// Get returns feature col of item id, or NaN if it was never set. It panics if col is out
// of range.
func (s *ItemStore) Get(id uint32, col int) float32 {
	s.checkCol(col)
	dir := *s.dir.Load()
	ci := int(id >> chunkBits)
	if ci >= len(dir) {
		return Missing()
	}
	b := dir[ci].groups[col>>groupBits].Load()
	if b == nil {
		return Missing()
	}
	return math.Float32frombits(atomic.LoadUint32(&b[slotIndex(id, col)]))
}

// gatherBatch is how many items Gather touches ahead of copying; see Gather.
const gatherBatch = 64

// Gather reads features cols of items ids into a column-major matrix: dst[f*len(ids)+i] is
// feature cols[f] of item ids[i], NaN where missing. It reuses dst when cap(dst) is at least
// len(ids)*len(cols) and allocates nothing then; otherwise it allocates a new slice. It
// returns the matrix, of length len(ids)*len(cols). It panics if a column is out of range.
func (s *ItemStore) Gather(ids []uint32, cols []int, dst []float32) []float32 {
	n := len(ids)
	need := n * len(cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	// The column groups the request needs, each once (on the stack).
	var seen [MaxColumns / groupCols / 64]uint64
	var groupBuf [MaxColumns / groupCols]uint8
	groups := groupBuf[:0]
	for _, col := range cols {
		s.checkCol(col)
		g := col >> groupBits
		if seen[g>>6]&(1<<(g&63)) == 0 {
			seen[g>>6] |= 1 << (g & 63)
			groups = append(groups, uint8(g))
		}
	}
	missing := Missing()
	dir := *s.dir.Load()
	for lo := 0; lo < n; lo += gatherBatch {
		hi := min(lo+gatherBatch, n)
		// Random items miss the cache. Copying an item's 32 values is a long loop body, so
		// the CPU would have only about one item's misses in flight; this short first pass
		// loads one word per needed cache line of gatherBatch items, so their misses overlap
		// and the copy below hits the cache. It made Gather 2-3x faster (features-bench.md).
		// The compiler keeps an atomic load even when its result is unused.
		for _, id := range ids[lo:hi] {
			if ci := int(id >> chunkBits); ci < len(dir) {
				base := int(id&(chunkItems-1)) << groupBits
				for _, g := range groups {
					if b := dir[ci].groups[g].Load(); b != nil {
						atomic.LoadUint32(&b[base])
					}
				}
			}
		}
		for i := lo; i < hi; i++ {
			id := ids[i]
			ci := int(id >> chunkBits)
			if ci >= len(dir) {
				for f := range cols {
					dst[f*n+i] = missing
				}
				continue
			}
			blocks := dir[ci].groups
			base := int(id&(chunkItems-1)) << groupBits
			for f, col := range cols {
				v := missing
				if b := blocks[col>>groupBits].Load(); b != nil {
					v = math.Float32frombits(atomic.LoadUint32(&b[base|col&(groupCols-1)]))
				}
				dst[f*n+i] = v
			}
		}
	}
	return dst
}

// SizeBytes returns the memory held by value blocks, in bytes.
func (s *ItemStore) SizeBytes() int64 { return s.blocks.Load() * blockBytes }
