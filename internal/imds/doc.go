// Package imds holds frontdesk's domain: the Instance and everything the
// metadata tree is rendered from, the metadata options and their account-level
// defaults with EC2's precedence rules, and the Store that keeps them.
//
// The Store is a small transactional key-value interface; the typed record
// functions in this package (GetInstance, PutInstance, ...) are the only code
// that knows the key layout and the address index, so every backend (memory,
// bolt, etcd) stays a thin adapter and passes one shared suite (storetest).
package imds
