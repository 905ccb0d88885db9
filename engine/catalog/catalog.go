// Package catalog holds what Podium knows about items and users: string ids interned to
// dense ids, item embeddings, categorical attributes, availability and numeric features.
package catalog

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/podium-rank/podium/engine/features"
)

// MaxAttributes bounds how many categorical attribute names (category, brand, ...) a
// catalog may hold.
const MaxAttributes = 32

// Item state bits in the state column.
const (
	stateLive    = 1 << 0 // the item exists (upserted and not deleted)
	stateInStock = 1 << 1 // the item can be sold
	stateHasEmb  = 1 << 2 // the item has an embedding
)

// Errors returned for invalid items and users. They wrap into messages that name the field.
var (
	ErrEmptyID      = errors.New("catalog: id is empty")
	ErrDimension    = errors.New("catalog: wrong embedding dimension")
	ErrNotFinite    = errors.New("catalog: value is NaN or Inf")
	ErrTooManyAttrs = errors.New("catalog: too many attribute names")
	ErrUnknownItem  = errors.New("catalog: unknown item")
)

// Item is one item as loaded from NDJSON or the bulk API. Zero Stock with HasStock false
// means the stock level is unknown; InStock then decides availability.
type Item struct {
	ID         string
	Embedding  []float32
	Features   []Feature
	Attributes []Attribute
	InStock    bool
	HasStock   bool
	Stock      int32
}

// Feature is one named numeric value.
type Feature struct {
	Name  string
	Value float32
}

// Attribute is one named categorical value, such as category=shoes.
type Attribute struct {
	Name  string
	Value string
}

type attribute struct {
	name string
	vals *Interner // value -> code; the stored code is id+1 so that 0 means missing
	col  u32Column
}

// Catalog stores items and users. Reads are goroutine-safe and lock-free; writes are
// goroutine-safe and serialised by one mutex. A reader racing a writer of the same item sees
// each field either before or after the write.
type Catalog struct {
	dim   int
	wmu   sync.Mutex
	items *Interner
	users *Interner

	emb   vecColumn
	state u32Column
	stock u32Column // int32 stock level as bits; valid when the item HasStock
	hasSt u32Column // 1 when the stock level is known

	attrNames *Interner
	attrs     [MaxAttributes]atomic.Pointer[attribute]

	itemSchema *features.Schema
	itemFeats  *features.ItemStore
	userSchema *features.Schema
	userStore  *features.UserStore

	live    atomic.Int64
	version atomic.Uint64
}

// Config sizes a catalog. Zero values get the defaults.
type Config struct {
	// Dim is the embedding dimension of items and users; 0 for a catalog without embeddings.
	Dim int
	// MaxItemFeatures bounds the number of item feature names (default 256).
	MaxItemFeatures int
	// MaxUserFeatures bounds the number of user feature names (default 256).
	MaxUserFeatures int
	// UserCacheBytes sizes the fastcache that holds user rows (default 256 MiB). When it
	// is full the oldest rows are evicted, and such users rank as unknown until reloaded.
	UserCacheBytes int
}

// New returns an empty catalog.
func New(cfg Config) *Catalog {
	if cfg.MaxItemFeatures <= 0 {
		cfg.MaxItemFeatures = 256
	}
	if cfg.MaxUserFeatures <= 0 {
		cfg.MaxUserFeatures = 256
	}
	if cfg.UserCacheBytes <= 0 {
		cfg.UserCacheBytes = 256 << 20
	}
	c := &Catalog{dim: cfg.Dim, items: NewInterner(), users: NewInterner(), attrNames: NewInterner()}
	c.emb.dim = cfg.Dim
	c.itemSchema = features.NewSchema(cfg.MaxItemFeatures)
	c.itemFeats = features.NewItemStore(cfg.MaxItemFeatures, 0)
	c.userSchema = features.NewSchema(cfg.MaxUserFeatures)
	c.userStore = features.NewUserStore(cfg.UserCacheBytes)
	return c
}

// Dim returns the embedding dimension.
func (c *Catalog) Dim() int { return c.dim }

// Items returns the interner of item ids.
func (c *Catalog) Items() *Interner { return c.items }

// Users returns the interner of user ids.
func (c *Catalog) Users() *Interner { return c.users }

// Version increases with every write; readers use it to notice change cheaply.
func (c *Catalog) Version() uint64 { return c.version.Load() }

// LiveItems returns how many items exist now.
func (c *Catalog) LiveItems() int { return int(c.live.Load()) }

// ItemCap returns one more than the largest dense item id ever assigned.
func (c *Catalog) ItemCap() int { return c.items.Len() }

// CheckVector reports whether v has the catalog's dimension and only finite values.
func (c *Catalog) CheckVector(v []float32) error {
	if len(v) != c.dim {
		return fmt.Errorf("%w: got %d values, the catalog has %d", ErrDimension, len(v), c.dim)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: embedding[%d]", ErrNotFinite, i)
		}
	}
	return nil
}

