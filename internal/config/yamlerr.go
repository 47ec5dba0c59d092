package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// syntaxError reports a YAML syntax error at the line that breaks the
// document. yaml.v3 names the line where the enclosing block started (a
// mis-indented key on line 4 is "line 1: did not find expected key"), so
// the first line whose addition makes the document unparseable is found
// by parsing ever longer prefixes: configuration files are short.
func syntaxError(err error, doc []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	lines := bytes.SplitAfter(doc, []byte("\n"))
	for n := 1; n <= len(lines); n++ {
		var node yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &node) != nil {
			what := lineNumber.ReplaceAllString(msg, "")
			return fmt.Errorf("line %d: %s (is it indented like the lines around it?): %s", n, what, strings.TrimSpace(string(lines[n-1])))
		}
	}
	return errors.New(msg)
}

var lineNumber = regexp.MustCompile(`^line \d+: `)

// typeMessage rewrites "line 4: cannot unmarshal !!str `6 hours` into
// time.Duration" as "line 4: lifetime: "6 hours" is not a duration (e.g.
// 6h, 90m)", naming the key from the document's line.
var cannotUnmarshal = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ `(.*)` into (\\S+)$")

func typeMessage(m string, doc []byte) string {
	f := cannotUnmarshal.FindStringSubmatch(m)
	if f == nil {
		return m
	}
	n, _ := strconv.Atoi(f[1])
	key := ""
	if lines := strings.Split(string(doc), "\n"); n >= 1 && n <= len(lines) {
		if k, _, ok := strings.Cut(strings.TrimSpace(lines[n-1]), ":"); ok {
			key = strings.TrimPrefix(k, "- ") + ": "
		}
	}
	want := map[string]string{
		"time.Duration": "a duration (e.g. 6h, 90m, 45s)",
		"bool":          "true or false",
		"int":           "a whole number",
		"string":        "a string",
	}[f[3]]
	if want == "" {
		want = "of type " + f[3]
	}
	return fmt.Sprintf("line %s: %s%q is not %s", f[1], key, f[2], want)
}
