package archtest

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/frontdesk-imds/frontdesk"

// pkg is one directory's Go package as its non-test files declare it.
type pkg struct {
	dir     string
	hasDoc  bool
	imports map[string]bool
}

// root is the repository's top directory (where go.mod is).
func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// skipDir reports directories that hold no code of the module.
func skipDir(name string) bool {
	return name == ".git" || name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")
}

// packages parses every non-test Go file of the module (whatever its build
// tags), by import path.
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	top := root(t)
	out := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != top && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, filepath.Dir(path))
		ip := module
		if rel != "." {
			ip += "/" + filepath.ToSlash(rel)
		}
		p := out[ip]
		if p == nil {
			p = &pkg{dir: rel, imports: map[string]bool{}}
			out[ip] = p
		}
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			p.hasDoc = true
		}
		for _, im := range f.Imports {
			v, _ := strconv.Unquote(im.Path.Value)
			p.imports[v] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deps is every import reachable from path: the module's packages
// transitively, and the direct imports of each of them.
func deps(all map[string]*pkg, path string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for im := range all[p].imports {
			if seen[im] {
				continue
			}
			seen[im] = true
			if all[im] != nil {
				walk(im)
			}
		}
	}
	walk(path)
	out := make([]string, 0, len(seen))
	for im := range seen {
		out = append(out, im)
	}
	slices.Sort(out)
	return out
}

func TestEveryPackageHasADocComment(t *testing.T) {
	all := packages(t)
	if len(all) < 10 {
		t.Fatalf("found %d packages: the walk missed the module", len(all))
	}
	for ip, p := range all {
		if !p.hasDoc {
			t.Errorf("%s (%s) has no package doc comment", ip, p.dir)
		}
	}
}

func TestForbiddenImports(t *testing.T) {
	all := packages(t)
	storage := []string{"go.etcd.io/", module + "/internal/bolt", module + "/internal/etcd", module + "/internal/memstore"}
	transport := []string{"net/http", "net/rpc", "google.golang.org/grpc", module + "/internal/dataplane",
		module + "/internal/controlplane", module + "/internal/apiclient"}
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"internal/dataplane", storage, "the data plane never links a storage library"},
		{"internal/mdtree", storage, "the data plane never links a storage library"},
		{"internal/imds", transport, "the domain never imports a transport"},
	}
	for _, r := range rules {
		ip := module + "/" + r.pkg
		if all[ip] == nil {
			t.Errorf("package %s not found", r.pkg)
			continue
		}
		for _, d := range deps(all, ip) {
			for _, f := range r.forbidden {
				if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
					t.Errorf("%s reaches %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
	// Only the stores' own packages import their libraries.
	for ip, p := range all {
		for im := range p.imports {
			if strings.HasPrefix(im, "go.etcd.io/bbolt") && ip != module+"/internal/bolt" {
				t.Errorf("%s imports %s: only internal/bolt may", ip, im)
			}
			if strings.HasPrefix(im, "go.etcd.io/etcd/") && ip != module+"/internal/etcd" && ip != module+"/internal/etcd/etcdtest" {
				t.Errorf("%s imports %s: only internal/etcd may", ip, im)
			}
		}
	}
}

// TestNoFileRefersOutsideTheRepository looks for references to the
// documents that lived beside the repository before docs/ existed.
func TestNoFileRefersOutsideTheRepository(t *testing.T) {
	top := root(t)
	outside := [][]byte{[]byte("../" + "shared"), []byte("/work/" + "shared"), []byte("imds-" + "behaviour.md")}
	n := 0
	err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != top && (d.Name() == ".git" || d.Name() == "out") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 1<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		n++
		for _, o := range outside {
			if bytes.Contains(b, o) {
				rel, _ := filepath.Rel(top, path)
				t.Errorf("%s refers to %s, outside the repository: link into docs/ instead", rel, o)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("read %d files: the walk missed the repository", n)
	}
}
