package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// The key layout. Only this file knows it.
//
// Instance records are laid out by placement, so that a node follows only
// the key range of its host:
//
//	placed/<host>/<id>     the instance record (<host> is the escaped
//	                       Placement.HostID; empty for an unplaced instance)
//	instance-host/<id>     <host> of the record: GetInstance by id is two
//	                       reads, and the key marks that the id exists
//	instances/<id>         the previous layout's record; MigrateLayout
//	                       moves these, and the accessors still read them
const (
	placedPrefix         = "placed/"
	hostIndexPrefix      = "instance-host/"
	legacyInstancePrefix = "instances/"
	addressPrefix        = "addresses/"
	defaultsKey          = "defaults/account"
	secretPrefix         = "secrets/"
	leasePrefix          = "leases/"
)

// LeaseKey returns the store key of a named lease: a record that one node
// of a fleet holds for a while to do a job alone (the retention purge).
func LeaseKey(name string) string { return leasePrefix + name }

// hostSegment encodes a host id as one key segment: host ids may hold
// slashes. The empty host (an unplaced instance) is the empty segment,
// which no escaped host id is.
func hostSegment(hostID string) string { return url.PathEscape(hostID) }

func placedKey(segment, id string) string { return placedPrefix + segment + "/" + id }

// InstanceKey returns the key that marks that an instance with this id is
// stored (its entry in the id index); it exists exactly while the instance
// does. The record itself lies in its host's range (see HostPrefix).
func InstanceKey(id string) string { return hostIndexPrefix + id }

// IsInstanceKey reports whether key holds an instance record (in either
// layout), and returns its id.
func IsInstanceKey(key string) (string, bool) {
	if rest, ok := strings.CutPrefix(key, placedPrefix); ok {
		_, id, ok := strings.Cut(rest, "/")
		return id, ok && id != ""
	}
	id, ok := strings.CutPrefix(key, legacyInstancePrefix)
	return id, ok
}

// HostPrefix is the key range of the instances placed on hostID; "" is the
// range of every instance record.
func HostPrefix(hostID string) string {
	if hostID == "" {
		return placedPrefix
	}
	return placedPrefix + hostSegment(hostID) + "/"
}

// NodePrefixes are the key ranges a data-plane node follows: the instances
// it serves (those placed on hostID, or all of them when hostID is empty)
// and the shared secrets (token key ring, signing keys). Their size follows
// the node's own instances, not the fleet's.
func NodePrefixes(hostID string) []string {
	return []string{HostPrefix(hostID), secretPrefix}
}

// IsSecretKey reports whether key holds a named secret, and returns the name.
func IsSecretKey(key string) (string, bool) { return strings.CutPrefix(key, secretPrefix) }

// IsDefaultsKey reports whether key holds the account defaults.
func IsDefaultsKey(key string) bool { return key == defaultsKey }

// SecretKey returns the store key of a named secret (key ring, signing keys,
// admin credentials).
func SecretKey(name string) string { return secretPrefix + name }

// DecodeInstance decodes a stored instance value.
func DecodeInstance(b []byte) (*Instance, error) {
	var in Instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode instance: %w", err)
	}
	return &in, nil
}

// recordKey finds where an instance's record is: its host range (indexed),
// or the previous layout. Errors: ErrNotFound.
func recordKey(tx Tx, id string) (key string, indexed bool, err error) {
	seg, err := tx.Get(hostIndexPrefix + id)
	switch {
	case err == nil:
		return placedKey(string(seg), id), true, nil
	case !errors.Is(err, ErrNotFound):
		return "", false, err
	}
	if _, err := tx.Get(legacyInstancePrefix + id); err != nil {
		return "", false, err
	}
	return legacyInstancePrefix + id, false, nil
}

// GetInstance reads an instance. Errors: ErrNotFound.
func GetInstance(tx Tx, id string) (*Instance, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("instance %q: %w", id, ErrNotFound)
	}
	key, _, err := recordKey(tx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	b, err := tx.Get(key)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", id, err)
	}
	return DecodeInstance(b)
}

// ListInstances calls fn for every stored instance (terminated ones too), in
// id order.
func ListInstances(tx Tx, fn func(*Instance) error) error {
	var all []*Instance
	collect := func(_ string, v []byte) error {
		in, err := DecodeInstance(v)
		if err != nil {
			return err
		}
		all = append(all, in)
		return nil
	}
	if err := tx.Scan(placedPrefix, collect); err != nil {
		return err
	}
	if err := tx.Scan(legacyInstancePrefix, collect); err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b *Instance) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	for _, in := range all {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// ScanInstanceValues calls fn with the stored value of every instance, in id
// order, undecoded: for a reader that needs a few fields of a large fleet
// (the console's instance list) and decodes them into a smaller struct.
func ScanInstanceValues(tx Tx, fn func(value []byte) error) error {
	// The records lie by host (records.go), so they are put in id order
	// here; values are copied, as a Tx's may not outlive its callback.
	type record struct {
		id    string
		value []byte
	}
	var all []record
	collect := func(k string, v []byte) error {
		if id, ok := IsInstanceKey(k); ok {
			all = append(all, record{id, append([]byte(nil), v...)})
		}
		return nil
	}
	if err := tx.Scan(placedPrefix, collect); err != nil {
		return err
	}
	if err := tx.Scan(legacyInstancePrefix, collect); err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b record) int { return strings.Compare(a.id, b.id) })
	for _, r := range all {
		if err := fn(r.value); err != nil {
			return err
		}
	}
	return nil
}

