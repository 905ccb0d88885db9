package events

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bytedance/sonic"
	"github.com/podium-rank/podium/engine/catalog"
)

// DecodeOptions bound what Decode accepts. Zero values get the defaults.
type DecodeOptions struct {
	// MaxFutureSkew is how far past the receipt time an event's ts may lie before it is
	// rejected as a clock error (default 5 minutes).
	MaxFutureSkew time.Duration
	// MaxEvents bounds the events of one body (default 10,000); a longer body fails whole
	// with ErrTooManyEvents.
	MaxEvents int
}

func (o *DecodeOptions) defaults() {
	if o.MaxFutureSkew <= 0 {
		o.MaxFutureSkew = 5 * time.Minute
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10_000
	}
}

// Batch is the outcome of decoding one body: the accepted events with their positions, and
// the rejected ones. Reuse a Batch with Reset; it is not goroutine-safe.
type Batch struct {
	// Events are the events that passed validation, in body order.
	Events []Event
	// Index[i] is the 0-based position of Events[i] in the body.
	Index []int
	// Rejected lists up to MaxReportedRejections rejected events, in body order.
	Rejected []Rejection
	// NRejected counts every rejected event, listed or not.
	NRejected int
	// RejectedByType counts rejected events by type (TypeUnknown for a missing or bad type).
	RejectedByType [NumTypes]int

	byCode [len(codes)]int

	raw   []sonic.NoCopyRawMessage
	j     eventJSON
	names []string
}

// Reset empties b for reuse, keeping its buffers.
func (b *Batch) Reset() {
	for i := range b.Events {
		b.Events[i] = Event{ItemIDs: b.Events[i].ItemIDs[:0], Attributes: b.Events[i].Attributes[:0]}
	}
	b.Events, b.Index, b.Rejected = b.Events[:0], b.Index[:0], b.Rejected[:0]
	b.NRejected = 0
	b.RejectedByType = [NumTypes]int{}
	b.byCode = [len(codes)]int{}
	b.raw = b.raw[:0]
}

// reject records that the event at index was refused, with a message made by Sprintf.
func (b *Batch) reject(index int, t Type, typ, code, format string, args ...any) {
	b.NRejected++
	b.RejectedByType[t]++
	for i, c := range codes {
		if c == code {
			b.byCode[i]++
		}
	}
	if len(b.Rejected) >= MaxReportedRejections {
		return
	}
	b.Rejected = append(b.Rejected, Rejection{Index: index, Type: strings.Clone(clip(typ)), Code: code,
		Error: fmt.Sprintf(format, args...)})
}

// next appends an empty event, reusing the buffers of an earlier one, and returns it.
func (b *Batch) next() *Event {
	if len(b.Events) < cap(b.Events) {
		b.Events = b.Events[:len(b.Events)+1]
		e := &b.Events[len(b.Events)-1]
		*e = Event{ItemIDs: e.ItemIDs[:0], Attributes: e.Attributes[:0]}
		return e
	}
	b.Events = append(b.Events, Event{})
	return &b.Events[len(b.Events)-1]
}

type eventJSON struct {
	Type       string                 `json:"type"`
	UserID     string                 `json:"user_id"`
	SessionID  string                 `json:"session_id"`
	ItemID     string                 `json:"item_id"`
	RequestID  string                 `json:"request_id"`
	ItemIDs    []string               `json:"item_ids"`
	TS         sonic.NoCopyRawMessage `json:"ts"`
	Stock      *float64               `json:"stock"`
	Price      *float64               `json:"price"`
	Attributes map[string]any         `json:"attributes"`
}

