package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The key layout. Only this file knows it.
const (
	instancePrefix = "instances/"
	addressPrefix  = "addresses/"
	defaultsKey    = "defaults/account"
	secretPrefix   = "secrets/"
	leasePrefix    = "leases/"
)

// LeaseKey returns the store key of a named lease: a record that one node
// of a fleet holds for a while to do a job alone (the retention purge).
func LeaseKey(name string) string { return leasePrefix + name }

// InstanceKey returns the store key of an instance.
func InstanceKey(id string) string { return instancePrefix + id }

// IsInstanceKey reports whether key holds an instance, and returns its id.
func IsInstanceKey(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, instancePrefix)
	return id, ok
}

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

// GetInstance reads an instance. Errors: ErrNotFound.
func GetInstance(tx Tx, id string) (*Instance, error) {
	b, err := tx.Get(InstanceKey(id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	return DecodeInstance(b)
}

// ListInstances calls fn for every stored instance (terminated ones too), in
// id order.
func ListInstances(tx Tx, fn func(*Instance) error) error {
	return tx.Scan(instancePrefix, func(_ string, v []byte) error {
		in, err := DecodeInstance(v)
		if err != nil {
			return err
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
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode instance: %w", err)
	}
	return tx.Put(InstanceKey(in.InstanceID), b)
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
	return tx.Delete(InstanceKey(id))
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
