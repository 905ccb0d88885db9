package events

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, line string) (*Batch, error) {
	t.Helper()
	b := new(Batch)
	err := Decode([]byte(line), t0, DecodeOptions{}, b)
	return b, err
}

func TestDecodeValidEvents(t *testing.T) {
	f := func(in string, want Event) {
		t.Helper()
		b, err := decodeOne(t, in)
		ok(t, err)
		eq(t, b.NRejected, 0, "rejected (%v)", b.Rejected)
		eq(t, len(b.Events), 1, "events")
		got := b.Events[0]
		got.ItemIDs = append([]string(nil), got.ItemIDs...)
		if len(got.ItemIDs) == 0 {
			got.ItemIDs = nil
		}
		if len(got.Attributes) == 0 {
			got.Attributes = nil
		}
		eq(t, got, want, "event of %s", in)
	}
	f(`{"type":"click","user_id":"u1","session_id":"s1","item_id":"i9","ts":"2026-11-22T09:00:00Z"}`,
		Event{Type: TypeClick, UserID: "u1", SessionID: "s1", ItemID: "i9", TS: t0.Add(-time.Hour).UnixNano()})
	// ts defaults to the receipt time.
	f(`{"type":"view","session_id":"s1","item_id":"i9"}`,
		Event{Type: TypeView, SessionID: "s1", ItemID: "i9", TS: t0.UnixNano()})
	// Unix milliseconds; a small future skew is allowed.
	f(fmt.Sprintf(`{"type":"purchase","user_id":"u","item_id":"i","ts":%d}`, t0.Add(time.Minute).UnixMilli()),
		Event{Type: TypePurchase, UserID: "u", ItemID: "i", TS: t0.Add(time.Minute).UnixNano()})
	f(`{"type":"add_to_cart","user_id":"u","item_id":"i","ts":null,"unknown_field":[1,2]}`,
		Event{Type: TypeAddToCart, UserID: "u", ItemID: "i", TS: t0.UnixNano()})
	f(`{"type":"impression","user_id":"u1","request_id":"r1","item_ids":["i9","i3"]}`,
		Event{Type: TypeImpression, UserID: "u1", RequestID: "r1", ItemIDs: []string{"i9", "i3"}, TS: t0.UnixNano()})
	f(`{"type":"item_update","item_id":"i9","stock":0,"price":12.5,"attributes":{"color":"red","size":42,"sale":true,"old":null}}`,
		Event{Type: TypeItemUpdate, ItemID: "i9", HasStock: true, HasPrice: true, Price: 12.5, TS: t0.UnixNano(),
			Attributes: []catalog.Attribute{{Name: "color", Value: "red"}, {Name: "old"}, {Name: "sale", Value: "true"}, {Name: "size", Value: "42"}}})
	f(`{"type":"item_update","item_id":"i9","stock":-3}`,
		Event{Type: TypeItemUpdate, ItemID: "i9", HasStock: true, Stock: -3, TS: t0.UnixNano()})
}

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("x", MaxIDBytes+1)
	f := func(in, code, msgPart string) {
		t.Helper()
		b, err := decodeOne(t, in)
		ok(t, err)
		eq(t, len(b.Events), 0, "accepted events of %s", in)
		eq(t, b.NRejected, 1, "rejected of %s", in)
		r := b.Rejected[0]
		eq(t, r.Index, 0, "index")
		eq(t, r.Code, code, "code of %s (%s)", in, r.Error)
		truth(t, strings.Contains(r.Error, msgPart), "message %q lacks %q", r.Error, msgPart)
	}
	f(`{"type":"like","user_id":"u","item_id":"i"}`, CodeUnknownType, `unknown type "like"`)
	f(`{"user_id":"u","item_id":"i"}`, CodeUnknownType, `missing "type"`)
	f(`{"type":"click","user_id":"u"}`, CodeMissingID, "needs an item_id")
	f(`{"type":"click","item_id":"i"}`, CodeMissingID, "user_id or a session_id")
	f(`{"type":"impression","user_id":"u","request_id":"r"}`, CodeMissingID, "needs item_ids")
	f(`{"type":"impression","user_id":"u","item_ids":["a",""]}`, CodeInvalidID, "item_ids[1]")
	f(`{"type":"item_update","stock":1}`, CodeMissingID, "needs an item_id")
	f(`{"type":"item_update","item_id":"i"}`, CodeEmptyUpdate, "stock, price or attributes")
	f(`{"type":"item_update","item_id":"i","stock":1.5}`, CodeInvalidValue, "whole number")
	f(`{"type":"item_update","item_id":"i","attributes":{"a":[1]}}`, CodeInvalidValue, `attribute "a"`)
	f(`{"type":"click","user_id":"`+long+`","item_id":"i"}`, CodeInvalidID, "user_id is 257 bytes")
	f(`{"type":"click","user_id":"u","item_id":"i","ts":"yesterday"}`, CodeInvalidTS, "RFC 3339")
	f(`{"type":"click","user_id":"u","item_id":"i","ts":1.5}`, CodeInvalidTS, "Unix milliseconds")
	f(`{"type":"click","user_id":"u","item_id":"i","ts":"1900-01-01T00:00:00Z"}`, CodeInvalidTS, "1970")
	f(`{"type":"click","user_id":"u","item_id":"i","ts":"2026-11-22T10:06:00Z"}`, CodeFutureTS, "6m0s ahead")
	f(`{"type":"click","user_id":5,"item_id":"i"}`, CodeInvalidJSON, "invalid event JSON")
	f(`{"type":"click",`, CodeInvalidJSON, "invalid event JSON")
}

