package controlplane

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// RunInstances idempotency (EC2's ClientToken): the SDKs fill a token in
// every RunInstances and retry with the same token after a transport error,
// so a launch whose answer was lost is answered again instead of failing
// with InvalidIPAddress.InUse or launching twice.
//
// The token's record lives in the store under clientTokenPrefix, written in
// the launch's own transaction, so every node of a fleet honours it and a
// failed launch leaves none. The data plane's follower ignores the prefix.

// clientTokenPrefix is the store key prefix of token records; the key is
// the SHA-256 of the token, so any token is a safe key.
const clientTokenPrefix = "clienttokens/"

// maxClientTokenLen is EC2's limit.
const maxClientTokenLen = 64

// clientTokenTTL is how long a token is honoured. SDK retries come within
// seconds; a day also covers a person re-running a script.
const clientTokenTTL = 24 * time.Hour

// clientTokenSweepMask: a launch whose token hash starts with a zero in
// its first six bits (one in 64) also deletes expired records, so their
// number stays bounded without a timer and without scanning on every launch.
const clientTokenSweepMask = 0xfc

// clientTokenRecord is what a token maps to.
type clientTokenRecord struct {
	// Params is a digest of the request's parameters: the same token with
	// other parameters is IdempotentParameterMismatch.
	Params        string    `json:"params"`
	ReservationID string    `json:"reservationId"`
	InstanceIDs   []string  `json:"instanceIds"`
	Created       time.Time `json:"created"`
}

func clientTokenKey(token string) (string, [32]byte) {
	sum := sha256.Sum256([]byte(token))
	return clientTokenPrefix + hex.EncodeToString(sum[:]), sum
}

// checkClientToken validates a ClientToken as EC2 does: at most 64 ASCII
// characters.
func checkClientToken(token string) error {
	if len(token) > maxClientTokenLen {
		return errInvalid("Invalid value for ClientToken: at most 64 characters.")
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x20 || token[i] > 0x7e {
			return errInvalid("Invalid value for ClientToken: printable ASCII only.")
		}
	}
	return nil
}

// launchDigest summarises every parameter of a RunInstances except the
// token itself and the ones that do not change what is launched.
func launchDigest(p params) string {
	keys := make([]string, 0, len(p.v))
	for k := range p.v {
		switch k {
		case "Action", "Version", "ClientToken", "DryRun":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		// Length-prefixed, so no two parameter sets share an encoding.
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(p.v[k]), p.v[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// getClientToken returns the live record of token, or nil.
func getClientToken(tx imds.Tx, token string, now time.Time) (*clientTokenRecord, error) {
	key, _ := clientTokenKey(token)
	b, err := tx.Get(key)
	if errors.Is(err, imds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec clientTokenRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		// A record this version cannot read is treated as absent: it is
		// overwritten by this launch.
		return nil, nil
	}
	if now.Sub(rec.Created) > clientTokenTTL {
		return nil, nil
	}
	return &rec, nil
}

// putClientToken stores the record of a launch, and now and then deletes
// expired records.
func putClientToken(tx imds.Tx, token string, rec clientTokenRecord) error {
	key, sum := clientTokenKey(token)
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode client token record: %w", err)
	}
	if err := tx.Put(key, b); err != nil {
		return err
	}
	if sum[0]&clientTokenSweepMask != 0 {
		return nil
	}
	return sweepClientTokens(tx, rec.Created)
}

// sweepClientTokens deletes expired records. The range is read without
// guarding it (a launch that sweeps must not conflict with every other
// launch that records a token); each record deleted is read again by key, so
// the commit depends on exactly the records it deletes.
func sweepClientTokens(tx imds.Tx, now time.Time) error {
	expired := func(value []byte) bool {
		var rec clientTokenRecord
		return json.Unmarshal(value, &rec) != nil || now.Sub(rec.Created) > clientTokenTTL
	}
	var candidates []string
	err := imds.ScanUnguarded(tx, clientTokenPrefix, func(key string, value []byte) error {
		if expired(value) {
			candidates = append(candidates, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range candidates {
		v, err := tx.Get(k)
		if errors.Is(err, imds.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !expired(v) {
			continue
		}
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func errIdempotentMismatch() *apiError {
	return newAPIError(http.StatusBadRequest, "IdempotentParameterMismatch",
		"Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
}
