package demo

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/bytedance/sonic"
	"github.com/podium-rank/podium/engine/catalog"
)

// Config sizes a demo data set. DefaultConfig gives the one `engine --demo` serves.
type Config struct {
	Items      int     // items i0..i{Items-1}
	Users      int     // users u0..u{Users-1}
	Dim        int     // embedding dimension
	Clusters   int     // embedding clusters (fine-grained product types)
	Categories int     // categories; each cluster belongs to one
	Brands     int     // brands; each cluster favours a few
	Spread     float64 // per-coordinate noise around a cluster centre
	OutOfStock float64 // share of items out of stock
	Seed       uint64
}

// DefaultConfig returns the demo catalog: 100k items with 64-d embeddings in 1000 clusters,
// 40 categories, 400 brands and 10k users.
func DefaultConfig() Config {
	return Config{Items: 100_000, Users: 10_000, Dim: 64, Clusters: 1000, Categories: 40,
		Brands: 400, Spread: 0.35, OutOfStock: 0.03, Seed: 42}
}

// ItemFeatureNames lists the 32 numeric features every demo item has, in order.
var ItemFeatureNames = func() []string {
	names := []string{"price", "popularity", "rating", "rating_count", "margin", "age_days",
		"discount", "ctr_7d", "cvr_7d", "return_rate"}
	for i := len(names); i < 32; i++ {
		names = append(names, "q"+strconv.Itoa(i-10))
	}
	return names
}()

// UserFeatureNames lists the numeric features every demo user has.
var UserFeatureNames = []string{"age", "tenure_days", "avg_spend", "sessions_30d"}

// Dataset is a generated catalog. Items[i] has id "i<i>", Users[u] has id "u<u>".
type Dataset struct {
	Config       Config
	Items        []catalog.Item
	Users        []catalog.User
	ItemCluster  []int32   // cluster of each item
	UserClusters [][]int32 // interest clusters of each user, strongest first
	ClusterCat   []int32   // category of each cluster
}

// Generate builds a data set from cfg. The output depends only on cfg.
func Generate(cfg Config) *Dataset {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	vecs, cluster := ClusteredVectors(cfg.Items, cfg.Dim, cfg.Clusters, cfg.Spread, cfg.Seed)
	d := &Dataset{Config: cfg, ItemCluster: cluster}

	// Each cluster belongs to a category and favours three brands; clusters differ in
	// appeal, which with a per-item Zipf draw gives popularity a long tail.
	d.ClusterCat = make([]int32, cfg.Clusters)
	clusterBrands := make([][3]int, cfg.Clusters)
	clusterAppeal := make([]float64, cfg.Clusters)
	catPrice := make([]float64, cfg.Categories)
	for c := range catPrice {
		catPrice[c] = math.Exp(2.5 + 1.2*rng.Float64()) // medians from ~12 to ~40
	}
	for c := 0; c < cfg.Clusters; c++ {
		d.ClusterCat[c] = int32(rng.IntN(cfg.Categories))
		for b := range clusterBrands[c] {
			clusterBrands[c][b] = rng.IntN(cfg.Brands)
		}
		clusterAppeal[c] = math.Exp(rng.NormFloat64())
	}
	popRank := rng.Perm(cfg.Items)
	d.Items = make([]catalog.Item, cfg.Items)
	for i := range d.Items {
		c := int(cluster[i])
		cat := d.ClusterCat[c]
		brand := clusterBrands[c][0]
		if r := rng.Float64(); r > 0.6 {
			brand = clusterBrands[c][1+int(r*10)%2]
		}
		if rng.Float64() < 0.1 {
			brand = rng.IntN(cfg.Brands)
		}
		pop := clusterAppeal[c] / math.Pow(float64(popRank[i]+10), 0.9) * 100
		price := catPrice[cat] * math.Exp(0.5*rng.NormFloat64())
		rating := math.Min(5, math.Max(1, 3.8+0.6*rng.NormFloat64()))
		feats := make([]catalog.Feature, 0, len(ItemFeatureNames))
		vals := []float64{price, pop, rating, math.Floor(pop * 50 * rng.Float64()),
			0.1 + 0.3*rng.Float64(), math.Floor(rng.Float64() * 720), math.Max(0, 0.3*rng.NormFloat64()),
			0.01 + 0.05*rng.Float64()*math.Min(1, pop), 0.002 + 0.02*rng.Float64(), 0.1 * rng.Float64()}
		for f, name := range ItemFeatureNames {
			v := rng.Float64()
			if f < len(vals) {
				v = vals[f]
			}
			feats = append(feats, catalog.Feature{Name: name, Value: float32(v)})
		}
		d.Items[i] = catalog.Item{
			ID:        "i" + strconv.Itoa(i),
			Embedding: vecs[i*cfg.Dim : (i+1)*cfg.Dim : (i+1)*cfg.Dim],
			Features:  feats,
			Attributes: []catalog.Attribute{
				{Name: "brand", Value: "b" + strconv.Itoa(brand)},
				{Name: "category", Value: "c" + strconv.Itoa(int(cat))},
			},
			InStock: rng.Float64() >= cfg.OutOfStock,
		}
	}

	// Users like one to three clusters; their embedding is a weighted mix of those
	// clusters' mean item vectors, plus noise.
	centre := clusterMeans(vecs, cluster, cfg.Clusters, cfg.Dim)
	d.Users = make([]catalog.User, cfg.Users)
	d.UserClusters = make([][]int32, cfg.Users)
	for u := range d.Users {
		n := 1 + rng.IntN(3)
		emb := make([]float32, cfg.Dim)
		w := 1.0
		for k := 0; k < n; k++ {
			c := rng.IntN(cfg.Clusters)
			d.UserClusters[u] = append(d.UserClusters[u], int32(c))
			for j := range emb {
				emb[j] += float32(w) * centre[c*cfg.Dim+j]
			}
			w *= 0.6
		}
		for j := range emb {
			emb[j] += float32(0.1 * rng.NormFloat64())
		}
		d.Users[u] = catalog.User{
			ID:        "u" + strconv.Itoa(u),
			Embedding: emb,
			Features: []catalog.Feature{
				{Name: "age", Value: float32(18 + rng.IntN(60))},
				{Name: "tenure_days", Value: float32(rng.IntN(2000))},
				{Name: "avg_spend", Value: float32(20 * math.Exp(0.7*rng.NormFloat64()))},
				{Name: "sessions_30d", Value: float32(rng.IntN(40))},
			},
		}
	}
	return d
}

