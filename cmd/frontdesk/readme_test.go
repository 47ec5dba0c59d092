package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every frontdesk command line in the README's shell examples names a real
// subcommand and only flags that subcommand defines, so that an example
// copied verbatim does not fail on a renamed or removed flag.
func TestREADMECommandsAreValid(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(string(b))
	if len(cmds) < 10 {
		t.Fatalf("found only %d frontdesk commands in the README: the extraction is broken", len(cmds))
	}
	groupCache := map[string]bool{}
	isGroup := func(name string) bool {
		g, ok := groupCache[name]
		if !ok {
			g = len(groupCommands(name)) > 0 || name == "identity"
			groupCache[name] = g
		}
		return g
	}
	flagsOf := map[string]map[string]bool{}
	for _, words := range cmds {
		path := []string{words[0]}
		rest := words[1:]
		for len(rest) > 0 && isGroup(strings.Join(path, " ")) && !strings.HasPrefix(rest[0], "-") {
			alt, _, _ := strings.Cut(rest[0], "|") // "complete|cancel" in a synopsis
			path, rest = append(path, alt), rest[1:]
		}
		name := strings.Join(path, " ")
		flags, ok := flagsOf[name]
		if !ok {
			r := cliRunNoT(append(append([]string{}, path...), "--help"))
			if r.err != nil {
				t.Errorf("README: frontdesk %s: not a command (%v)", name, r.err)
				flagsOf[name] = nil
				continue
			}
			flags = map[string]bool{"h": true, "help": true}
			for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(r.stdout, -1) {
				flags[m[1]] = true
			}
			flagsOf[name] = flags
		}
		if flags == nil {
			continue
		}
		for _, w := range rest {
			if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
				continue
			}
			f, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f, _, _ = strings.Cut(f, "|")
			if !flags[f] {
				t.Errorf("README: frontdesk %s has no flag %s (in: frontdesk %s)", name, w, strings.Join(words, " "))
			}
		}
	}
}

var subcommandWord = regexp.MustCompile(`^[a-z][a-z-]*$`)

// readmeCommands returns the words of every frontdesk invocation in the
// README's sh code blocks, continuation lines joined and comments cut.
func readmeCommands(readme string) [][]string {
	var out [][]string
	inFence, inBlock := false, false
	var pending string
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			inBlock = inFence && (line == "```" || strings.HasPrefix(line, "```sh"))
			pending = ""
			continue
		}
		if !inBlock {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line = pending + line
		pending = ""
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		for _, seg := range regexp.MustCompile(`\||&&|;|\$\(`).Split(line, -1) {
			words := strings.Fields(strings.NewReplacer("[", " ", "]", " ", "...", " ").Replace(seg))
			for i, w := range words {
				if (w == "frontdesk" || strings.HasSuffix(w, "./cmd/frontdesk")) && i+1 < len(words) && subcommandWord.MatchString(words[i+1]) {
					out = append(out, words[i+1:])
					break
				}
			}
		}
	}
	return out
}
