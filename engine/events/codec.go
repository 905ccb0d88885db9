package events

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/podium-rank/podium/engine/catalog"
)

// The write-ahead log holds accepted events in a compact binary form rather than the JSON
// they came in: replay then needs no validation (ts is already resolved against the receipt
// time) and decodes several times faster. Ids stay strings, because dense ids may differ
// after a restart reloads the catalog.
//
//	batch  = version:u8 count:uvarint event*
//	event  = type:u8 flags:u8 ts:i64le user session item request (str) nitems:uvarint str*
//	         [stock:i32le] [price:f32le] nattrs:uvarint (name:str value:str)*
//	str    = len:uvarint bytes
const codecVersion = 1

const (
	flagStock = 1 << 0
	flagPrice = 1 << 1
)

// AppendEvents appends the binary encoding of evs to dst and returns it.
func AppendEvents(dst []byte, evs []Event) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(evs)))
	for i := range evs {
		e := &evs[i]
		var flags byte
		if e.HasStock {
			flags |= flagStock
		}
		if e.HasPrice {
			flags |= flagPrice
		}
		dst = append(dst, byte(e.Type), flags)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.TS))
		dst = appendStr(dst, e.UserID)
		dst = appendStr(dst, e.SessionID)
		dst = appendStr(dst, e.ItemID)
		dst = appendStr(dst, e.RequestID)
		dst = binary.AppendUvarint(dst, uint64(len(e.ItemIDs)))
		for _, s := range e.ItemIDs {
			dst = appendStr(dst, s)
		}
		if e.HasStock {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(e.Stock))
		}
		if e.HasPrice {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.Price))
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Attributes)))
		for _, a := range e.Attributes {
			dst = appendStr(dst, a.Name)
			dst = appendStr(dst, a.Value)
		}
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads the binary encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (d *decoder) u8() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("short byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("short uint32")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("short uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint(MaxIDBytes)
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail("short string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// DecodeEvents decodes a buffer written by AppendEvents, appending the events to dst. It
// returns an error wrapping ErrCorrupt if src is not a valid encoding. The events' strings
// are copies; src may be reused afterwards.
func DecodeEvents(src []byte, dst []Event) ([]Event, error) {
	d := decoder{b: src}
	if v := d.u8(); d.err == nil && v != codecVersion {
		return dst, fmt.Errorf("%w: codec version %d, want %d", ErrCorrupt, v, codecVersion)
	}
	n := d.uvarint(1 << 20)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e Event
		e.Type = Type(d.u8())
		flags := d.u8()
		e.TS = int64(d.u64())
		e.UserID, e.SessionID, e.ItemID, e.RequestID = d.str(), d.str(), d.str(), d.str()
		if k := d.uvarint(MaxImpressionItems); k > 0 {
			e.ItemIDs = make([]string, 0, k)
			for range k {
				e.ItemIDs = append(e.ItemIDs, d.str())
			}
		}
		if flags&flagStock != 0 {
			e.Stock, e.HasStock = int32(d.u32()), true
		}
		if flags&flagPrice != 0 {
			e.Price, e.HasPrice = math.Float32frombits(d.u32()), true
		}
		if k := d.uvarint(MaxAttributes); k > 0 {
			e.Attributes = make([]catalog.Attribute, 0, k)
			for range k {
				e.Attributes = append(e.Attributes, catalog.Attribute{Name: d.str(), Value: d.str()})
			}
		}
		if d.err == nil && (e.Type == TypeUnknown || e.Type >= NumTypes || flags&^(flagStock|flagPrice) != 0) {
			d.fail(fmt.Sprintf("event %d has type %d and flags %#x", i, e.Type, flags))
		}
		dst = append(dst, e)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return dst, d.err
}
