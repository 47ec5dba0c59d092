package dataplane

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitPath(t *testing.T) {
	cases := []struct {
		name, in, version, rest string
		ok                      bool
	}{
		{"root", "/", "", "", true},
		{"version_root", "/latest", "latest", "", true},
		{"version_root_slash", "/latest/", "latest", "", true},
		{"leaf", "/latest/meta-data/ami-id", "latest", "meta-data/ami-id", true},
		{"directory_keeps_trailing_slash", "/latest/meta-data/", "latest", "meta-data/", true},
		{"doubled_slash_collapses", "/latest//meta-data/ramdisk-id", "latest", "meta-data/ramdisk-id", true},
		{"many_slashes_collapse", "///latest///meta-data//", "latest", "meta-data/", true},
		{"dotdot_rejected", "/latest/meta-data/../user-data", "", "", false},
		{"dot_rejected", "/latest/./meta-data", "", "", false},
		{"dotdot_version_rejected", "/../latest", "", "", false},
		{"relative_rejected", "latest/meta-data", "", "", false},
		{"empty_rejected", "", "", "", false},
		{"non_utf8_rejected", "/latest/\xff", "", "", false},
		{"control_char_rejected", "/latest/meta\x00data", "", "", false},
		{"dots_inside_names_allowed", "/latest/meta-data/tags/instance/a..b", "latest", "meta-data/tags/instance/a..b", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, r, ok := splitPath(c.in)
			if v != c.version || r != c.rest || ok != c.ok {
				t.Fatalf("splitPath(%q) = %q, %q, %v; want %q, %q, %v", c.in, v, r, ok, c.version, c.rest, c.ok)
			}
		})
	}
}

func TestSplitPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { splitPath("/latest/meta-data/instance-id") })
	if allocs != 0 {
		t.Fatalf("%v allocations, want 0", allocs)
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/", "/latest/meta-data/", "//latest//x", "/a/../b", "/\xff", "/latest/./x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		v, r, ok := splitPath(p)
		if !ok {
			return
		}
		if !utf8.ValidString(v) || !utf8.ValidString(r) {
			t.Fatalf("accepted invalid UTF-8 in %q", p)
		}
		if strings.Contains(r, "//") || strings.Contains(v, "/") {
			t.Fatalf("%q gave %q %q with a doubled slash", p, v, r)
		}
		for _, seg := range strings.Split(v+"/"+r, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q gave a dot segment: %q %q", p, v, r)
			}
		}
	})
}
