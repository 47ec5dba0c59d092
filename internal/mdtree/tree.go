// Package mdtree renders an imds.Instance into the EC2 instance metadata tree:
// the listings, leaves and JSON documents a guest sees under /<version>/.
//
// Everything that depends only on the instance is rendered once, in Build, so
// the data plane answers a "latest" request with a map lookup and a write of
// bytes it already holds. Bodies that change while the instance runs (role
// and identity credentials, iam/info, the identity signatures) are returned
// as a Kind for the data plane to fill in; the JSON helpers here give them
// EC2's exact layout. Dated versions are answered by walking the same tree
// and hiding the categories newer than the version, so a client pinned to an
// old build (cloud-init uses 2009-04-04 as a fallback) sees what EC2 shows it.
//
// Where EC2 (docs/behaviour.md) leaves a question open, the tree
// makes these choices:
//   - metrics/vhostmd answers an XML declaration only;
//   - dynamic/instance-identity/ lists rsa2048, pkcs7, document and signature
//     in the UG order, without dsa2048, whose body frontdesk cannot produce;
//   - tags/ appears only when InstanceMetadataTags is enabled and the
//     instance has at least one tag (never an empty listing);
//   - events/maintenance/{scheduled,history} are always "[]" or an array in
//     the UG layout (without the example's stray trailing spaces);
//   - spot/termination-time is served with spot/instance-action whatever the
//     action is;
//   - profile has no documented first build and shows in every version;
//     network-card first shows in 2020-11-01 (UG: network-card-index) and
//     ipv4-prefix/ipv6-prefix in 2021-07-15;
//   - empty required fields (instance-action, instance-life-cycle,
//     fws/instance-monitoring, ami-manifest-path) default to "none",
//     "on-demand", "disabled" and "(unknown)"; any other empty value makes
//     its leaf absent.
//
// The package does no I/O and keeps no state beyond the Trees it returns.
package mdtree

import (
	"strconv"
	"strings"
)

// Kind says how the data plane answers a node.
type Kind uint8

// Node kinds. Static, Listing and UserData carry their body; the others are
// rendered per request because they depend on credentials or keys.
const (
	Static                  Kind = iota // Body is the answer (text/plain)
	Listing                             // Body is the directory listing for the requested version (text/plain)
	UserData                            // Body is the raw user data (application/octet-stream)
	RoleInfo                            // iam/info: render with IAMInfoJSON; Role is set
	RoleCredentials                     // iam/security-credentials/<Role>: render with CredentialsJSON
	IdentityCredentialsInfo             // identity-credentials/ec2/info: render with IdentityCredentialsInfoJSON
	IdentityCredentials                 // identity-credentials/ec2/security-credentials/ec2-instance
	IdentitySignature                   // dynamic/instance-identity/signature over Tree.Document()
	IdentityPKCS7                       // dynamic/instance-identity/pkcs7 over Tree.Document()
	IdentityRSA2048                     // dynamic/instance-identity/rsa2048 over Tree.Document()
)

// String names the kind, for logs and test output.
func (k Kind) String() string {
	switch k {
	case Static:
		return "Static"
	case Listing:
		return "Listing"
	case UserData:
		return "UserData"
	case RoleInfo:
		return "RoleInfo"
	case RoleCredentials:
		return "RoleCredentials"
	case IdentityCredentialsInfo:
		return "IdentityCredentialsInfo"
	case IdentityCredentials:
		return "IdentityCredentials"
	case IdentitySignature:
		return "IdentitySignature"
	case IdentityPKCS7:
		return "IdentityPKCS7"
	case IdentityRSA2048:
		return "IdentityRSA2048"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Node is the answer for one path. Body is shared with the Tree and must not
// be modified.
type Node struct {
	Kind Kind
	Body []byte
	// Role is the IAM role name, set on RoleInfo and RoleCredentials nodes.
	Role string
}

// Tree is the rendered metadata of one instance. It is immutable once Build
// returns and safe for concurrent use.
type Tree struct {
	root   *entry
	latest map[string]Node // "latest" answers, keyed by path without trailing "/"
	doc    []byte
}

// entry is one node of the tree as EC2 shows it in "latest", annotated with
// the first build that has it.
type entry struct {
	name string
	// label is the entry's line in its parent's listing: usually the name,
	// with "/" for directories; "0=key-name" for a public key.
	label    string
	since    string
	dir      bool
	children []*entry // listing order; only for directories
	listing  []byte   // the "latest" listing; only for directories
	node     Node     // only for leaves
	// legacy, when set, replaces node.Body before multiValueSince.
	legacy []byte
}

// Lookup finds the node for an already-normalised path below version: no
// leading slash, "//" already collapsed, no "." or ".." segments. "" is the
// version root. A trailing "/" is accepted on leaves and directories alike.
// ok=false means 404, including for an unknown version.
//
// For "latest" Lookup does not allocate. For dated versions it walks the tree
// and may allocate a filtered listing.
func (t *Tree) Lookup(version, path string) (Node, bool) {
	path = strings.TrimSuffix(path, "/")
	if version == Latest {
		n, ok := t.latest[path]
		return n, ok
	}
	if !KnownVersion(version) {
		return Node{}, false
	}
	e := t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		e = e.child(seg, version)
		if e == nil {
			return Node{}, false
		}
	}
	if !e.dir {
		n := e.node
		if e.legacy != nil && version < multiValueSince {
			n.Body = e.legacy
		}
		return n, true
	}
	return Node{Kind: Listing, Body: e.listingFor(version)}, true
}

// Document is the instance identity document exactly as served at
// dynamic/instance-identity/document; the signatures cover these bytes.
func (t *Tree) Document() []byte { return t.doc }

// child returns the child named seg that exists in version v.
func (e *entry) child(seg, v string) *entry {
	for _, c := range e.children {
		if c.name == seg && visible(c.since, v) {
			return c
		}
	}
	return nil
}

// listingFor returns e's listing as version v shows it.
func (e *entry) listingFor(v string) []byte {
	n := 0
	for _, c := range e.children {
		if visible(c.since, v) {
			n++
		}
	}
	if n == len(e.children) {
		return e.listing
	}
	var b []byte
	for _, c := range e.children {
		if visible(c.since, v) {
			b = appendListingLine(b, c)
		}
	}
	return b
}

// appendListingLine adds c's line to a listing.
func appendListingLine(b []byte, c *entry) []byte {
	if len(b) > 0 {
		b = append(b, '\n')
	}
	return append(b, c.label...)
}
