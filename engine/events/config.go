package events

import (
	"fmt"
	"math"
	"time"

	"github.com/podium-rank/podium/engine/events/wal"
)

// Window is one decay window of the real-time counters: counts decay exponentially with
// this half-life, so a steady rate of r events per hour reads r·HalfLife/ln 2 (about
// 1.44·r for a one-hour half-life).
type Window struct {
	// Name appears in feature names: window "1h" gives "item_clicks_1h".
	Name string
	// HalfLife is the time after which an event counts half.
	HalfLife time.Duration
}

// TypeWeights holds one weight per counted event type.
type TypeWeights struct {
	View, Click, AddToCart, Purchase, Impression float32
}

func (w *TypeWeights) of(t Type) float32 {
	switch t {
	case TypeView:
		return w.View
	case TypeClick:
		return w.Click
	case TypeAddToCart:
		return w.AddToCart
	case TypePurchase:
		return w.Purchase
	case TypeImpression:
		return w.Impression
	}
	return 0
}

func (w *TypeWeights) zero() bool { return *w == TypeWeights{} }

// TypeWindows holds one duration per counted event type; zero means "not at all".
type TypeWindows struct {
	View, Click, AddToCart, Purchase, Impression time.Duration
}

func (w *TypeWindows) of(t Type) time.Duration {
	switch t {
	case TypeView:
		return w.View
	case TypeClick:
		return w.Click
	case TypeAddToCart:
		return w.AddToCart
	case TypePurchase:
		return w.Purchase
	case TypeImpression:
		return w.Impression
	}
	return 0
}

// StateConfig tunes the real-time state. Zero values get the defaults listed per field;
// DefaultConfig().State shows them all.
type StateConfig struct {
	// Windows are the decay windows of item and user counters (default 1h and 24h
	// half-lives, named "1h" and "24h"). At most 8.
	Windows []Window
	// RecentItems is how many interactions are kept per user and per anonymous session
	// (default 50, at most 255).
	RecentItems int
	// SessionHalfLife is the half-life of an interaction's weight in the session vector
	// (default 30 minutes).
	SessionHalfLife time.Duration
	// SessionWeights weigh interactions in the session vector (default view 1, click 2,
	// add_to_cart 4, purchase 6; impressions are not interactions and are ignored).
	SessionWeights TypeWeights
	// Exclude says for how long an item the user interacted with is excluded from their
	// rankings, per type. Nil means the default: purchases for 30 days, nothing else.
	Exclude *TypeWindows
	// MaxExcluded bounds the excluded items kept per user or session (default 200); the
	// ones expiring first are dropped beyond it.
	MaxExcluded int
	// SessionBytes sizes the fastcache that holds per-user and per-session history and
	// counts (default 256 MiB, at least 32 MiB). It keeps about SessionBytes / (record
	// bytes × interactions per second) of history: a record is 50 + 9 bytes per recent
	// interaction. Beyond that, users idle the longest lose their history first.
	SessionBytes int
	// ExcludeBytes sizes the fastcache of exclusion records (default 64 MiB, at least 32
	// MiB), rewritten only by excluded event types: at 8 bytes per excluded item plus the
	// key, the default keeps about 500k purchase writes.
	ExcludeBytes int
	// CoVisitGap is how far apart two interactions of one user or session may be to count
	// as co-visited (default 30 minutes).
	CoVisitGap time.Duration
	// CoVisitLookback is how many earlier interactions a new one pairs with (default 5).
	CoVisitLookback int
	// CoVisitNeighbours bounds the neighbours kept per item (default 20, at most 255).
	CoVisitNeighbours int
	// CTRPrior and CTRPriorImpressions smooth item CTR: (clicks + n·p) / (impressions + n)
	// with p = CTRPrior (default 0.02) and n = CTRPriorImpressions (default 50).
	CTRPrior, CTRPriorImpressions float64
	// PopularityWeights weigh event types in the live popularity score and the
	// item_score_<window> features (default view 1, click 2, add_to_cart 5, purchase 10).
	PopularityWeights TypeWeights
	// PopularityWindow names the window whose counts order the popularity retriever
	// (default the longest window).
	PopularityWindow string
	// PopularityPrior is the total weighted event mass at which live popularity counts as
	// much as the static feature in PopularityScore (default 100).
	PopularityPrior float64
	// StaticPopularity names the catalog item feature blended with live popularity
	// (default "popularity").
	StaticPopularity string
	// Served sizes the request log that joins impressions and clicks to variants.
	Served ServedConfig
}

// ServedConfig sizes the log of served responses used for click-through per variant.
type ServedConfig struct {
	// Capacity is how many served responses are remembered (default 262,144); older ones
	// are overwritten, and later events about them join nothing. Size it as rank requests
	// per second × the delay of the clicks to catch (at 200 req/s the default keeps 22
	// minutes). Memory is about Capacity × (4·MaxIDs + 70) bytes, 34 MB by default.
	Capacity int
	// MaxIDs is how many items of each response are remembered (default 20).
	MaxIDs int
	// JoinWindow is how long after a response a click without request_id is matched to it
	// by user (or session) and item (default 30 minutes).
	JoinWindow time.Duration
	// Window is the sliding window of the per-variant counts (default 1 hour, kept in 60
	// buckets).
	Window time.Duration
	// MaxVariants bounds the distinct variant names (default 256); more share "other".
	MaxVariants int
}

