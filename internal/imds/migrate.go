package imds

import (
	"context"
	"fmt"
	"strings"
)

// MigrateBatch is how many instances MigrateLayout moves per transaction:
// each move is a handful of store operations, and etcd bounds the
// operations of one transaction (128 by default).
const MigrateBatch = 16

// MigrateLayout moves every instance record of the previous layout (one
// range for the whole fleet) into its host's range, MigrateBatch instances
// per transaction, and returns how many it moved. Each moved instance is
// whole in one layout or the other at every revision, so readers and
// concurrent migrations (several nodes starting at once) are safe; a store
// already migrated costs one empty range read. Daemons run it when they
// open a store, before they load it.
func MigrateLayout(ctx context.Context, st Store) (int, error) {
	var ids []string
	err := st.View(ctx, func(tx Tx) error {
		ids = ids[:0]
		return tx.Scan(legacyInstancePrefix, func(k string, _ []byte) error {
			ids = append(ids, strings.TrimPrefix(k, legacyInstancePrefix))
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("migrate the key layout: %w", err)
	}
	moved := 0
	for len(ids) > 0 {
		chunk := ids[:min(MigrateBatch, len(ids))]
		ids = ids[len(chunk):]
		n := 0
		err := st.Update(ctx, func(tx Tx) error {
			n = 0
			for _, id := range chunk {
				b, err := tx.Get(legacyInstancePrefix + id)
				if err != nil {
					continue // moved (or deleted) meanwhile
				}
				in, err := DecodeInstance(b)
				if err != nil {
					return fmt.Errorf("instance %s: %w", id, err)
				}
				if err := placeRecord(tx, id, hostSegment(in.Placement.HostID), b); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return moved, fmt.Errorf("migrate the key layout: %w", err)
		}
		moved += n
	}
	return moved, nil
}

// PutLegacyInstance writes an instance in the previous key layout, as an
// older frontdesk did (the record under one fleet-wide range, its addresses
// indexed), for tests of MigrateLayout.
func PutLegacyInstance(tx Tx, in *Instance) error {
	if err := PutInstance(tx, in); err != nil {
		return err
	}
	key, _, err := recordKey(tx, in.InstanceID)
	if err != nil {
		return err
	}
	b, err := encodeInstance(in)
	if err != nil {
		return err
	}
	if err := tx.Delete(key); err != nil {
		return err
	}
	if err := tx.Delete(hostIndexPrefix + in.InstanceID); err != nil {
		return err
	}
	return tx.Put(legacyInstancePrefix+in.InstanceID, b)
}