func TestDecodeBatchPositions(t *testing.T) {
	const good = `{"type":"view","session_id":"s","item_id":"i"}`
	const bad = `{"type":"view","session_id":"s"}`
	for _, body := range []string{
		"[" + good + "," + bad + "," + good + ", 7 ," + bad + "]",
		good + "\n" + bad + "\r\n\n  \n" + good + "\n7\n" + bad, // blank lines do not count
	} {
		b := new(Batch)
		ok(t, Decode([]byte(body), t0, DecodeOptions{}, b))
		eq(t, len(b.Events), 2, "accepted")
		eq(t, b.Index, []int{0, 2}, "accepted positions")
		eq(t, b.NRejected, 3, "rejected")
		var pos []int
		for _, r := range b.Rejected {
			pos = append(pos, r.Index)
		}
		eq(t, pos, []int{1, 3, 4}, "rejected positions")
		eq(t, b.RejectedByType[TypeView], 2, "rejected views")
		eq(t, b.RejectedByType[TypeUnknown], 1, "rejected unknown")
		b.Reset()
		eq(t, len(b.Events)+b.NRejected+len(b.Rejected), 0, "after Reset")
	}
}

func TestDecodeWholeBodyErrors(t *testing.T) {
	f := func(body string, opt DecodeOptions, want error) {
		t.Helper()
		isErr(t, Decode([]byte(body), t0, opt, new(Batch)), want)
	}
	f("", DecodeOptions{}, ErrEmptyBody)
	f(" \n\t", DecodeOptions{}, ErrEmptyBody)
	f("[]", DecodeOptions{}, ErrEmptyBody)
	f("[{},", DecodeOptions{}, ErrBadBody)
	f("hello", DecodeOptions{}, ErrBadBody)
	f(`[{"type":"view"},{"type":"view"},{"type":"view"}]`, DecodeOptions{MaxEvents: 2}, ErrTooManyEvents)
	f("{}\n{}\n{}", DecodeOptions{MaxEvents: 2}, ErrTooManyEvents)
}

func TestRejectionListIsBounded(t *testing.T) {
	var sb strings.Builder
	for range MaxReportedRejections + 10 {
		sb.WriteString(`{"type":"nope"}` + "\n")
	}
	b := new(Batch)
	ok(t, Decode([]byte(sb.String()), t0, DecodeOptions{}, b))
	eq(t, b.NRejected, MaxReportedRejections+10, "rejected")
	eq(t, len(b.Rejected), MaxReportedRejections, "listed")
}

