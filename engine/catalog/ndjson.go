package catalog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/bytedance/sonic"
)

// MaxLineBytes bounds one NDJSON line. Longer lines are reported as failed and skipped.
const MaxLineBytes = 1 << 20

// MaxReportedErrors bounds how many failed lines a Report lists; Failed still counts all.
const MaxReportedErrors = 1000

// LineError describes one NDJSON line that was not accepted.
type LineError struct {
	Line  int    `json:"line"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// Report sums up one NDJSON load: how many lines were accepted and which failed, and why.
type Report struct {
	Accepted  int         `json:"accepted"`
	Failed    int         `json:"failed"`
	Errors    []LineError `json:"errors"`
	Truncated bool        `json:"errors_truncated,omitempty"`
}

func (r *Report) fail(line int, id string, err error) {
	r.Failed++
	if len(r.Errors) >= MaxReportedErrors {
		r.Truncated = true
		return
	}
	r.Errors = append(r.Errors, LineError{Line: line, ID: id, Error: err.Error()})
}

// User is one user as loaded from NDJSON or the bulk API.
type User struct {
	ID        string
	Embedding []float32
	Features  []Feature
}

type itemJSON struct {
	ID         string             `json:"id"`
	Embedding  []float64          `json:"embedding"`
	Features   map[string]float64 `json:"features"`
	Attributes map[string]any     `json:"attributes"`
	InStock    *bool              `json:"in_stock"`
	Stock      *float64           `json:"stock"`
}

type userJSON struct {
	ID        string             `json:"id"`
	Embedding []float64          `json:"embedding"`
	Features  map[string]float64 `json:"features"`
}

// ReadItems decodes NDJSON items from r, one object a line, and calls apply for each valid
// one. A line that does not decode, fails validation (via check, if not nil), repeats an id
// seen earlier in the same stream, or is refused by apply is reported with its 1-based line
// number and does not stop the others. Blank lines are skipped. An error reading r ends the
// stream and is returned with the report so far.
func ReadItems(r io.Reader, check func(*Item) error, apply func(*Item) error) (Report, error) {
	var it Item
	return readLines(r, func(line []byte) (string, error) {
		var j itemJSON
		if err := sonic.Unmarshal(line, &j); err != nil {
			return "", fmt.Errorf("invalid JSON: %v", shortErr(err))
		}
		if err := j.toItem(&it); err != nil {
			return j.ID, err
		}
		if check != nil {
			if err := check(&it); err != nil {
				return it.ID, err
			}
		}
		return it.ID, nil
	}, func() error { return apply(&it) })
}

// ReadUsers is ReadItems for users.
func ReadUsers(r io.Reader, check func(*User) error, apply func(*User) error) (Report, error) {
	var u User
	return readLines(r, func(line []byte) (string, error) {
		var j userJSON
		if err := sonic.Unmarshal(line, &j); err != nil {
			return "", fmt.Errorf("invalid JSON: %v", shortErr(err))
		}
		if j.ID == "" {
			return "", ErrEmptyID
		}
		u = User{ID: j.ID}
		var err error
		if u.Embedding, err = toVector(j.Embedding); err != nil {
			return j.ID, err
		}
		if u.Features, err = toFeatures(j.Features); err != nil {
			return j.ID, err
		}
		if check != nil {
			if err := check(&u); err != nil {
				return u.ID, err
			}
		}
		return u.ID, nil
	}, func() error { return apply(&u) })
}

// readLines drives the line loop shared by ReadItems and ReadUsers: decode parses and
// checks one line into the caller's value and returns its id; apply stores it.
func readLines(r io.Reader, decode func([]byte) (string, error), apply func() error) (Report, error) {
	rep := Report{Errors: []LineError{}}
	br := bufio.NewReaderSize(r, 64<<10)
	seen := make(map[string]int)
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br, &buf)
		if err != nil && err != io.EOF {
			return rep, fmt.Errorf("cannot read NDJSON at line %d: %w", lineNo, err)
		}
		if tooLong {
			rep.fail(lineNo, "", fmt.Errorf("line is longer than %d bytes", MaxLineBytes))
		} else if len(bytes.TrimSpace(line)) > 0 {
			id, derr := decode(line)
			switch {
			case derr != nil:
				rep.fail(lineNo, id, derr)
			case seen[id] != 0:
				rep.fail(lineNo, id, fmt.Errorf("duplicate id %q in this batch (first on line %d)", id, seen[id]))
			default:
				seen[id] = lineNo
				if aerr := apply(); aerr != nil {
					rep.fail(lineNo, id, aerr)
				} else {
					rep.Accepted++
				}
			}
		}
		if err == io.EOF {
			return rep, nil
		}
	}
}

// readLine reads one line into *buf. Lines over MaxLineBytes are consumed and flagged.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, tooLong bool, err error) {
	*buf = (*buf)[:0]
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(*buf)+len(chunk) > MaxLineBytes {
			tooLong = true
		} else {
			*buf = append(*buf, chunk...)
		}
		if err != nil {
			return *buf, tooLong, err
		}
		if !isPrefix {
			return *buf, tooLong, nil
		}
	}
}

func (j *itemJSON) toItem(it *Item) error {
	if j.ID == "" {
		return ErrEmptyID
	}
	*it = Item{ID: j.ID, InStock: true}
	var err error
	if it.Embedding, err = toVector(j.Embedding); err != nil {
		return err
	}
	if it.Features, err = toFeatures(j.Features); err != nil {
		return err
	}
	if j.InStock != nil {
		it.InStock = *j.InStock
	}
	if j.Stock != nil {
		s := *j.Stock
		if s != math.Trunc(s) || s < math.MinInt32 || s > math.MaxInt32 {
			return fmt.Errorf("stock must be a whole number, got %v", s)
		}
		it.HasStock, it.Stock = true, int32(s)
	}
	names := make([]string, 0, len(j.Attributes))
	for k := range j.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var v string
		switch x := j.Attributes[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		case nil:
		default:
			return fmt.Errorf("attribute %q must be a string, number or bool", k)
		}
		if k == "" {
			return errors.New("attribute name is empty")
		}
		it.Attributes = append(it.Attributes, Attribute{Name: k, Value: v})
	}
	return nil
}

func toVector(in []float64) ([]float32, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]float32, len(in))
	for i, x := range in {
		f := float32(x)
		if math.IsNaN(x) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("%w: embedding[%d] = %v", ErrNotFinite, i, x)
		}
		out[i] = f
	}
	return out, nil
}

func toFeatures(in map[string]float64) ([]Feature, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Feature, 0, len(in))
	for k, x := range in {
		f := float32(x)
		if k == "" {
			return nil, errors.New("feature name is empty")
		}
		if math.IsNaN(x) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("%w: feature %q = %v", ErrNotFinite, k, x)
		}
		out = append(out, Feature{Name: k, Value: f})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// shortErr trims a decoder error to its first line so reports stay readable.
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
