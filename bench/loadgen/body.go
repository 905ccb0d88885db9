package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Template placeholders understood by TemplateBody.
const (
	// PlaceholderUser is replaced by a user id "u<n>", n in [0, users).
	PlaceholderUser = "{{user}}"
	// PlaceholderIndex is replaced by the request index.
	PlaceholderIndex = "{{i}}"
)

var userIDField = regexp.MustCompile(`("user_id"\s*:\s*)"[^"]*"`)

// TemplateBody returns a BodyFunc that expands tmpl for each request: every
// PlaceholderUser becomes "u<n>" with n a hash of the request index modulo users (so the
// users are spread evenly and a run is reproducible), and every PlaceholderIndex becomes
// the request index. If users > 0 and tmpl has no PlaceholderUser, the string value of a
// "user_id" field is replaced instead. The returned BodyFunc is goroutine-safe and does
// not allocate when dst has room.
//
// With the demo catalog (users u0..u9999) a POST /v1/rank body can be
// TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000).
func TemplateBody(tmpl []byte, users int) (BodyFunc, error) {
	if users > 0 && !bytes.Contains(tmpl, []byte(PlaceholderUser)) {
		if !userIDField.Match(tmpl) {
			return nil, fmt.Errorf("cannot vary users: template has neither %s nor a \"user_id\" string field", PlaceholderUser)
		}
		tmpl = userIDField.ReplaceAll(tmpl, []byte(`${1}"`+PlaceholderUser+`"`))
	}
	if users <= 0 && bytes.Contains(tmpl, []byte(PlaceholderUser)) {
		return nil, errors.New("cannot expand " + PlaceholderUser + ": users must be positive")
	}
	// Split the template into literal parts separated by placeholders.
	type part struct {
		lit  []byte
		kind byte // 0: end, 'u': user, 'i': index
	}
	var parts []part
	rest := bytes.Clone(tmpl)
	for {
		u := bytes.Index(rest, []byte(PlaceholderUser))
		i := bytes.Index(rest, []byte(PlaceholderIndex))
		switch {
		case u < 0 && i < 0:
			parts = append(parts, part{lit: rest})
		case i < 0 || (u >= 0 && u < i):
			parts = append(parts, part{lit: rest[:u], kind: 'u'})
			rest = rest[u+len(PlaceholderUser):]
			continue
		default:
			parts = append(parts, part{lit: rest[:i], kind: 'i'})
			rest = rest[i+len(PlaceholderIndex):]
			continue
		}
		break
	}
	return func(i int, dst []byte) []byte {
		for _, p := range parts {
			dst = append(dst, p.lit...)
			switch p.kind {
			case 'u':
				dst = append(dst, 'u')
				dst = strconv.AppendUint(dst, splitmix64(uint64(i))%uint64(users), 10)
			case 'i':
				dst = strconv.AppendInt(dst, int64(i), 10)
			}
		}
		return dst
	}, nil
}

// splitmix64 is a fast bijective mixer: consecutive indexes map to unrelated users.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// CheckContains returns a CheckFunc that fails responses whose body lacks sub, for
// example CheckContains(`"items"`). It is goroutine-safe.
func CheckContains(sub string) CheckFunc {
	s := []byte(sub)
	errMissing := fmt.Errorf("response body lacks %s", sub)
	return func(_ int, body []byte) error {
		if !bytes.Contains(body, s) {
			return errMissing
		}
		return nil
	}
}