// Validate checks an item without storing it.
func (c *Catalog) Validate(it *Item) error {
	if it.ID == "" {
		return ErrEmptyID
	}
	if len(it.Embedding) > 0 || c.dim > 0 && it.Embedding != nil {
		if err := c.CheckVector(it.Embedding); err != nil {
			return err
		}
	}
	for _, f := range it.Features {
		if f.Name == "" {
			return errors.New("catalog: feature name is empty")
		}
		if math.IsNaN(float64(f.Value)) || math.IsInf(float64(f.Value), 0) {
			return fmt.Errorf("%w: feature %q", ErrNotFinite, f.Name)
		}
	}
	for _, a := range it.Attributes {
		if a.Name == "" {
			return errors.New("catalog: attribute name is empty")
		}
	}
	return nil
}

// Upsert stores it, replacing an item with the same id, and returns its dense id. Features
// are not stored here (see Store). Fields the item leaves out keep their old values, except
// availability, which is always set.
func (c *Catalog) Upsert(it *Item) (uint32, error) {
	if err := c.Validate(it); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id, _ := c.items.Intern(it.ID)
	n := int(id) + 1
	c.state.grow(n)
	c.stock.grow(n)
	c.hasSt.grow(n)
	if c.dim > 0 {
		c.emb.grow(n)
	}
	st := c.state.load(id)
	if st&stateLive == 0 {
		c.live.Add(1)
	}
	st |= stateLive
	if len(it.Embedding) > 0 {
		c.emb.write(id, it.Embedding)
		st |= stateHasEmb
	}
	inStock := it.InStock
	if it.HasStock {
		inStock = it.Stock > 0
		c.stock.store(id, uint32(it.Stock))
		c.hasSt.store(id, 1)
	}
	if inStock {
		st |= stateInStock
	} else {
		st &^= stateInStock
	}
	for _, a := range it.Attributes {
		if err := c.setAttrLocked(id, a.Name, a.Value); err != nil {
			return id, err
		}
	}
	for _, f := range it.Features {
		col, err := c.itemSchema.Intern(f.Name)
		if err != nil {
			return id, fmt.Errorf("cannot store feature %q: %w", f.Name, err)
		}
		if err := c.itemFeats.Set(id, col, f.Value); err != nil {
			return id, fmt.Errorf("cannot store feature %q: %w", f.Name, err)
		}
	}
	c.state.store(id, st)
	c.version.Add(1)
	return id, nil
}

// Delete removes the item with string id s. Its dense id is never reused.
func (c *Catalog) Delete(s string) (uint32, error) {
	id, ok := c.items.Lookup(s)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownItem, s)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := c.state.load(id)
	if st&stateLive == 0 {
		return id, fmt.Errorf("%w %q", ErrUnknownItem, s)
	}
	c.state.store(id, 0)
	c.live.Add(-1)
	c.version.Add(1)
	return id, nil
}

// SetStock sets the stock level of a live item; 0 or less makes it unavailable.
func (c *Catalog) SetStock(id uint32, stock int32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := c.state.load(id)
	if st&stateLive == 0 {
		return ErrUnknownItem
	}
	c.stock.store(id, uint32(stock))
	c.hasSt.store(id, 1)
	if stock > 0 {
		st |= stateInStock
	} else {
		st &^= stateInStock
	}
	c.state.store(id, st)
	c.version.Add(1)
	return nil
}

// SetAttribute sets one categorical attribute of a live item.
func (c *Catalog) SetAttribute(id uint32, name, value string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.state.load(id)&stateLive == 0 {
		return ErrUnknownItem
	}
	if err := c.setAttrLocked(id, name, value); err != nil {
		return err
	}
	c.version.Add(1)
	return nil
}

func (c *Catalog) setAttrLocked(id uint32, name, value string) error {
	ai, created := c.attrNames.Intern(name)
	if int(ai) >= MaxAttributes {
		return fmt.Errorf("%w: %q would be number %d of at most %d", ErrTooManyAttrs, name, ai+1, MaxAttributes)
	}
	a := c.attrs[ai].Load()
	if created || a == nil {
		a = &attribute{name: name, vals: NewInterner()}
		c.attrs[ai].Store(a)
	}
	a.col.grow(int(id) + 1)
	code := uint32(0)
	if value != "" {
		v, _ := a.vals.Intern(value)
		code = v + 1
	}
	a.col.store(id, code)
	return nil
}

// Live reports whether the item exists.
func (c *Catalog) Live(id uint32) bool { return c.state.load(id)&stateLive != 0 }

// Available reports whether the item exists and is in stock.
func (c *Catalog) Available(id uint32) bool {
	return c.state.load(id)&(stateLive|stateInStock) == stateLive|stateInStock
}

// HasEmbedding reports whether the item has an embedding.
func (c *Catalog) HasEmbedding(id uint32) bool { return c.state.load(id)&stateHasEmb != 0 }

// Stock returns the stock level and whether it is known.
func (c *Catalog) Stock(id uint32) (int32, bool) {
	return int32(c.stock.load(id)), c.hasSt.load(id) == 1
}

