package events

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/features"
)

// A checkpoint is a directory written whole, then swapped in by rename:
//
//	checkpoint/META       JSON: WAL seq covered, external positions, size and CRC of state.bin
//	checkpoint/state.bin  item counters, co-visitation lists, the item-name table they are
//	                      keyed by, CRC-32C at the end
//	checkpoint/kv/        per-user and per-session history (features.KV.Save)
//	checkpoint/xkv/       per-user and per-session exclusions (features.KV.Save)
//
// A checkpoint is taken in two phases, so that ingestion waits only for a memory copy:
//
//  1. Under the exclusive lock (no apply in flight): the WAL seq P, the external positions,
//     and an encoding of the item state (counters, co-visitation, item overlay). This item
//     state is exactly the state after WAL record P and those positions.
//  2. Unlocked: the KV (per-user and per-session state) is saved while events keep being
//     applied, so it may also hold some events after P. Then, under the lock again for an
//     instant, the WAL seq and positions reached (kv_wal_seq, kv_positions) are recorded.
//
// After a restart, events after P are applied again (from the WAL, or re-read from Kafka).
// Those up to kv_wal_seq / kv_positions may already be in the user state: for them an
// interaction found in the user's history (same item, type and second) changes only item
// state; any other is applied whole. Per-user impression counts of that short stretch may
// count twice; nothing else does. Then the WAL segments up to P are removed. The
// click-through log is not saved: it is a sliding window that refills in minutes.
const (
	checkpointName = "checkpoint"
	metaName       = "META"
	stateName      = "state.bin"
	kvName         = "kv"
	xkvName        = "xkv"
	stateMagic     = "PODEVST1"
	metaVersion    = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type checkpointMeta struct {
	Version     int              `json:"version"`
	WALSeq      uint64           `json:"wal_seq"`
	Positions   map[string]int64 `json:"positions"`
	KVWALSeq    uint64           `json:"kv_wal_seq"`
	KVPositions map[string]int64 `json:"kv_positions"`
	StateBytes  int64            `json:"state_bytes"`
	StateCRC    uint32           `json:"state_crc"`
	Created     time.Time        `json:"created"`
}

// Checkpoint writes a checkpoint of the state and the external positions and then removes
// the WAL segments it covers, so that a restart loads it and replays only what came after.
// Ingest calls wait while the state is copied (see Metrics.CheckpointPause). Checkpoints
// are serialised; without a directory Checkpoint does nothing.
func (g *Ingestor) Checkpoint() error {
	if g.closed.Load() {
		return ErrClosed
	}
	return g.checkpoint(false)
}

func (g *Ingestor) checkpoint(closing bool) error {
	if g.dir == "" {
		return nil
	}
	g.ckMu.Lock()
	defer g.ckMu.Unlock()
	tmp, err := os.MkdirTemp(g.dir, checkpointName+".tmp.")
	if err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed

	start := time.Now()
	g.ck.Lock()
	meta := checkpointMeta{Version: metaVersion, Created: start.UTC()}
	if g.log != nil {
		meta.WALSeq = g.log.LastSeq()
	}
	meta.Positions = g.Positions()
	state := g.state.appendState(nil)
	g.ck.Unlock()
	pause := time.Since(start)

	if g.checkpointHook != nil {
		g.checkpointHook()
	}
	err = g.state.kv.Save(filepath.Join(tmp, kvName))
	if err == nil {
		err = g.state.xkv.Save(filepath.Join(tmp, xkvName))
	}

	start2 := time.Now()
	g.ck.Lock()
	meta.KVWALSeq = meta.WALSeq
	if g.log != nil {
		meta.KVWALSeq = g.log.LastSeq()
	}
	meta.KVPositions = g.Positions()
	g.ck.Unlock()
	g.ckPause.Store(int64(pause + time.Since(start2)))
	if err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}

	meta.StateBytes, meta.StateCRC = int64(len(state)), crc32.Checksum(state, castagnoli)
	mj, _ := json.MarshalIndent(meta, "", "  ")
	if err := writeFileSync(filepath.Join(tmp, stateName), state); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, metaName), append(mj, '\n')); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	final := filepath.Join(g.dir, checkpointName)
	old := final + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := os.Rename(final, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	if err := syncDir(g.dir); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	_ = os.RemoveAll(old)
	g.checkpoints.Add(1)
	g.lastCk.Store(time.Now().UnixNano())
	if g.log != nil {
		if err := g.log.TruncateBefore(meta.WALSeq + 1); err != nil {
			return err
		}
	}
	return nil
}

