// Package archtest holds no code: its tests check the repository's
// architecture rules (docs/architecture.md). Every package has a package doc
// comment; the data plane never links a storage library; the domain never
// imports a transport; and no file points outside the repository.
package archtest
