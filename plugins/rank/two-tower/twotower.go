// Package twotower scores candidates by the similarity of the query (user or session)
// embedding to each item embedding plus a weighted bias feature: the Podium reference plugin
// rank/two-tower, as a pure-Go package shared by the Wasm guest and the native pipeline.
//
// The vector loops are behind Kernels: natively they are the Go loops of this package, in
// the Wasm guest the host's podium.dot and podium.cosine, which sum in the same order, so
// both give the same scores. See README.md for params.
package twotower

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrParams reports stage params that cannot configure a Ranker.
var ErrParams = errors.New("two-tower: invalid params")

// ErrInput reports inputs whose sizes do not agree.
var ErrInput = errors.New("two-tower: invalid input")

// Params configure the plugin: the JSON object the host passes at init, the manifest's
// defaults overlaid by the stage's params, with "features" and "attributes" set by the host.
type Params struct {
	// Similarity is "dot" (the default) or "cosine".
	Similarity string `json:"similarity,omitempty"`
	// Weight multiplies the similarity; default 1.
	Weight *float32 `json:"weight,omitempty"`
	// BiasFeature names the feature column added to the score, e.g. "popularity" or
	// "retrieval_score"; empty for none. It must be one of Features.
	BiasFeature string `json:"bias_feature,omitempty"`
	// BiasWeight multiplies the bias feature.
	BiasWeight float32 `json:"bias_weight,omitempty"`
	// BiasTransform is "none" (the default) or "log1p", which uses log(1+max(0,x)): tames
	// long-tailed counts such as popularity.
	BiasTransform string `json:"bias_transform,omitempty"`
	// Features names the feature columns, in the order the host lays them out.
	Features []string `json:"features"`
	// Attributes is set by the host; the plugin reads none.
	Attributes []string `json:"attributes,omitempty"`
}

// Kernels are the batched vector products the ranker calls. Each sets out[i] from q and row
// i of the row-major matrix rows (len(out) rows of len(q) values); see Dot and Cosine. The
// functions must be goroutine-safe if the Ranker's clones run concurrently.
type Kernels struct {
	Dot    func(q, rows, out []float32)
	Cosine func(q, rows, out []float32)
}

// NativeKernels are this package's Go loops, Dot and Cosine.
var NativeKernels = Kernels{Dot: Dot, Cosine: Cosine}

// Ranker scores one request at a time. Its configuration is immutable and it keeps no
// state between calls, so Rank is goroutine-safe when its Kernels are.
type Ranker struct {
	kernel    func(q, rows, out []float32)
	weight    float32
	biasCol   int // -1 for none
	biasW     float32
	biasLog1p bool
	ncols     int
}

// DecodeParams decodes params JSON strictly (unknown keys are an error, so that a typo is
// not silently ignored) and checks it.
func DecodeParams(data []byte) (Params, error) {
	var p Params
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrParams, err)
	}
	if dec.More() {
		return p, fmt.Errorf("%w: trailing data after the params object", ErrParams)
	}
	switch p.Similarity {
	case "", "dot", "cosine":
	default:
		return p, fmt.Errorf("%w: similarity %q, want \"dot\" or \"cosine\"", ErrParams, p.Similarity)
	}
	switch p.BiasTransform {
	case "", "none", "log1p":
	default:
		return p, fmt.Errorf("%w: bias_transform %q, want \"none\" or \"log1p\"", ErrParams, p.BiasTransform)
	}
	if p.Weight != nil && !finite(*p.Weight) || !finite(p.BiasWeight) {
		return p, fmt.Errorf("%w: weights must be finite", ErrParams)
	}
	if p.BiasFeature != "" && !slices.Contains(p.Features, p.BiasFeature) {
		return p, fmt.Errorf("%w: bias_feature %q is not in the stage's features %q", ErrParams, p.BiasFeature, p.Features)
	}
	return p, nil
}

// New builds a Ranker from params JSON (see Params) that computes similarities with k.
func New(params []byte, k Kernels) (*Ranker, error) {
	p, err := DecodeParams(params)
	if err != nil {
		return nil, err
	}
	return NewFromParams(p, k)
}