// Embedding appends the item's embedding to dst (zeros if it has none).
func (c *Catalog) Embedding(id uint32, dst []float32) []float32 { return c.emb.read(id, dst) }

// ItemName returns the string id of a dense item id.
func (c *Catalog) ItemName(id uint32) string { return c.items.Name(id) }

// AttributeIndex returns the index of an attribute name, for AttributeCode.
func (c *Catalog) AttributeIndex(name string) (int, bool) {
	i, ok := c.attrNames.Lookup(name)
	if !ok || int(i) >= MaxAttributes {
		return 0, false
	}
	return int(i), true
}

// AttributeNames returns the attribute names in index order.
func (c *Catalog) AttributeNames() []string {
	n := c.attrNames.Len()
	out := make([]string, 0, n)
	for i := 0; i < n && i < MaxAttributes; i++ {
		out = append(out, c.attrNames.Name(uint32(i)))
	}
	return out
}

// AttributeCode returns the code of attribute ai of an item: 0 when missing, otherwise one
// more than the value's id in AttributeValues(ai).
func (c *Catalog) AttributeCode(ai int, id uint32) uint32 {
	a := c.attrs[ai].Load()
	if a == nil {
		return 0
	}
	return a.col.load(id)
}

// AttributeValues returns the interner of attribute ai's values, or nil.
func (c *Catalog) AttributeValues(ai int) *Interner {
	a := c.attrs[ai].Load()
	if a == nil {
		return nil
	}
	return a.vals
}

// AttributeValue returns the string value of attribute ai of an item, or "".
func (c *Catalog) AttributeValue(ai int, id uint32) string {
	code := c.AttributeCode(ai, id)
	if code == 0 {
		return ""
	}
	return c.attrs[ai].Load().vals.Name(code - 1)
}

// ItemSchema returns the registry of item feature names.
func (c *Catalog) ItemSchema() *features.Schema { return c.itemSchema }

// ItemFeatures returns the item feature store.
func (c *Catalog) ItemFeatures() *features.ItemStore { return c.itemFeats }

// FeatureColumn returns the column of an item feature name.
func (c *Catalog) FeatureColumn(name string) (int, bool) { return c.itemSchema.Lookup(name) }

// GatherFeatures writes item features cols of ids column-major into dst (NaN where
// missing); see features.ItemStore.Gather.
func (c *Catalog) GatherFeatures(ids []uint32, cols []int, dst []float32) []float32 {
	return c.itemFeats.Gather(ids, cols, dst)
}

// ItemFeature returns one item feature value, NaN when missing.
func (c *Catalog) ItemFeature(id uint32, col int) float32 { return c.itemFeats.Get(id, col) }

// SetItemFeature sets one feature of a live item.
func (c *Catalog) SetItemFeature(id uint32, name string, v float32) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("%w: feature %q", ErrNotFinite, name)
	}
	if !c.Live(id) {
		return ErrUnknownItem
	}
	col, err := c.itemSchema.Intern(name)
	if err != nil {
		return err
	}
	if err := c.itemFeats.Set(id, col, v); err != nil {
		return err
	}
	c.version.Add(1)
	return nil
}

// UserSchema returns the registry of user feature names.
func (c *Catalog) UserSchema() *features.Schema { return c.userSchema }

// ValidateUser checks a user without storing it.
func (c *Catalog) ValidateUser(u *User) error {
	if u.ID == "" {
		return ErrEmptyID
	}
	if u.Embedding != nil {
		if err := c.CheckVector(u.Embedding); err != nil {
			return err
		}
	}
	for _, f := range u.Features {
		if f.Name == "" {
			return errors.New("catalog: feature name is empty")
		}
		if math.IsNaN(float64(f.Value)) || math.IsInf(float64(f.Value), 0) {
			return fmt.Errorf("%w: feature %q", ErrNotFinite, f.Name)
		}
	}
	return nil
}

// UpsertUser stores u, replacing any earlier row of the same user, and returns its dense id.
func (c *Catalog) UpsertUser(u *User) (uint32, error) {
	if err := c.ValidateUser(u); err != nil {
		return 0, err
	}
	cols := make([]int, len(u.Features))
	vals := make([]float32, len(u.Features))
	for i, f := range u.Features {
		col, err := c.userSchema.Intern(f.Name)
		if err != nil {
			return 0, fmt.Errorf("cannot store user feature %q: %w", f.Name, err)
		}
		cols[i], vals[i] = col, f.Value
	}
	id, _ := c.users.Intern(u.ID)
	if err := c.userStore.PutUser(id, cols, vals, u.Embedding); err != nil {
		return id, err
	}
	return id, nil
}

// User reads a user's row (features and embedding) into row and reports whether it is
// known. It allocates nothing once row has grown.
func (c *Catalog) User(id uint32, row *features.UserRow) bool { return c.userStore.GetUser(id, row) }

// DeleteUser forgets a user's row; the id stays interned.
func (c *Catalog) DeleteUser(id uint32) { c.userStore.DeleteUser(id) }