func clusterMeans(vecs []float32, cluster []int32, k, dim int) []float32 {
	sum := make([]float32, k*dim)
	cnt := make([]float32, k)
	for i, c := range cluster {
		cnt[c]++
		for j := 0; j < dim; j++ {
			sum[int(c)*dim+j] += vecs[i*dim+j]
		}
	}
	for c := 0; c < k; c++ {
		if cnt[c] > 0 {
			for j := 0; j < dim; j++ {
				sum[c*dim+j] /= cnt[c]
			}
		}
	}
	return sum
}

type itemOut struct {
	ID         string             `json:"id"`
	Embedding  []float32          `json:"embedding,omitempty"`
	Features   map[string]float32 `json:"features,omitempty"`
	Attributes map[string]string  `json:"attributes,omitempty"`
	InStock    bool               `json:"in_stock"`
}

// WriteItemsNDJSON writes the items as NDJSON, the format `--items` and PUT /v1/items read.
func (d *Dataset) WriteItemsNDJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := range d.Items {
		it := &d.Items[i]
		o := itemOut{ID: it.ID, Embedding: it.Embedding, InStock: it.InStock,
			Features: map[string]float32{}, Attributes: map[string]string{}}
		for _, f := range it.Features {
			o.Features[f.Name] = f.Value
		}
		for _, a := range it.Attributes {
			o.Attributes[a.Name] = a.Value
		}
		b, err := sonic.Marshal(&o)
		if err != nil {
			return fmt.Errorf("cannot encode item %s: %w", it.ID, err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

type userOut struct {
	ID        string             `json:"id"`
	Embedding []float32          `json:"embedding,omitempty"`
	Features  map[string]float32 `json:"features,omitempty"`
}

// WriteUsersNDJSON writes the users as NDJSON, the format `--users` and PUT /v1/users read.
func (d *Dataset) WriteUsersNDJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := range d.Users {
		u := &d.Users[i]
		o := userOut{ID: u.ID, Embedding: u.Embedding, Features: map[string]float32{}}
		for _, f := range u.Features {
			o.Features[f.Name] = f.Value
		}
		b, err := sonic.Marshal(&o)
		if err != nil {
			return fmt.Errorf("cannot encode user %s: %w", u.ID, err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