// loadCheckpoint restores the last checkpoint, if any, into g's state and positions and
// returns the WAL seq it covers (0 for none). State it cannot restore starts empty, with a
// warning in the recovery report.
func (g *Ingestor) loadCheckpoint() uint64 {
	dir := filepath.Join(g.dir, checkpointName)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(dir + ".old"); err == nil {
			dir += ".old" // a crash between the two renames of a checkpoint
		} else {
			return 0
		}
	}
	warn := func(format string, args ...any) {
		g.recovery.Warnings = append(g.recovery.Warnings, fmt.Sprintf(format, args...))
	}
	mb, err := os.ReadFile(filepath.Join(dir, metaName))
	var meta checkpointMeta
	if err == nil {
		err = json.Unmarshal(mb, &meta)
	}
	if err == nil && meta.Version != metaVersion {
		err = fmt.Errorf("version %d, want %d", meta.Version, metaVersion)
	}
	if err != nil {
		warn("checkpoint %s is unreadable (%v); starting from an empty state and the whole WAL", dir, err)
		return 0
	}
	state, err := os.ReadFile(filepath.Join(dir, stateName))
	if err == nil && (int64(len(state)) != meta.StateBytes || crc32.Checksum(state, castagnoli) != meta.StateCRC) {
		err = fmt.Errorf("%w: %s does not match its size and checksum in META", ErrCorrupt, stateName)
	}
	identity := false
	if err == nil {
		identity, err = g.state.loadState(state)
	}
	if err != nil {
		warn("item counters and co-visitation were not restored: %v", err)
	}
	if err == nil && !identity {
		warn("the catalog's item ids changed since the checkpoint; item state was remapped, but user and session state starts empty")
	} else if err == nil {
		kv, kerr := features.LoadKV(filepath.Join(dir, kvName), g.state.cfg.SessionBytes)
		if kerr != nil {
			warn("user and session history was not restored: %v", kerr)
		} else {
			g.state.kv = kv
			// The restored history may hold events past P: replay up to these marks
			// deduplicates against it (see the comment at the top of this file).
			g.kvSeq, g.kvPos = max(meta.KVWALSeq, meta.WALSeq), meta.KVPositions
		}
		xkv, kerr := features.LoadKV(filepath.Join(dir, xkvName), g.state.cfg.ExcludeBytes)
		if kerr != nil {
			warn("user and session exclusions were not restored: %v", kerr)
		} else {
			g.state.xkv = xkv
		}
	}
	g.pos = meta.Positions
	if g.pos == nil {
		g.pos = map[string]int64{}
	}
	g.recovery.Checkpoint, g.recovery.CheckpointSeq = true, meta.WALSeq
	return meta.WALSeq
}

// appendState encodes the item state with the item-name table it is keyed by:
//
//	magic  names (n:u32 str×n)  overlay  t0:i64 hasT0:u8 nwin:u8 halflife:i64×nwin
//	counters (rows:u32 (id:u32 f32×ncols)×rows) totals:f64×ncols
//	covisit (lists:u32 (id:u32 k:u16 (id:u32 cnt:f32 err:f32)×k)×lists)  crc:u32
//
// The overlay (item updates) comes first, so that a change of windows, which drops the
// counters, does not drop stock changes. Call it with applies held off.
func (s *State) appendState(dst []byte) []byte {
	c := s.items
	dst = append(dst, stateMagic...)
	names := s.cat.Items()
	n := names.Len()
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	for id := range uint32(n) {
		dst = appendStr(dst, names.Name(id))
	}

	s.overlayMu.Lock()
	ids := slices.Sorted(maps.Keys(s.overlay))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(ids)))
	for _, id := range ids {
		o := s.overlay[id]
		dst = binary.LittleEndian.AppendUint32(dst, id)
		dst = append(dst, boolByte(o.hasStock)|boolByte(o.hasPrice)<<1)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(o.stock))
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(o.price))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(o.attrs)))
		for _, k := range slices.Sorted(maps.Keys(o.attrs)) {
			dst = appendStr(dst, k)
			dst = appendStr(dst, o.attrs[k])
		}
	}
	s.overlayMu.Unlock()

	dst = binary.LittleEndian.AppendUint64(dst, uint64(c.t0))
	dst = append(dst, boolByte(c.hasT0), byte(c.nwin))
	for _, w := range s.cfg.Windows {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(w.HalfLife))
	}
	var r counterReader
	c.beginRead(0, &r)
	rows := 0
	for id := range uint32(n) {
		if row := r.row(id); row != nil && !allZero(row) {
			rows++
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rows))
	for id := range uint32(n) {
		row := r.row(id)
		if row == nil || allZero(row) {
			continue
		}
		dst = binary.LittleEndian.AppendUint32(dst, id)
		for i := range row {
			dst = binary.LittleEndian.AppendUint32(dst, atomicLoad(&row[i]))
		}
	}
	c.endRead()
	for i := range c.totals {
		dst = binary.LittleEndian.AppendUint64(dst, c.totals[i].Load())
	}

	lists := 0
	for id := range uint32(n) {
		if p := s.cov.slot(id, false); p != nil && *p != nil {
			lists++
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(lists))
	for id := range uint32(n) {
		p := s.cov.slot(id, false)
		if p == nil || *p == nil {
			continue
		}
		nb := *p
		dst = binary.LittleEndian.AppendUint32(dst, id)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(nb.ids)))
		for k, x := range nb.ids {
			dst = binary.LittleEndian.AppendUint32(dst, x)
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(nb.cnt[k]))
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(nb.errs[k]))
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func allZero(row []uint32) bool {
	for i := range row {
		if atomicLoad(&row[i]) != 0 {
			return false
		}
	}
	return true
}