// ListHostInstances calls fn for every instance placed on hostID (terminated
// ones too), reading only that host's range.
func ListHostInstances(tx Tx, hostID string, fn func(*Instance) error) error {
	return tx.Scan(HostPrefix(hostID), func(_ string, v []byte) error {
		in, err := DecodeInstance(v)
		if err != nil {
			return err
		}
		if in.Placement.HostID != hostID {
			return nil // HostPrefix("") is every host's range
		}
		return fn(in)
	})
}

// InstanceIDByAddress returns the id of the live instance holding addr.
// Errors: ErrNotFound.
func InstanceIDByAddress(tx Tx, addr string) (string, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%w: address %q", ErrInvalid, addr)
	}
	b, err := tx.Get(addressPrefix + a.Unmap().String())
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// PutInstance validates and writes an instance and keeps the address index
// in step: a live instance holds each of its addresses; a terminated one
// holds none. Errors: ErrInvalid, ErrAddressInUse.
func PutInstance(tx Tx, in *Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}

	old, err := GetInstance(tx, in.InstanceID)
	switch {
	case errors.Is(err, ErrNotFound):
		old = nil
	case err != nil:
		return err
	}
	var oldAddrs, newAddrs []string
	if old != nil && old.Live() {
		oldAddrs = canonicalAddrs(old.Addresses())
	}
	if in.Live() {
		newAddrs = canonicalAddrs(in.Addresses())
	}
	keep := make(map[string]bool, len(newAddrs))
	for _, a := range newAddrs {
		keep[a] = true
	}
	for _, a := range oldAddrs {
		if !keep[a] {
			if err := tx.Delete(addressPrefix + a); err != nil {
				return err
			}
		}
	}
	for _, a := range newAddrs {
		owner, err := tx.Get(addressPrefix + a)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case string(owner) != in.InstanceID:
			return fmt.Errorf("%w: %s belongs to %s", ErrAddressInUse, a, owner)
		}
		if err := tx.Put(addressPrefix+a, []byte(in.InstanceID)); err != nil {
			return err
		}
	}
	b, err := encodeInstance(in)
	if err != nil {
		return err
	}
	return placeRecord(tx, in.InstanceID, hostSegment(in.Placement.HostID), b)
}

func encodeInstance(in *Instance) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode instance: %w", err)
	}
	return b, nil
}

// placeRecord writes an instance record into its host's range, and, when
// the host changed (a move) or the record is in the previous layout, removes
// the old record and updates the index, all in the caller's transaction.
func placeRecord(tx Tx, id, segment string, record []byte) error {
	oldKey, indexed, err := recordKey(tx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		oldKey = ""
	case err != nil:
		return err
	}
	newKey := placedKey(segment, id)
	if oldKey != "" && oldKey != newKey {
		if err := tx.Delete(oldKey); err != nil {
			return err
		}
	}
	if !indexed || oldKey != newKey {
		if err := tx.Put(hostIndexPrefix+id, []byte(segment)); err != nil {
			return err
		}
	}
	return tx.Put(newKey, record)
}

// DeleteInstance removes an instance and releases its addresses.
func DeleteInstance(tx Tx, id string) error {
	old, err := GetInstance(tx, id)
	if err != nil {
		return err
	}
	if old.Live() {
		for _, a := range canonicalAddrs(old.Addresses()) {
			if err := tx.Delete(addressPrefix + a); err != nil {
				return err
			}
		}
	}
	key, indexed, err := recordKey(tx, id)
	if err != nil {
		return err
	}
	if indexed {
		if err := tx.Delete(hostIndexPrefix + id); err != nil {
			return err
		}
	}
	return tx.Delete(key)
}

// GetDefaults reads the account defaults; a new store has no preference.
func GetDefaults(tx Tx) (AccountDefaults, error) {
	b, err := tx.Get(defaultsKey)
	if errors.Is(err, ErrNotFound) {
		return DefaultAccountDefaults(), nil
	}
	if err != nil {
		return AccountDefaults{}, err
	}
	return DecodeDefaults(b)
}

// DecodeDefaults decodes stored account defaults.
func DecodeDefaults(b []byte) (AccountDefaults, error) {
	var d AccountDefaults
	if err := json.Unmarshal(b, &d); err != nil {
		return AccountDefaults{}, fmt.Errorf("decode account defaults: %w", err)
	}
	return d, nil
}

// PutDefaults validates and writes the account defaults.
func PutDefaults(tx Tx, d AccountDefaults) error {
	if err := d.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Put(defaultsKey, b)
}

// GetSecret reads a named secret. Errors: ErrNotFound.
func GetSecret(tx Tx, name string) ([]byte, error) {
	b, err := tx.Get(SecretKey(name))
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return append([]byte(nil), b...), nil
}

// PutSecret writes a named secret.
func PutSecret(tx Tx, name string, value []byte) error {
	return tx.Put(SecretKey(name), value)
}

func canonicalAddrs(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap().String())
		}
	}
	return out
}