// Decode decodes body, a JSON array of event objects or NDJSON (one object per line), into
// b, validating every event against now (the receipt time). A bad event is recorded in
// b.Rejected with its position and does not stop the others. Decode fails as a whole only
// when the body holds no events (ErrEmptyBody), is not a JSON array or NDJSON (ErrBadBody),
// or holds more than opt.MaxEvents events (ErrTooManyEvents). Accepted events' strings point
// into body, which must therefore outlive b's use and not change meanwhile.
func Decode(body []byte, now time.Time, opt DecodeOptions, b *Batch) error {
	opt.defaults()
	start := skipSpace(body)
	if start == len(body) {
		return ErrEmptyBody
	}
	nowNS := now.UnixNano()
	if body[start] == '[' {
		if err := sonic.ConfigDefault.Unmarshal(body, &b.raw); err != nil {
			return fmt.Errorf("%w: %s", ErrBadBody, shortErr(err))
		}
		if len(b.raw) == 0 {
			return ErrEmptyBody
		}
		if len(b.raw) > opt.MaxEvents {
			return fmt.Errorf("%w: %d events, at most %d are allowed", ErrTooManyEvents, len(b.raw), opt.MaxEvents)
		}
		for i, raw := range b.raw {
			b.decodeOne(raw, i, nowNS, &opt)
		}
		return nil
	}
	if body[start] != '{' {
		return fmt.Errorf("%w: it starts with %q; send a JSON array of events or one event object per line", ErrBadBody, body[start])
	}
	n := 0
	for rest := body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if n >= opt.MaxEvents {
			return fmt.Errorf("%w: more than %d events, at most %d are allowed", ErrTooManyEvents, opt.MaxEvents, opt.MaxEvents)
		}
		b.decodeOne(line, n, nowNS, &opt)
		n++
	}
	if n == 0 {
		return ErrEmptyBody
	}
	return nil
}

func skipSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// decodeOne decodes and validates the event at position index.
func (b *Batch) decodeOne(raw []byte, index int, nowNS int64, opt *DecodeOptions) {
	j := &b.j
	*j = eventJSON{}
	if i := skipSpace(raw); i == len(raw) || raw[i] != '{' {
		b.reject(index, TypeUnknown, "", CodeInvalidJSON, "event must be a JSON object")
		return
	}
	if err := sonic.ConfigDefault.Unmarshal(raw, j); err != nil {
		t, _ := ParseType(j.Type)
		b.reject(index, t, j.Type, CodeInvalidJSON, "invalid event JSON: %s", shortErr(err))
		return
	}
	t, ok := ParseType(j.Type)
	if !ok {
		if j.Type == "" {
			b.reject(index, TypeUnknown, "", CodeUnknownType, "missing \"type\"; want view, click, add_to_cart, purchase, impression or item_update")
		} else {
			b.reject(index, TypeUnknown, j.Type, CodeUnknownType, "unknown type %q; want view, click, add_to_cart, purchase, impression or item_update", clip(j.Type))
		}
		return
	}
	ts := nowNS
	if len(j.TS) > 0 && string(j.TS) != "null" {
		var msg string
		ts, msg = parseTS(j.TS)
		if msg != "" {
			b.reject(index, t, j.Type, CodeInvalidTS, "%s", msg)
			return
		}
		if skew := time.Duration(ts - nowNS); skew > opt.MaxFutureSkew {
			b.reject(index, t, j.Type, CodeFutureTS, "ts %s is %s ahead of the server clock; at most %s of clock skew is allowed",
				time.Unix(0, ts).UTC().Format(time.RFC3339Nano), skew.Round(time.Millisecond), opt.MaxFutureSkew)
			return
		}
	}
	for _, f := range [...]struct{ name, v string }{{"user_id", j.UserID}, {"session_id", j.SessionID},
		{"item_id", j.ItemID}, {"request_id", j.RequestID}} {
		if len(f.v) > MaxIDBytes {
			b.reject(index, t, j.Type, CodeInvalidID, "%s is %d bytes long; at most %d are allowed", f.name, len(f.v), MaxIDBytes)
			return
		}
	}
	switch {
	case t.IsInteraction():
		if j.ItemID == "" {
			b.reject(index, t, j.Type, CodeMissingID, "a %s needs an item_id", t)
			return
		}
		if j.UserID == "" && j.SessionID == "" {
			b.reject(index, t, j.Type, CodeMissingID, "a %s needs a user_id or a session_id", t)
			return
		}
	case t == TypeImpression:
		if len(j.ItemIDs) == 0 {
			b.reject(index, t, j.Type, CodeMissingID, "an impression needs item_ids, the items shown")
			return
		}
		if len(j.ItemIDs) > MaxImpressionItems {
			b.reject(index, t, j.Type, CodeInvalidID, "item_ids lists %d items; at most %d are allowed", len(j.ItemIDs), MaxImpressionItems)
			return
		}
		for k, id := range j.ItemIDs {
			if id == "" || len(id) > MaxIDBytes {
				b.reject(index, t, j.Type, CodeInvalidID, "item_ids[%d] is empty or longer than %d bytes", k, MaxIDBytes)
				return
			}
		}
	case t == TypeItemUpdate:
		if j.ItemID == "" {
			b.reject(index, t, j.Type, CodeMissingID, "an item_update needs an item_id")
			return
		}
		if j.Stock == nil && j.Price == nil && len(j.Attributes) == 0 {
			b.reject(index, t, j.Type, CodeEmptyUpdate, "an item_update needs stock, price or attributes")
			return
		}
	}
	e := b.next()
	e.Type, e.TS = t, ts
	e.UserID, e.SessionID, e.RequestID = j.UserID, j.SessionID, j.RequestID
	switch {
	case t.IsInteraction():
		e.ItemID = j.ItemID
	case t == TypeImpression:
		e.ItemIDs = append(e.ItemIDs, j.ItemIDs...)
	case t == TypeItemUpdate:
		e.ItemID = j.ItemID
		if msg := b.itemUpdate(j, e); msg != "" {
			b.Events = b.Events[:len(b.Events)-1]
			b.reject(index, t, j.Type, CodeInvalidValue, "%s", msg)
			return
		}
	}
	b.Index = append(b.Index, index)
}