// NewFromParams builds a Ranker from decoded params.
func NewFromParams(p Params, k Kernels) (*Ranker, error) {
	r := &Ranker{kernel: k.Dot, weight: 1, biasCol: -1, biasW: p.BiasWeight,
		biasLog1p: p.BiasTransform == "log1p", ncols: len(p.Features)}
	if p.Similarity == "cosine" {
		r.kernel = k.Cosine
	}
	if r.kernel == nil {
		return nil, fmt.Errorf("%w: no %s kernel", ErrParams, p.Similarity)
	}
	if p.Weight != nil {
		r.weight = *p.Weight
	}
	if p.BiasFeature != "" {
		r.biasCol = slices.Index(p.Features, p.BiasFeature)
		if r.biasCol < 0 {
			return nil, fmt.Errorf("%w: bias_feature %q is not in the stage's features %q", ErrParams, p.BiasFeature, p.Features)
		}
	}
	return r, nil
}

// Input is one request's inputs, in the ABI's layout.
type Input struct {
	// Query is the user or session embedding; empty when the request has none.
	Query []float32
	// Embeddings holds the candidates' embeddings, row-major, len(Query) values each.
	Embeddings []float32
	// Features is the column-major feature matrix: feature j of candidate i at [j·n+i].
	Features []float32
	// Scores are the incoming scores (the previous stage's, or the retrieval score).
	Scores []float32
}

// Rank sets out[i], for the n = len(out) candidates, to
//
//	weight·sim(query, item i) + bias_weight·bias(i)
//
// where sim is the dot product or cosine and bias the bias feature (0 when missing). A
// non-finite similarity counts as 0. When the request has no query embedding, or the
// candidates no embeddings, the scores fall back to the incoming ones, unchanged: a cold
// user keeps the retrieval order (popularity, for the demo engine). Rank does not allocate.
func (r *Ranker) Rank(in Input, out []float32) error {
	n := len(out)
	if len(in.Scores) != n {
		return fmt.Errorf("%w: %d incoming scores for %d candidates", ErrInput, len(in.Scores), n)
	}
	if len(in.Features) != r.ncols*n {
		return fmt.Errorf("%w: %d feature values for %d candidates × %d columns", ErrInput, len(in.Features), n, r.ncols)
	}
	if len(in.Query) == 0 || len(in.Embeddings) == 0 || n == 0 {
		copy(out, in.Scores)
		return nil
	}
	if len(in.Embeddings) != n*len(in.Query) {
		return fmt.Errorf("%w: %d embedding values for %d candidates of dimension %d (the query's)",
			ErrInput, len(in.Embeddings), n, len(in.Query))
	}
	r.kernel(in.Query, in.Embeddings, out)
	var bias []float32
	if r.biasCol >= 0 {
		bias = in.Features[r.biasCol*n : (r.biasCol+1)*n]
	}
	for i, s := range out {
		if !finite(s) {
			s = 0
		}
		s *= r.weight
		if bias != nil {
			b := bias[i]
			if r.biasLog1p {
				b = float32(math.Log1p(math.Max(0, float64(b))))
			}
			if finite(b) {
				s += r.biasW * b
			}
		}
		out[i] = clamp(s)
	}
	return nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

func clamp(v float32) float32 {
	// Comparisons, not the min and max builtins: for floats those are runtime calls in the
	// Go Wasm backend, which made this loop ten times slower there.
	switch {
	case v != v:
		return 0
	case v > math.MaxFloat32:
		return math.MaxFloat32
	case v < -math.MaxFloat32:
		return -math.MaxFloat32
	}
	return v
}

// Dot sets out[i] to the dot product of q with row i of rows, a row-major matrix of len(out)
// rows of len(q) values. It sums in the same order as the engine's podium.dot kernel (four
// interleaved partial sums), so the native and Wasm pipelines give identical scores. It
// panics if rows is shorter than len(out)·len(q).
func Dot(q, rows, out []float32) {
	dim := len(q)
	_ = rows[:len(out)*dim]
	for i := range out {
		out[i] = dot(q, rows[i*dim:(i+1)*dim])
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// Cosine sets out[i] to the cosine similarity of q and row i of rows (see Dot), 0 when
// either vector is zero, computed as the engine's podium.cosine kernel does.
func Cosine(q, rows, out []float32) {
	dim := len(q)
	_ = rows[:len(out)*dim]
	qn := dot(q, q)
	for i := range out {
		row := rows[i*dim : (i+1)*dim]
		d, rn := dot(q, row), dot(row, row)
		if qn == 0 || rn == 0 {
			out[i] = 0
			continue
		}
		out[i] = float32(float64(d) / math.Sqrt(float64(qn)*float64(rn)))
	}
}
