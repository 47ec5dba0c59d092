package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// ChangeRecorder returns a function for controlplane.Options.OnChange that
// keeps every committed control-plane change (from the console, the EC2 API
// or any caller of the action layer) in the store's audit trail, which the
// console's audit page lists. A failure to record is logged: the change
// itself has already committed.
func ChangeRecorder(store imds.Store, now func() time.Time, log *slog.Logger) func(principal, action string, instanceIDs []string, detail map[string]string) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(principal, action string, instanceIDs []string, detail map[string]string) {
		var n [6]byte
		_, _ = rand.Read(n[:])
		rec := imds.ChangeRecord{At: now().UTC(), Principal: principal, Action: action,
			InstanceIDs: slices.Clone(instanceIDs), Detail: maps.Clone(detail)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := store.Update(ctx, func(tx imds.Tx) error { return imds.PutChange(tx, rec, hex.EncodeToString(n[:])) }); err != nil {
			log.Error("recording a change in the audit trail failed", "action", action, "principal", principal, "err", err)
		}
	}
}
