// Package dataplane answers guests at 169.254.169.254 (and the IPv6
// endpoint) as EC2's Instance Metadata Service does; docs/behaviour.md in the
// repository describes every answer.
//
// A caller is identified by its source address alone, looked up in an
// immutable Snapshot of the served instances that a Follower keeps in step
// with the store and swaps atomically: a request never waits for the store,
// and when the store goes away the last snapshot keeps being served
// (fail-static). Trees are rendered by internal/mdtree on an instance's first
// request and kept in a bounded TreeCache. The package also holds the
// per-instance rate limits and connection caps (Guard), the hop limit of
// token answers and a Probe of the store's health.
//
// The data plane reads the store only through the imds.Store interface and
// never links a storage library (internal/archtest checks it).
package dataplane
