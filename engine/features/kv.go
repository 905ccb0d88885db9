package features

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/fastcache"
)

// MaxEntryBytes is the largest len(key)+len(value) a KV stores: fastcache keeps entries in
// 64 KiB chunks with a 4-byte length header and drops bigger ones silently, so KV refuses
// them with ErrTooLarge instead. A float32 vector under a 16-byte key may hold 16,378 values.
const MaxEntryBytes = 64*1024 - 4 - 1

// MinKVBytes is the smallest capacity fastcache allocates, whatever maxBytes says.
const MinKVBytes = 32 << 20

// KV is a byte-keyed cache of small binary values in fastcache, with typed helpers for
// float32 and uint64 vectors. It is meant for state that can be rebuilt (user rows, session
// state, real-time counters): under memory pressure or a rare hash collision fastcache
// evicts entries, and a later Get reports them absent.
//
// The memory is held in 64 KiB chunks off the GC's pointer graph, so millions of keys cost
// the garbage collector nothing. KV is goroutine-safe; a Put replaces the whole value, and
// read-modify-write sequences (counters) need the caller's own locking or sharding.
type KV struct {
	c *fastcache.Cache
}

// NewKV returns an empty KV that holds at most maxBytes bytes of entries (at least
// MinKVBytes; fastcache rounds smaller sizes up). It panics if maxBytes <= 0.
func NewKV(maxBytes int) *KV {
	if maxBytes <= 0 {
		panic(fmt.Sprintf("features: NewKV(%d): maxBytes must be positive", maxBytes))
	}
	return &KV{c: fastcache.New(maxBytes)}
}

// bufPool holds encode and decode scratch buffers (*[]byte) for the typed helpers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 2*MaxEntryBytes { // not expected, but never pin a huge buffer
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

func checkEntry(key []byte, n int) error {
	if len(key)+n > MaxEntryBytes {
		return fmt.Errorf("cannot store %d-byte key with %d-byte value: %w (max %d bytes together)",
			len(key), n, ErrTooLarge, MaxEntryBytes)
	}
	return nil
}

// Set stores val under key, replacing any old value. It returns ErrTooLarge if
// len(key)+len(val) exceeds MaxEntryBytes. key and val may be reused after Set returns.
func (kv *KV) Set(key, val []byte) error {
	if err := checkEntry(key, len(val)); err != nil {
		return err
	}
	kv.c.Set(key, val)
	return nil
}

// Get appends the value under key to dst and returns it with true, or returns dst and
// false if key is absent. It allocates only if dst lacks capacity.
func (kv *KV) Get(dst, key []byte) ([]byte, bool) { return kv.c.HasGet(dst, key) }

// Has reports whether key is present.
func (kv *KV) Has(key []byte) bool { return kv.c.Has(key) }

// Del removes key. Removing an absent key is a no-op.
func (kv *KV) Del(key []byte) { kv.c.Del(key) }

// Reset removes every entry.
func (kv *KV) Reset() { kv.c.Reset() }

// PutFloat32s stores the vector v under key (header byte + 4 bytes per value). It returns
// ErrTooLarge if the entry exceeds MaxEntryBytes.
func (kv *KV) PutFloat32s(key []byte, v []float32) error {
	if err := checkEntry(key, 1+4*len(v)); err != nil {
		return err
	}
	b := getBuf()
	*b = appendFloat32s((*b)[:0], v)
	kv.c.Set(key, *b)
	putBuf(b)
	return nil
}

// GetFloat32s decodes the vector under key into dst[:0] and returns it with true. It
// returns dst[:0] and false if key is absent or holds something other than a float32
// vector. It allocates nothing when cap(dst) suffices.
func (kv *KV) GetFloat32s(key []byte, dst []float32) ([]float32, bool) {
	b := getBuf()
	raw, ok := kv.c.HasGet((*b)[:0], key)
	*b = raw
	if ok {
		var err error
		dst, err = decodeFloat32Value(raw, dst)
		ok = err == nil
	} else {
		dst = dst[:0]
	}
	putBuf(b)
	return dst, ok
}

// PutUint64s stores the vector v under key (header byte + 8 bytes per value), for counters
// that must not lose precision. It returns ErrTooLarge if the entry exceeds MaxEntryBytes.
func (kv *KV) PutUint64s(key []byte, v []uint64) error {
	if err := checkEntry(key, 1+8*len(v)); err != nil {
		return err
	}
	b := getBuf()
	*b = appendUint64s((*b)[:0], v)
	kv.c.Set(key, *b)
	putBuf(b)
	return nil
}

// GetUint64s decodes the vector under key into dst[:0] and returns it with true. It returns
// dst[:0] and false if key is absent or holds something other than a uint64 vector. It
// allocates nothing when cap(dst) suffices.
func (kv *KV) GetUint64s(key []byte, dst []uint64) ([]uint64, bool) {
	b := getBuf()
	raw, ok := kv.c.HasGet((*b)[:0], key)
	*b = raw
	if ok {
		var err error
		dst, err = decodeUint64Value(raw, dst)
		ok = err == nil
	} else {
		dst = dst[:0]
	}
	putBuf(b)
	return dst, ok
}

// KVStats is a snapshot of a KV's counters.
type KVStats struct {
	Entries   uint64 // entries currently held
	Bytes     uint64 // bytes currently used by chunks
	MaxBytes  uint64 // capacity
	Gets      uint64 // Get, GetFloat32s, ... calls since creation
	Misses    uint64 // of those, how many found nothing
	Sets      uint64 // Set, PutFloat32s, ... calls since creation
	Collision uint64 // entries lost to a hash collision
}

// Stats returns the KV's counters. It is safe to call concurrently with other methods.
func (kv *KV) Stats() KVStats {
	var s fastcache.Stats
	kv.c.UpdateStats(&s)
	return KVStats{
		Entries:   s.EntriesCount,
		Bytes:     s.BytesSize,
		MaxBytes:  s.MaxBytesSize,
		Gets:      s.GetCalls,
		Misses:    s.Misses,
		Sets:      s.SetCalls,
		Collision: s.Collisions,
	}
}
