package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// keyPair returns a valid key pair record called name.
func keyPair(name, id string) *imds.KeyPair {
	return &imds.KeyPair{
		KeyPairID:   id,
		Name:        name,
		Type:        imds.KeyTypeED25519,
		Fingerprint: "+z0Cc44p8cP0pgqFtKUj5nrFZ/GWiw2Bky3BE7NUIaU=",
		PublicKey:   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDlVni0Ou36qkEgpdQqOZN22nNjcBT70DaWW+CUAFC/ " + name,
		Created:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Tags:        []imds.Tag{{Key: "team", Value: "infra"}},
	}
}

// keyPairs: key pairs round-trip by name, a second one of the same name is
// refused without writing, an invalid one is refused, they list in name
// order, and deleting one (or a missing one) leaves the others.
func (s suite) keyPairs(t *testing.T) {
	st := s.store(t)
	mustUpdate(t, st, func(tx imds.Tx) error {
		for i, n := range []string{"web", "ops", "ci"} {
			if err := imds.CreateKeyPair(tx, keyPair(n, fmt.Sprintf("key-%017x", i+1))); err != nil {
				return err
			}
		}
		return nil
	})
	rev := revision(t, st)
	err := st.Update(t.Context(), func(tx imds.Tx) error {
		return imds.CreateKeyPair(tx, keyPair("ops", "key-0000000000000000f"))
	})
	if !errors.Is(err, imds.ErrKeyPairExists) {
		t.Fatalf("second key pair named ops: %v, want ErrKeyPairExists", err)
	}
	bad := keyPair("bad", "key-1")
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.CreateKeyPair(tx, bad) }); !errors.Is(err, imds.ErrInvalid) {
		t.Fatalf("key pair with a bad id: %v, want ErrInvalid", err)
	}
	if got := revision(t, st); got != rev {
		t.Fatalf("refused key pairs moved the revision from %d to %d", rev, got)
	}
	err = st.View(t.Context(), func(tx imds.Tx) error {
		got, err := imds.GetKeyPair(tx, "ops")
		if err != nil {
			return err
		}
		want := keyPair("ops", "key-00000000000000002")
		if got.KeyPairID != want.KeyPairID || got.PublicKey != want.PublicKey || !got.Created.Equal(want.Created) || len(got.Tags) != 1 {
			return fmt.Errorf("GetKeyPair(ops) = %+v", got)
		}
		if _, err := imds.GetKeyPair(tx, "nope"); !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("GetKeyPair(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, st, func(tx imds.Tx) error {
		if err := imds.DeleteKeyPair(tx, "web"); err != nil {
			return err
		}
		return imds.DeleteKeyPair(tx, "never-was")
	})
	var names []string
	err = st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ListKeyPairs(tx, func(k *imds.KeyPair) error { names = append(names, k.Name); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[ci ops]" {
		t.Fatalf("ListKeyPairs = %v, want [ci ops]", names)
	}
}