// itemUpdate fills e's update fields from j and returns a message if one is invalid.
func (b *Batch) itemUpdate(j *eventJSON, e *Event) string {
	if j.Stock != nil {
		s := *j.Stock
		if s != math.Trunc(s) || s < math.MinInt32 || s > math.MaxInt32 {
			return fmt.Sprintf("stock must be a whole number within ±2^31, got %v", s)
		}
		e.Stock, e.HasStock = int32(s), true
	}
	if j.Price != nil {
		p := *j.Price
		if math.IsNaN(p) || math.IsInf(p, 0) || math.Abs(p) > math.MaxFloat32 {
			return fmt.Sprintf("price must be a finite number, got %v", p)
		}
		e.Price, e.HasPrice = float32(p), true
	}
	if len(j.Attributes) > MaxAttributes {
		return fmt.Sprintf("attributes has %d entries; at most %d are allowed", len(j.Attributes), MaxAttributes)
	}
	b.names = b.names[:0]
	for k := range j.Attributes {
		b.names = append(b.names, k)
	}
	slices.Sort(b.names)
	for _, k := range b.names {
		if k == "" || len(k) > MaxIDBytes {
			return "attribute names must be 1 to 256 bytes long"
		}
		var v string
		switch x := j.Attributes[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		case nil: // clears the attribute
		default:
			return fmt.Sprintf("attribute %q must be a string, number, bool or null", clip(k))
		}
		if len(v) > MaxIDBytes {
			return fmt.Sprintf("attribute %q is longer than %d bytes", clip(k), MaxIDBytes)
		}
		e.Attributes = append(e.Attributes, catalog.Attribute{Name: k, Value: v})
	}
	return ""
}

// parseTS parses an RFC 3339 string or an integer of Unix milliseconds into Unix
// nanoseconds. It returns a message when raw is neither.
func parseTS(raw []byte) (int64, string) {
	const bad = "ts must be an RFC 3339 string such as \"2026-11-22T10:00:00Z\" or an integer of Unix milliseconds"
	if raw[0] == '"' {
		if len(raw) < 2 || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
			return 0, bad
		}
		t, err := time.Parse(time.RFC3339Nano, string(raw[1:len(raw)-1]))
		if err != nil {
			return 0, fmt.Sprintf("%s: %q", bad, clip(string(raw[1:len(raw)-1])))
		}
		if t.Year() < 1970 || t.Year() > 2200 {
			return 0, "ts must lie between the years 1970 and 2200"
		}
		return t.UnixNano(), ""
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, bad
	}
	if ms < 0 || ms > 7258118400000 { // 2200-01-01
		return 0, "ts must lie between the years 1970 and 2200"
	}
	return ms * int64(time.Millisecond), ""
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// shortErr makes a decoder error fit on one line.
func shortErr(err error) string {
	s := err.Error()
	for _, sep := range []string{"\n", `\n`} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	s = strings.TrimRight(strings.ReplaceAll(s, `"`, ""), " :")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
