package memstore_test

import (
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/memstore"
	"github.com/frontdesk-imds/frontdesk/internal/storetest"
)

// memstore keeps the feed's default history of 1024 batches.
const history = 1024

func TestStore(t *testing.T) {
	storetest.RunWith(t, func(*testing.T) imds.Store { return memstore.New() }, storetest.Options{
		Compact: storetest.WritePast(history),
	})
}
