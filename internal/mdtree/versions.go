package mdtree

import "strings"

// rootListing is the body of GET "/" on a current instance (as captured
// on one in 2024; docs/behaviour.md, "The tree"): every dated build, oldest first, then "latest". It is a constant
// rather than a slice so that no caller can change the list.
const rootListing = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n" +
	"2008-02-01\n2008-09-01\n2009-04-04\n2011-01-01\n2011-05-01\n2012-01-12\n" +
	"2014-02-25\n2014-11-05\n2015-10-20\n2016-04-19\n2016-06-30\n2016-09-02\n" +
	"2018-03-28\n2018-08-17\n2018-09-24\n2019-10-01\n2020-10-27\n2021-01-03\n" +
	"2021-03-23\n2021-07-15\n2022-07-09\n2022-09-24\n2024-04-11\nlatest"

// Latest is the version name that always shows every category.
const Latest = "latest"

// multiValueSince is the first build in which local-ipv4s and ipv6s list
// every address; older builds show only the first one (cloud-init relies on
// this difference).
const multiValueSince = "2018-09-24"

// Versions returns the API versions listed at "/", oldest first, ending with
// "latest". The slice is new on every call.
func Versions() []string { return strings.Split(rootListing, "\n") }

// RootListing is the body of GET "/": the versions joined by "\n", with no
// trailing newline. The slice is new on every call, so callers may keep it.
func RootListing() []byte { return []byte(rootListing) }

// KnownVersion reports whether v is "latest" or a listed dated version
// (including "1.0"). It does not allocate: the data plane calls it on every
// request.
func KnownVersion(v string) bool {
	if v == "" {
		return false
	}
	rest := rootListing
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if line == v {
			return true
		}
	}
	return false
}

// visible reports whether a category first served in build since exists in
// version v. Version names order correctly as plain strings: "1.0" sorts
// before every "YYYY-MM-DD" date and "latest" after all of them.
func visible(since, v string) bool { return since <= v }
