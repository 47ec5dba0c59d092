package dataplane

import (
	"strings"
	"unicode/utf8"
)

// splitPath turns a request path into an API version and the path below it.
//
// Repeated slashes collapse into one (the shipped ec2-metadata tool asks for
// "latest//meta-data/ramdisk-id"), a trailing slash is kept for the tree to
// accept, and the version root is "". A "." or ".." segment, a non-UTF-8
// path or a control character makes the path invalid: IMDS has no relative
// paths, and refusing them is safer than resolving them. The common case (no
// doubled slash) does not allocate.
func splitPath(p string) (version, rest string, ok bool) {
	if p == "" || p[0] != '/' || !utf8.ValidString(p) {
		return "", "", false
	}
	if strings.Contains(p, "//") {
		p = collapseSlashes(p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "", "", false
		}
	}
	p = p[1:]
	if p == "" {
		return "", "", true // the root: the version listing
	}
	version, rest, _ = strings.Cut(p, "/")
	for s := rest; s != ""; {
		var seg string
		seg, s, _ = strings.Cut(s, "/")
		if seg == "." || seg == ".." {
			return "", "", false
		}
	}
	if version == "." || version == ".." {
		return "", "", false
	}
	return version, rest, true
}

func collapseSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	prev := byte(0)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' && prev == '/' {
			continue
		}
		b.WriteByte(c)
		prev = c
	}
	return b.String()
}
