package mdtree

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// walk visits every node reachable from the version root by following the
// listings, the way cloud-init crawls IMDS, and calls visit with its path.
// A listed entry that does not resolve fails the test.
func walk(t *testing.T, tree *Tree, version string, visit func(path string, n Node)) {
	t.Helper()
	var rec func(path string)
	rec = func(path string) {
		n, ok := tree.Lookup(version, path)
		if !ok {
			t.Fatalf("version %s: listed path %q answers 404", version, path)
		}
		visit(path, n)
		if n.Kind != Listing {
			return
		}
		for _, line := range strings.Split(string(n.Body), "\n") {
			name := strings.TrimSuffix(line, "/")
			if path == "meta-data/public-keys" {
				name, _, _ = strings.Cut(name, "=")
			}
			if path != "" {
				name = path + "/" + name
			}
			rec(name)
		}
	}
	rec("")
}

// dump renders every path and body of one version, in crawl order.
func dump(t *testing.T, tree *Tree, version string) []byte {
	t.Helper()
	var b bytes.Buffer
	walk(t, tree, version, func(path string, n Node) {
		fmt.Fprintf(&b, "=== /%s/%s [%s", version, path, n.Kind)
		if n.Role != "" {
			fmt.Fprintf(&b, " role=%s", n.Role)
		}
		b.WriteString("]\n")
		if len(n.Body) > 0 {
			b.Write(n.Body)
			b.WriteString("\n")
		}
	})
	return b.Bytes()
}

func TestGoldenRichInstance(t *testing.T) {
	tree := Build(richInstance(t))
	for _, version := range []string{"latest", "2021-01-03", "2016-09-02", "2009-04-04", "2008-09-01", "1.0"} {
		t.Run("version_"+version+"_matches_golden_dump", func(t *testing.T) {
			got := dump(t, tree, version)
			golden := filepath.Join("testdata", "rich-"+version+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("dump differs from %s (run go test -update and review the diff):\n%s", golden, firstDiff(got, want))
			}
		})
	}
}

// firstDiff shows the first differing line of two dumps.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got: %q\nwant: %q", i+1, gl, wl)
		}
	}
	return "(same lines)"
}
