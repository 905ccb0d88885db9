package catalog

import (
	"math"
	"sync/atomic"
)

// chunkBits sets the chunk size of the growable columns: 4096 entries a chunk.
const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// u32Column is a growable column of uint32 values indexed by dense id. Chunks never move
// once allocated, so readers never observe a torn slice; every element is read and written
// atomically, so readers may run concurrently with one writer. Growth must be serialised by
// the caller (the catalog's write lock).
type u32Column struct {
	dir atomic.Pointer[[]*[chunkSize]uint32]
}

// grow makes room for ids below n. Not goroutine-safe with other calls to grow.
func (c *u32Column) grow(n int) {
	var cur []*[chunkSize]uint32
	if p := c.dir.Load(); p != nil {
		cur = *p
	}
	need := (n + chunkMask) >> chunkBits
	if need <= len(cur) {
		return
	}
	next := make([]*[chunkSize]uint32, need)
	copy(next, cur)
	for i := len(cur); i < need; i++ {
		next[i] = new([chunkSize]uint32)
	}
	c.dir.Store(&next)
}

// load returns the value for id, or 0 when id is beyond the column.
func (c *u32Column) load(id uint32) uint32 {
	p := c.dir.Load()
	if p == nil {
		return 0
	}
	d := *p
	ci := int(id >> chunkBits)
	if ci >= len(d) {
		return 0
	}
	return atomic.LoadUint32(&d[ci][id&chunkMask])
}

// store sets the value for id, which must be below the size given to grow.
func (c *u32Column) store(id uint32, v uint32) {
	d := *c.dir.Load()
	atomic.StoreUint32(&d[id>>chunkBits][id&chunkMask], v)
}

// vecColumn holds one fixed-dimension float32 vector per dense id, laid out row after row
// in chunks that never move. Elements are accessed atomically (a plain MOV on amd64 for
// loads), so a reader racing a writer sees each coordinate either old or new.
type vecColumn struct {
	dim int
	dir atomic.Pointer[[][]uint32]
}

func (c *vecColumn) grow(n int) {
	var cur [][]uint32
	if p := c.dir.Load(); p != nil {
		cur = *p
	}
	need := (n + chunkMask) >> chunkBits
	if need <= len(cur) {
		return
	}
	next := make([][]uint32, need)
	copy(next, cur)
	for i := len(cur); i < need; i++ {
		next[i] = make([]uint32, chunkSize*c.dim)
	}
	c.dir.Store(&next)
}

// read appends the vector of id to dst. Missing ids read as zeros.
func (c *vecColumn) read(id uint32, dst []float32) []float32 {
	p := c.dir.Load()
	ci := int(id >> chunkBits)
	if p == nil || ci >= len(*p) {
		for i := 0; i < c.dim; i++ {
			dst = append(dst, 0)
		}
		return dst
	}
	off := int(id&chunkMask) * c.dim
	row := (*p)[ci][off : off+c.dim]
	for i := range row {
		dst = append(dst, math.Float32frombits(atomic.LoadUint32(&row[i])))
	}
	return dst
}

// write stores vec as the vector of id, which must be below the size given to grow.
func (c *vecColumn) write(id uint32, vec []float32) {
	d := *c.dir.Load()
	off := int(id&chunkMask) * c.dim
	row := d[id>>chunkBits][off : off+c.dim]
	for i, x := range vec {
		atomic.StoreUint32(&row[i], math.Float32bits(x))
	}
}

// strColumn holds write-once strings by dense id (the reverse of the interner). A slot is
// written before the id is published, so readers of published ids need no lock.
type strColumn struct {
	dir atomic.Pointer[[]*[chunkSize]string]
}

func (c *strColumn) grow(n int) {
	var cur []*[chunkSize]string
	if p := c.dir.Load(); p != nil {
		cur = *p
	}
	need := (n + chunkMask) >> chunkBits
	if need <= len(cur) {
		return
	}
	next := make([]*[chunkSize]string, need)
	copy(next, cur)
	for i := len(cur); i < need; i++ {
		next[i] = new([chunkSize]string)
	}
	c.dir.Store(&next)
}

func (c *strColumn) load(id uint32) string {
	p := c.dir.Load()
	if p == nil || int(id>>chunkBits) >= len(*p) {
		return ""
	}
	return (*p)[id>>chunkBits][id&chunkMask]
}

func (c *strColumn) store(id uint32, s string) {
	(*c.dir.Load())[id>>chunkBits][id&chunkMask] = s
}
