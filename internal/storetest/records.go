package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// The typed records built on the store: instances, the address index, account defaults and secrets.

func (s suite) instanceRoundTrip(t *testing.T) {
	st := s.store(t)
	in := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	err := st.View(t.Context(), func(tx imds.Tx) error {
		got, err := imds.GetInstance(tx, in.InstanceID)
		if err != nil {
			return err
		}
		if got.InstanceID != in.InstanceID || !slices.Equal(got.Addresses(), in.Addresses()) || got.MetadataOptions != in.MetadataOptions || !got.LaunchTime.Equal(in.LaunchTime) {
			return fmt.Errorf("GetInstance = %+v, want %+v", got, in)
		}
		for _, a := range []string{"192.0.2.10", "2001:db8::10", "::ffff:192.0.2.10"} {
			id, err := imds.InstanceIDByAddress(tx, a)
			if err != nil || id != in.InstanceID {
				return fmt.Errorf("InstanceIDByAddress(%s) = %q, %v; want %s", a, id, err, in.InstanceID)
			}
		}
		if _, err := imds.InstanceIDByAddress(tx, "192.0.2.11"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("InstanceIDByAddress(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := imds.GetInstance(tx, "i-00000000000000999"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetInstance(unknown) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An invalid instance is refused and writes nothing.
	bad := NewInstance(t, 2, "192.0.2.20")
	bad.AccountID = "12"
	before := revision(t, st)
	err = st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, bad) })
	if !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutInstance(invalid) = %v, want ErrInvalid", err)
	}
	if r := revision(t, st); r != before {
		t.Fatalf("refused PutInstance moved the revision %d -> %d", before, r)
	}
}

func (s suite) addressInUse(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	before := revision(t, st)
	for _, addr := range []string{"192.0.2.10", "2001:db8::10"} {
		b := NewInstance(t, 2, "192.0.2.99", addr)
		err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
		if !errors.Is(err, imds.ErrAddressInUse) {
			t.Fatalf("second live instance on %s: %v, want ErrAddressInUse", addr, err)
		}
		if _, ok := get(t, st, imds.InstanceKey(b.InstanceID)); ok {
			t.Fatalf("refused instance on %s was written", addr)
		}
		if id := ownerOf(t, st, "192.0.2.99"); id != "" {
			t.Fatalf("refused instance claimed 192.0.2.99 (owner %s)", id)
		}
	}
	if r := revision(t, st); r != before {
		t.Fatalf("refused PutInstance moved the revision %d -> %d", before, r)
	}
	// Rewriting the holder itself is fine.
	a.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	// A stopped instance is still live and keeps its address.
	a.State = imds.StateStopped
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	b := NewInstance(t, 2, "192.0.2.10")
	err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
	if !errors.Is(err, imds.ErrAddressInUse) {
		t.Fatalf("instance on a stopped instance's address: %v, want ErrAddressInUse", err)
	}
}

func (s suite) terminatedReleases(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	a.State = imds.StateTerminated
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	if id := ownerOf(t, st, "192.0.2.10"); id != "" {
		t.Fatalf("terminated instance still holds 192.0.2.10 (owner %s)", id)
	}
	if _, ok := get(t, st, imds.InstanceKey(a.InstanceID)); !ok {
		t.Fatal("terminated instance was removed; it must stay listed")
	}
	b := NewInstance(t, 2, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
	if id := ownerOf(t, st, "2001:db8::10"); id != b.InstanceID {
		t.Fatalf("owner of 2001:db8::10 = %q, want the new instance %s", id, b.InstanceID)
	}
	// Rewriting the terminated instance does not steal the address back.
	a.Generation++
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	if id := ownerOf(t, st, "192.0.2.10"); id != b.InstanceID {
		t.Fatalf("owner of 192.0.2.10 = %q after rewriting the terminated instance, want %s", id, b.InstanceID)
	}
}

func (s suite) deleteReleases(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "2001:db8::10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.DeleteInstance(tx, a.InstanceID) })
	if id := ownerOf(t, st, "192.0.2.10"); id != "" {
		t.Fatalf("deleted instance still holds 192.0.2.10 (owner %s)", id)
	}
	if _, ok := get(t, st, imds.InstanceKey(a.InstanceID)); ok {
		t.Fatal("deleted instance is still stored")
	}
	err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.DeleteInstance(tx, a.InstanceID) })
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("deleting a missing instance = %v, want ErrNotFound", err)
	}
	b := NewInstance(t, 2, "192.0.2.10")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, b) })
}

func (s suite) addressChange(t *testing.T) {
	st := s.store(t)
	a := NewInstance(t, 1, "192.0.2.10", "192.0.2.11")
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	a.NetworkInterfaces[0].PrivateIPv4s = []string{"192.0.2.11", "192.0.2.12"}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, a) })
	for addr, want := range map[string]string{"192.0.2.10": "", "192.0.2.11": a.InstanceID, "192.0.2.12": a.InstanceID} {
		if got := ownerOf(t, st, addr); got != want {
			t.Errorf("owner of %s = %q, want %q", addr, got, want)
		}
	}
}

func (s suite) listInstances(t *testing.T) {
	st := s.store(t)
	for _, n := range []int{3, 1, 2} {
		in := NewInstance(t, n, fmt.Sprintf("192.0.2.%d", n))
		if n == 2 {
			in.State = imds.StateTerminated
		}
		mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutInstance(tx, in) })
	}
	mustPut(t, st, "instancesX", "not an instance") // shares a textual prefix
	var ids []string
	err := st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			ids = append(ids, in.InstanceID)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	want := []string{NewInstance(t, 1).InstanceID, NewInstance(t, 2).InstanceID, NewInstance(t, 3).InstanceID}
	if !slices.Equal(ids, want) {
		t.Fatalf("ListInstances = %q, want %q (terminated included, id order)", ids, want)
	}
}

func (s suite) defaults(t *testing.T) {
	st := s.store(t)
	err := st.View(t.Context(), func(tx imds.Tx) error {
		d, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		if d != imds.DefaultAccountDefaults() {
			return fmt.Errorf("GetDefaults on an empty store = %+v, want %+v", d, imds.DefaultAccountDefaults())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := imds.DefaultAccountDefaults()
	want.HttpTokens = imds.Required
	want.HttpPutResponseHopLimit = 2
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutDefaults(tx, want) })
	err = st.View(t.Context(), func(tx imds.Tx) error {
		d, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		if d != want {
			return fmt.Errorf("GetDefaults = %+v, want %+v", d, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := want
	bad.HttpTokens = "sometimes"
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutDefaults(tx, bad) }); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("PutDefaults(invalid) = %v, want ErrInvalid", err)
	}
}

func (s suite) secrets(t *testing.T) {
	st := s.store(t)
	secret := []byte{0, 1, 2, 0xff, 'k'}
	mustUpdate(t, st, func(tx imds.Tx) error { return imds.PutSecret(tx, "keyring", secret) })
	var got []byte
	err := st.View(t.Context(), func(tx imds.Tx) error {
		var err error
		got, err = imds.GetSecret(tx, "keyring")
		if err != nil {
			return err
		}
		if _, err := imds.GetSecret(tx, "other"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetSecret(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("GetSecret = %x, want %x", got, secret)
	}
}