func TestCodecRoundTrip(t *testing.T) {
	in := []Event{
		{Type: TypeClick, UserID: "u1", SessionID: "s1", ItemID: "i9", RequestID: "r", TS: 1},
		{Type: TypeImpression, UserID: "u1", ItemIDs: []string{"a", "b"}, TS: -5},
		{Type: TypeItemUpdate, ItemID: "i9", HasStock: true, Stock: -2, HasPrice: true, Price: 1.25,
			Attributes: []catalog.Attribute{{Name: "c", Value: "v"}, {Name: "d"}}, TS: 1 << 60},
	}
	enc := AppendEvents(nil, in)
	out, err := DecodeEvents(enc, nil)
	ok(t, err)
	eq(t, out, in, "round trip")
	for n := range len(enc) - 1 {
		_, err := DecodeEvents(enc[:n], nil)
		isErr(t, err, ErrCorrupt)
	}
	_, err = DecodeEvents(append(enc, 0), nil)
	isErr(t, err, ErrCorrupt)
}

// FuzzDecode checks that Decode never panics, that every position is accounted for exactly
// once, and that accepted events survive the WAL codec unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`[{"type":"click","user_id":"u1","session_id":"s1","item_id":"i9","ts":"2026-11-22T10:00:00Z"}]`,
		`{"type":"impression","user_id":"u1","request_id":"r1","item_ids":["i9","i3"]}` + "\n" + `{"type":"view","session_id":"s","item_id":"i"}`,
		`{"type":"item_update","item_id":"i9","stock":0,"price":12.5,"attributes":{"a":"b","n":1}}`,
		`[{"type":"view","ts":1700000000000,"user_id":"u","item_id":"x"}, 5, null, "s"]`,
		`{"type":"click","ts":"2026-11-22T10:00:00.123+01:00","user_id":"\u00e9","item_id":"\n"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := new(Batch)
		if err := Decode(body, t0, DecodeOptions{MaxEvents: 100}, b); err != nil {
			return
		}
		truth(t, len(b.Events) == len(b.Index), "%d events, %d indexes", len(b.Events), len(b.Index))
		seen := map[int]bool{}
		for _, i := range b.Index {
			truth(t, !seen[i], "position %d twice", i)
			seen[i] = true
		}
		for _, r := range b.Rejected {
			truth(t, !seen[r.Index], "position %d accepted and rejected", r.Index)
			seen[r.Index] = true
			truth(t, r.Code != "" && r.Error != "", "rejection without code or message: %+v", r)
		}
		for _, e := range b.Events {
			truth(t, e.Type > TypeUnknown && e.Type < NumTypes, "bad type %d", e.Type)
			truth(t, e.TS <= t0.Add(5*time.Minute).UnixNano(), "future ts accepted")
			if e.Type.IsInteraction() {
				truth(t, e.ItemID != "" && (e.UserID != "" || e.SessionID != ""), "interaction without ids: %+v", e)
			}
		}
		out, err := DecodeEvents(AppendEvents(nil, b.Events), nil)
		ok(t, err)
		eq(t, len(out), len(b.Events), "decoded count")
		for i := range out {
			a, c := out[i], b.Events[i]
			truth(t, a.Type == c.Type && a.TS == c.TS && a.UserID == c.UserID && a.ItemID == c.ItemID &&
				len(a.ItemIDs) == len(c.ItemIDs) && len(a.Attributes) == len(c.Attributes) && a.Stock == c.Stock,
				"codec changed event %d: %+v -> %+v", i, c, a)
		}
	})
}

// FuzzDecodeEvents checks that the WAL codec rejects garbage without panicking.
func FuzzDecodeEvents(f *testing.F) {
	f.Add(AppendEvents(nil, []Event{{Type: TypeClick, UserID: "u", ItemID: "i", TS: 5}}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeEvents(b, nil)
		if err != nil {
			return
		}
		again, err := DecodeEvents(AppendEvents(nil, evs), nil)
		ok(t, err)
		eq(t, len(again), len(evs), "re-decoded")
	})
}
