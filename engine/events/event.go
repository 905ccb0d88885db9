// Package events turns interactions, impressions and item updates into the real-time state
// that the very next ranking request reads: session vectors, exclusions, trending, features.
//
// The front door is Ingestor: Ingest decodes and validates a JSON array or NDJSON body,
// appends the accepted events to a write-ahead log (package events/wal) under the configured
// fsync policy, applies them to State synchronously and reports per-event rejections.
// Package events/kafka feeds the same path from a Kafka topic. State is read by the rank
// path: SessionVector, AppendExcluded, Gather (real-time features), SessionCoVisited and
// PopularityScore. Why it is built this way is in RATIONALE.md, from "Why do events apply
// synchronously, before the 202?" on.
package events

import (
	"errors"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
)

// Type is the kind of an event.
type Type uint8

// Event types. The four interactions come first, in increasing order of intent.
const (
	TypeUnknown    Type = iota // not a valid event type
	TypeView                   // the user looked at an item
	TypeClick                  // the user clicked an item in a list
	TypeAddToCart              // the user put an item in the cart
	TypePurchase               // the user bought an item
	TypeImpression             // a list of items was shown to the user
	TypeItemUpdate             // an item's stock, price or attributes changed
	NumTypes                   // number of types; not a type
)

// numCounted is the number of types counted per item and per user: the four interactions
// and impressions (TypeView..TypeImpression, counter index Type-1).
const numCounted = int(TypeImpression)

var typeNames = [NumTypes]string{"unknown", "view", "click", "add_to_cart", "purchase", "impression", "item_update"}

// plural names used in feature names, indexed by Type.
var typePlurals = [NumTypes]string{"", "views", "clicks", "add_to_carts", "purchases", "impressions", ""}

// String returns the type's name as it appears in event JSON ("add_to_cart").
func (t Type) String() string {
	if t < NumTypes {
		return typeNames[t]
	}
	return "unknown"
}

// ParseType returns the type named s and whether s names one.
func ParseType(s string) (Type, bool) {
	switch s {
	case "view":
		return TypeView, true
	case "click":
		return TypeClick, true
	case "add_to_cart":
		return TypeAddToCart, true
	case "purchase":
		return TypePurchase, true
	case "impression":
		return TypeImpression, true
	case "item_update":
		return TypeItemUpdate, true
	}
	return TypeUnknown, false
}

// IsInteraction reports whether t is a view, click, add-to-cart or purchase.
func (t Type) IsInteraction() bool { return t >= TypeView && t <= TypePurchase }

// Event is one decoded and validated event. Strings may point into the body it was decoded
// from, so an Event must not outlive that body unless its strings are cloned.
type Event struct {
	Type      Type
	UserID    string
	SessionID string
	// ItemID is the item of an interaction or an item update.
	ItemID string
	// RequestID is the response an impression (or, optionally, a click) belongs to.
	RequestID string
	// ItemIDs are the items an impression showed, in display order.
	ItemIDs []string
	// TS is the event time in Unix nanoseconds; an event without "ts" gets the receipt time.
	TS int64

	// Item update fields; each applies only when its Has flag is set.
	Stock      int32
	HasStock   bool
	Price      float32
	HasPrice   bool
	Attributes []catalog.Attribute

	// item is the resolved dense id of ItemID (interactions and item updates).
	item uint32
}

// Time returns TS as a time.Time.
func (e *Event) Time() time.Time { return time.Unix(0, e.TS) }

// Limits on one event, checked by Decode.
const (
	// MaxIDBytes bounds user, session, item and request ids.
	MaxIDBytes = 256
	// MaxImpressionItems bounds the item_ids of one impression.
	MaxImpressionItems = 1000
	// MaxAttributes bounds the attributes of one item update.
	MaxAttributes = 64
	// MaxReportedRejections bounds how many rejected events a Result lists; Rejected still
	// counts all of them.
	MaxReportedRejections = 100
)

// Errors that fail a whole body (every event of it is refused). Compare with errors.Is.
var (
	// ErrEmptyBody is returned for a body with no events.
	ErrEmptyBody = errors.New("events: body holds no events")
	// ErrBadBody is returned when a body is neither a JSON array nor NDJSON.
	ErrBadBody = errors.New("events: body is not a JSON array or NDJSON")
	// ErrTooManyEvents is returned when a body holds more events than Config.MaxEvents.
	ErrTooManyEvents = errors.New("events: too many events in one body")
	// ErrWAL is returned when the write-ahead log refused a batch; nothing was applied.
	ErrWAL = errors.New("events: cannot write the write-ahead log")
	// ErrClosed is returned by an Ingestor after Close.
	ErrClosed = errors.New("events: ingestor is closed")
	// ErrCorrupt is returned when a WAL payload or a checkpoint does not decode.
	ErrCorrupt = errors.New("events: corrupt encoded data")
)

// Rejection codes: the stable "code" of a rejected event.
const (
	CodeInvalidJSON  = "invalid_json"
	CodeUnknownType  = "unknown_type"
	CodeMissingID    = "missing_id"
	CodeInvalidID    = "invalid_id"
	CodeInvalidTS    = "invalid_ts"
	CodeFutureTS     = "future_ts"
	CodeInvalidValue = "invalid_value"
	CodeEmptyUpdate  = "empty_update"
	CodeUnknownItem  = "unknown_item"
)

// Rejection describes one event that was not accepted.
type Rejection struct {
	// Index is the event's 0-based position in the body: the array index, or the index among
	// the non-blank lines of NDJSON.
	Index int `json:"index"`
	// Type is the event's type as given, when it had one.
	Type string `json:"type,omitempty"`
	// Code is a stable machine-readable reason (CodeMissingID, ...).
	Code string `json:"code"`
	// Error is a message a person can act on.
	Error string `json:"error"`
}