// loadState restores what appendState wrote into an empty state, mapping item names to the
// catalog's current dense ids (items the catalog no longer knows are dropped), and
// re-applies the item overlay to the catalog. It reports whether the mapping was the
// identity, in which case dense ids in the KV are still valid.
func (s *State) loadState(src []byte) (identity bool, err error) {
	if len(src) < len(stateMagic)+4 || string(src[:len(stateMagic)]) != stateMagic {
		return false, fmt.Errorf("%w: bad state magic", ErrCorrupt)
	}
	body := src[:len(src)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(src[len(src)-4:]) {
		return false, fmt.Errorf("%w: state checksum", ErrCorrupt)
	}
	d := decoder{b: body[len(stateMagic):]}
	n := int(d.u32())
	if d.err != nil || n > len(d.b) {
		return false, fmt.Errorf("%w: item table", ErrCorrupt)
	}
	remap := make([]int64, n)
	identity = true
	items := s.cat.Items()
	for i := range n {
		name := d.str()
		id, ok := items.Lookup(name)
		remap[i] = -1
		if ok {
			remap[i] = int64(id)
		}
		if !ok || id != uint32(i) {
			identity = false
		}
	}

	// Re-apply what events changed in the catalog: it reloaded its own files meanwhile.
	overlays := int(d.u32())
	for range overlays {
		old := d.u32()
		flags := d.u8()
		stock, price := int32(d.u32()), math.Float32frombits(d.u32())
		k := int(d.uvarintFixed16())
		e := Event{Type: TypeItemUpdate, Stock: stock, HasStock: flags&1 != 0, Price: price, HasPrice: flags&2 != 0}
		for range k {
			e.Attributes = append(e.Attributes, catalog.Attribute{Name: d.str(), Value: d.str()})
		}
		if d.err != nil || int(old) >= n {
			return false, fmt.Errorf("%w: item overlay", ErrCorrupt)
		}
		if remap[old] >= 0 {
			e.item = uint32(remap[old])
			s.applyItemUpdate(&e)
		}
	}

	c := s.items
	t0 := int64(d.u64())
	hasT0 := d.u8() == 1
	if nwin := int(d.u8()); d.err == nil && nwin != c.nwin {
		return identity, fmt.Errorf("the checkpoint has %d windows, the configuration %d", nwin, c.nwin)
	}
	for _, w := range s.cfg.Windows {
		if hl := time.Duration(d.u64()); d.err == nil && hl != w.HalfLife {
			return identity, fmt.Errorf("window %q had half-life %s in the checkpoint, %s now", w.Name, hl, w.HalfLife)
		}
	}
	c.t0, c.hasT0 = t0, hasT0
	rows := int(d.u32())
	for range rows {
		old := d.u32()
		if d.err != nil || int(old) >= n {
			d.fail("counter row id")
			break
		}
		to := remap[old]
		var ch []uint32
		base := 0
		if to >= 0 {
			ch = c.chunk(uint32(to), true)
			base = int(uint32(to)&(counterChunkItems-1)) * c.ncols
		}
		for k := range c.ncols {
			v := d.u32()
			if ch != nil {
				ch[base+k] = math.Float32bits(math.Float32frombits(ch[base+k]) + math.Float32frombits(v))
			}
		}
	}
	for i := range c.totals {
		c.totals[i].Store(d.u64())
	}
	lists := int(d.u32())
	for range lists {
		a := d.u32()
		k := int(d.uvarintFixed16())
		for range k {
			b, cnt, e := d.u32(), math.Float32frombits(d.u32()), math.Float32frombits(d.u32())
			if d.err != nil || int(a) >= n || int(b) >= n {
				d.fail("co-visitation ids")
				break
			}
			if remap[a] < 0 || remap[b] < 0 {
				continue
			}
			p := s.cov.slot(uint32(remap[a]), true)
			if *p == nil {
				*p = &neighbours{}
				s.cov.items.Add(1)
			}
			s.cov.insert(*p, uint32(remap[b]), cnt-e, e)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return identity, d.err
}

func (d *decoder) uvarintFixed16() uint16 {
	if d.err != nil || len(d.b) < 2 {
		d.fail("short uint16")
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
