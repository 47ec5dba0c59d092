package controlplane

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxListIndex bounds the N in "Name.N" so that a hostile request cannot make
// a handler allocate or loop over an absurd index range; EC2's own lists are
// far shorter (50 tags, 1000 ids).
const maxListIndex = 1000

// params is the flat key/value view of an EC2 Query request ("Filter.1.Name",
// "TagSpecification.1.Tag.2.Key"). EC2 lists are numbered from 1 and each
// element may be a structure, so params can narrow itself to a prefix.
type params struct {
	prefix string // already joined with the trailing dot, for messages
	v      map[string]string
}

// newParams takes the first value of every key: EC2 clients never repeat a
// key, and first-wins keeps the behaviour deterministic if one does.
func newParams(values map[string][]string) params {
	m := make(map[string]string, len(values))
	for k, vs := range values {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return params{v: m}
}

// name returns the full parameter name of key, for error messages.
func (p params) name(key string) string { return p.prefix + key }

// get returns the value of key and whether it was given.
func (p params) get(key string) (string, bool) {
	v, ok := p.v[key]
	return v, ok
}

// str returns the value of key, or "" when absent.
func (p params) str(key string) string { return p.v[key] }

// has reports whether key or any key below it ("key.…") was given.
func (p params) has(key string) bool {
	if _, ok := p.v[key]; ok {
		return true
	}
	pre := key + "."
	for k := range p.v {
		if strings.HasPrefix(k, pre) {
			return true
		}
	}
	return false
}

// required returns the non-empty value of key or MissingParameter.
func (p params) required(key string) (string, error) {
	v, ok := p.v[key]
	if !ok || v == "" {
		return "", errMissing(p.name(key))
	}
	return v, nil
}

// sub narrows p to the keys below "key.".
func (p params) sub(key string) params {
	pre := key + "."
	m := map[string]string{}
	for k, v := range p.v {
		if rest, ok := strings.CutPrefix(k, pre); ok && rest != "" {
			m[rest] = v
		}
	}
	return params{prefix: p.prefix + pre, v: m}
}

// list returns the structures "key.1.…", "key.2.…" in index order. Gaps are
// allowed (EC2 allows them too); a non-numeric or out-of-range index is an
// InvalidParameterValue so that a typo never silently drops an element.
func (p params) list(key string) ([]params, error) {
	pre := key + "."
	groups := map[int]map[string]string{}
	for k, v := range p.v {
		rest, ok := strings.CutPrefix(k, pre)
		if !ok {
			continue
		}
		idxStr, field, _ := strings.Cut(rest, ".")
		idx, err := strconv.Atoi(idxStr)
		if err != nil || idx < 1 || idx > maxListIndex || strconv.Itoa(idx) != idxStr {
			return nil, errInvalid("The parameter " + p.name(key) + " has an invalid index.")
		}
		g := groups[idx]
		if g == nil {
			g = map[string]string{}
			groups[idx] = g
		}
		g[field] = v
	}
	idxs := make([]int, 0, len(groups))
	for i := range groups {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	out := make([]params, 0, len(idxs))
	for _, i := range idxs {
		out = append(out, params{prefix: p.prefix + pre + strconv.Itoa(i) + ".", v: groups[i]})
	}
	return out, nil
}

// strings returns the scalar list "key.1", "key.2", … in index order.
func (p params) strings(key string) ([]string, error) {
	items, err := p.list(key)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		v, ok := it.v[""]
		if !ok || len(it.v) != 1 {
			return nil, errInvalid("The parameter " + p.name(key) + " must be a list of values.")
		}
		out = append(out, v)
	}
	return out, nil
}

// intOpt parses an optional integer; nil when absent.
func (p params) intOpt(key string) (*int, error) {
	v, ok := p.v[key]
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return nil, errInvalid("Invalid value '" + v + "' for " + p.name(key) + ": not an integer.")
	}
	return &n, nil
}

// boolOpt parses an optional boolean (EC2 accepts true/false in any case).
func (p params) boolOpt(key string) (bool, bool, error) {
	v, ok := p.v[key]
	if !ok {
		return false, false, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, errInvalid("Invalid value '" + v + "' for " + p.name(key) + ": expecting true or false.")
}

// enumOpt returns a pointer to the value of key if it is one of allowed.
func (p params) enumOpt(key string, allowed ...string) (*string, error) {
	v, ok := p.v[key]
	if !ok {
		return nil, nil
	}
	for _, a := range allowed {
		if v == a {
			return &v, nil
		}
	}
	return nil, errInvalid("Invalid value '" + v + "' for " + p.name(key) + ". Valid values: " + strings.Join(allowed, ", ") + ".")
}

// timeOpt parses an optional RFC 3339 time.
func (p params) timeOpt(key string) (*time.Time, error) {
	v, ok := p.v[key]
	if !ok {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, errInvalid("Invalid value '" + v + "' for " + p.name(key) + ": expecting an RFC 3339 time such as 2024-01-02T15:04:05Z.")
	}
	t = t.UTC()
	return &t, nil
}

// dryRun reports the DryRun flag.
func (p params) dryRun() (bool, error) {
	v, _, err := p.boolOpt("DryRun")
	return v, err
}

// decodeBase64 accepts standard base64 with or without padding, and tolerates
// line breaks, because user data is often wrapped by the tool that encoded it.
func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}
