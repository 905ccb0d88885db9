package server

import (
	"github.com/podium-rank/podium/engine/internal/jsonw"
	"math"
	"strconv"
)

// appendString appends s as a JSON string literal.
func appendString(dst []byte, s string) []byte { return jsonw.AppendString(dst, s) }

// appendFloat appends f as a JSON number (NaN and Inf, which JSON lacks, as 0).
func appendFloat(dst []byte, f float32) []byte {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, float64(f), 'g', 7, 32)
}

// appendBool appends b as a JSON boolean.
func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
