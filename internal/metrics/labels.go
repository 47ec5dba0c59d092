package metrics

import "sync"

// labelSet bounds the values of one label: it lets through a fixed set of
// names, or the first max names seen, and maps everything else to overflow.
type labelSet struct {
	mu       sync.Mutex
	max      int
	fixed    bool
	seen     map[string]struct{}
	overflow string
}

// newLabelSet returns a set that allows exactly fixed when fixed is not
// empty, and otherwise the first max values seen.
func newLabelSet(max int, fixed []string, overflow string) *labelSet {
	s := &labelSet{max: max, seen: map[string]struct{}{}, overflow: overflow}
	if len(fixed) > 0 {
		s.fixed = true
		for _, v := range fixed {
			s.seen[v] = struct{}{}
		}
	}
	return s
}

// value returns v if it may be exported, else the overflow value.
func (s *labelSet) value(v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; ok {
		return v
	}
	if s.fixed || len(s.seen) >= s.max {
		return s.overflow
	}
	s.seen[v] = struct{}{}
	return v
}

// forget frees v's slot and reports whether v had one. Values of a fixed
// set are never forgotten.
func (s *labelSet) forget(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; !ok || s.fixed {
		return false
	}
	delete(s.seen, v)
	return true
}
