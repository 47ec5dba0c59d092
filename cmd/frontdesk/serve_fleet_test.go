package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/bolt"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// A store written by a frontdesk that kept every instance in one range
// still loads: serve migrates it to the per-host layout when it opens it.
func TestServeMigratesThePreviousKeyLayout(t *testing.T) {
	dir := t.TempDir()
	const addr = "127.0.0.3"
	in := storetest.NewInstance(t, 7, addr)
	in.Placement.HostID = "node-a"
	st, err := bolt.Open(filepath.Join(dir, "frontdesk.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(t.Context(), func(tx imds.Tx) error { return imds.PutLegacyInstance(tx, in) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, dir)
	if _, ok := d.cliInstances(t)[in.InstanceID]; !ok {
		t.Fatalf("instances list lacks %s written in the previous layout", in.InstanceID)
	}
	if got := d.waitGuest(t, addr, "/latest/meta-data/instance-id", true, 200); got != in.InstanceID {
		t.Fatalf("data plane answered %q, want %s", got, in.InstanceID)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	st, err = bolt.Open(filepath.Join(dir, "frontdesk.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := imds.MigrateLayout(context.Background(), st); err != nil || n != 0 {
		t.Fatalf("after serve, MigrateLayout moved %d (%v); want 0: serve migrated everything", n, err)
	}
	var onA []string
	err = st.View(t.Context(), func(tx imds.Tx) error {
		return imds.ListHostInstances(tx, "node-a", func(got *imds.Instance) error {
			onA = append(onA, got.InstanceID)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(onA) != 1 || onA[0] != in.InstanceID {
		t.Fatalf("node-a's range holds %v, want [%s]", onA, in.InstanceID)
	}
}