// Config configures an Ingestor. Start from DefaultConfig.
type Config struct {
	// Sync is the WAL fsync policy (default wal.SyncAlways: fsync before the 202).
	Sync wal.SyncPolicy
	// SyncInterval is the fsync period under wal.SyncInterval (default 10ms).
	SyncInterval time.Duration
	// SegmentBytes is the WAL segment size (default 64 MiB).
	SegmentBytes int64
	// Decode bounds bodies and timestamps.
	Decode DecodeOptions
	// CheckpointInterval, when positive, writes a checkpoint this often in the background.
	CheckpointInterval time.Duration
	// NoCheckpointOnClose skips the checkpoint Close otherwise writes.
	NoCheckpointOnClose bool
	// State tunes the real-time state.
	State StateConfig
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	c := Config{Sync: wal.SyncAlways}
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.SyncInterval <= 0 {
		c.SyncInterval = 10 * time.Millisecond
	}
	c.Decode.defaults()
	c.State.fill()
}

func (c *StateConfig) fill() {
	if len(c.Windows) == 0 {
		c.Windows = []Window{{"1h", time.Hour}, {"24h", 24 * time.Hour}}
	}
	if c.RecentItems <= 0 {
		c.RecentItems = 50
	}
	c.RecentItems = min(c.RecentItems, 255)
	if c.SessionHalfLife <= 0 {
		c.SessionHalfLife = 30 * time.Minute
	}
	if c.SessionWeights.zero() {
		c.SessionWeights = TypeWeights{View: 1, Click: 2, AddToCart: 4, Purchase: 6}
	}
	if c.Exclude == nil {
		c.Exclude = &TypeWindows{Purchase: 30 * 24 * time.Hour}
	}
	if c.MaxExcluded <= 0 {
		c.MaxExcluded = 200
	}
	c.MaxExcluded = min(c.MaxExcluded, 4000)
	if c.SessionBytes <= 0 {
		c.SessionBytes = 256 << 20
	}
	if c.ExcludeBytes <= 0 {
		c.ExcludeBytes = 64 << 20
	}
	if c.CoVisitGap <= 0 {
		c.CoVisitGap = 30 * time.Minute
	}
	if c.CoVisitLookback <= 0 {
		c.CoVisitLookback = 5
	}
	if c.CoVisitNeighbours <= 0 {
		c.CoVisitNeighbours = 20
	}
	c.CoVisitNeighbours = min(c.CoVisitNeighbours, 255)
	if c.CTRPrior <= 0 {
		c.CTRPrior = 0.02
	}
	if c.CTRPriorImpressions <= 0 {
		c.CTRPriorImpressions = 50
	}
	if c.PopularityWeights.zero() {
		c.PopularityWeights = TypeWeights{View: 1, Click: 2, AddToCart: 5, Purchase: 10}
	}
	if c.PopularityWindow == "" {
		longest := c.Windows[0]
		for _, w := range c.Windows {
			if w.HalfLife > longest.HalfLife {
				longest = w
			}
		}
		c.PopularityWindow = longest.Name
	}
	if c.PopularityPrior <= 0 {
		c.PopularityPrior = 100
	}
	if c.StaticPopularity == "" {
		c.StaticPopularity = "popularity"
	}
	s := &c.Served
	if s.Capacity <= 0 {
		s.Capacity = 1 << 18
	}
	if s.MaxIDs <= 0 {
		s.MaxIDs = 20
	}
	s.MaxIDs = min(s.MaxIDs, 1000)
	if s.JoinWindow <= 0 {
		s.JoinWindow = 30 * time.Minute
	}
	if s.Window <= 0 {
		s.Window = time.Hour
	}
	if s.MaxVariants <= 0 {
		s.MaxVariants = 256
	}
}

func (c *StateConfig) validate() error {
	if len(c.Windows) > 8 {
		return fmt.Errorf("events: %d windows; at most 8 are allowed", len(c.Windows))
	}
	seen := map[string]bool{}
	for _, w := range c.Windows {
		if w.Name == "" || w.HalfLife <= 0 {
			return fmt.Errorf("events: window %q needs a name and a positive half-life", w.Name)
		}
		if seen[w.Name] {
			return fmt.Errorf("events: window %q is named twice", w.Name)
		}
		seen[w.Name] = true
	}
	if !seen[c.PopularityWindow] {
		return fmt.Errorf("events: popularity window %q is not one of the windows", c.PopularityWindow)
	}
	for _, w := range []TypeWeights{c.SessionWeights, c.PopularityWeights} {
		for _, x := range []float32{w.View, w.Click, w.AddToCart, w.Purchase, w.Impression} {
			if x < 0 || math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("events: weights must be finite and non-negative, got %v", w)
			}
		}
	}
	return nil
}

// rate returns the decay rate per nanosecond of a half-life.
func rate(halfLife time.Duration) float64 { return math.Ln2 / float64(halfLife) }
