package imds

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key layout of IMDSv1 usage and of the change audit trail (see records.go
// for the rest of the layout).
//
//	usage/<instance id>/<node>   one UsageRecord per instance and node
//	changes/<unix nanoseconds, 20 digits>-<suffix>   one ChangeRecord
//
// Each node writes only its own usage keys, so nodes never contend for a
// key and a reader merges the nodes of an instance; deleting an instance's
// usage touches one key per node, whatever the retention.
const (
	usagePrefix  = "usage/"
	changePrefix = "changes/"
)

// UsageHour counts one hour of an instance's tokenless (IMDSv1) calls as
// seen by one node.
type UsageHour struct {
	// Hour is the hour's start in hours since the Unix epoch.
	Hour int64 `json:"h"`
	// Calls were answered; Rejected were refused because the instance
	// requires tokens.
	Calls    int64 `json:"c,omitempty"`
	Rejected int64 `json:"r,omitempty"`
	// Agents and Paths are the most frequent User-Agents and paths of the
	// hour, at most MaxUsageTop of each, most frequent first.
	Agents []UsageCount `json:"ua,omitempty"`
	Paths  []UsageCount `json:"p,omitempty"`
}

// UsageCount is a User-Agent or path and how many calls carried it.
type UsageCount struct {
	Value string `json:"v"`
	N     int64  `json:"n"`
}

// MaxUsageTop bounds the agents and paths kept per hour, and MaxUsageText
// the bytes kept of each: a record stays small whatever the guests send.
const (
	MaxUsageTop  = 5
	MaxUsageText = 200
)

// UsageCall is one tokenless call, the latest one a node saw.
type UsageCall struct {
	At        time.Time `json:"at"`
	Path      string    `json:"path,omitempty"`
	UserAgent string    `json:"ua,omitempty"`
	Rejected  bool      `json:"rejected,omitempty"`
}

// UsageRecord is one node's IMDSv1 usage of one instance: hourly buckets in
// hour order, oldest first, and the last call.
type UsageRecord struct {
	InstanceID string      `json:"instanceId"`
	Node       string      `json:"node"`
	Hours      []UsageHour `json:"hours"`
	Last       UsageCall   `json:"last"`
	// Since is when this node first recorded a call of the instance
	// (within the retention), so readers know how long usage was observed.
	Since time.Time `json:"since"`
}

// UsageKey returns the store key of one node's usage of an instance.
func UsageKey(instanceID, node string) string {
	return usagePrefix + instanceID + "/" + node
}

func validUsagePart(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/\x00")
}

// GetUsage reads one node's usage record of an instance. Errors:
// ErrNotFound.
func GetUsage(tx Tx, instanceID, node string) (*UsageRecord, error) {
	b, err := tx.Get(UsageKey(instanceID, node))
	if err != nil {
		return nil, err
	}
	return decodeUsage(b)
}

func decodeUsage(b []byte) (*UsageRecord, error) {
	var r UsageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode usage record: %w", err)
	}
	return &r, nil
}

// PutUsage writes a usage record. Errors: ErrInvalid for an empty or
// slash-holding instance id or node.
func PutUsage(tx Tx, r *UsageRecord) error {
	if !validUsagePart(r.InstanceID) || !validUsagePart(r.Node) {
		return fmt.Errorf("%w: usage record needs an instance id and a node without '/'", ErrInvalid)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode usage record: %w", err)
	}
	return tx.Put(UsageKey(r.InstanceID, r.Node), b)
}

// ScanUsage calls fn for every usage record of instanceID (every node), or
// of every instance when instanceID is "", in key order. A record that
// cannot be decoded is skipped: usage is advisory, and one bad value must
// not hide the rest.
func ScanUsage(tx Tx, instanceID string, fn func(*UsageRecord) error) error {
	prefix := usagePrefix
	if instanceID != "" {
		prefix += instanceID + "/"
	}
	return tx.Scan(prefix, func(_ string, v []byte) error {
		r, err := decodeUsage(v)
		if err != nil {
			return nil
		}
		return fn(r)
	})
}

// DeleteUsage removes every node's usage record of an instance.
func DeleteUsage(tx Tx, instanceID string) error {
	if !validUsagePart(instanceID) {
		return fmt.Errorf("%w: instance id %q", ErrInvalid, instanceID)
	}
	var keys []string
	if err := tx.Scan(usagePrefix+instanceID+"/", func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteNodeUsage removes one node's usage record of an instance.
func DeleteNodeUsage(tx Tx, instanceID, node string) error {
	return tx.Delete(UsageKey(instanceID, node))
}

// ChangeRecord is one entry of the audit trail of changes made from the
// console (and any other caller that records them): who, what, when.
type ChangeRecord struct {
	At          time.Time         `json:"at"`
	Principal   string            `json:"principal"`
	Action      string            `json:"action"`
	InstanceIDs []string          `json:"instanceIds,omitempty"`
	Detail      map[string]string `json:"detail,omitempty"`
	Source      string            `json:"source,omitempty"`
}

// PutChange appends a change record. suffix tells apart records written in
// the same nanosecond (a node name or a random string).
func PutChange(tx Tx, r ChangeRecord, suffix string) error {
	if r.At.IsZero() || r.Action == "" {
		return fmt.Errorf("%w: a change record needs a time and an action", ErrInvalid)
	}
	if strings.Contains(suffix, "/") {
		return fmt.Errorf("%w: change suffix %q", ErrInvalid, suffix)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode change record: %w", err)
	}
	return tx.Put(changeKey(r.At, suffix), b)
}

func changeKey(at time.Time, suffix string) string {
	return fmt.Sprintf("%s%020d-%s", changePrefix, at.UnixNano(), suffix)
}

// ListChanges calls fn for every change record, oldest first.
func ListChanges(tx Tx, fn func(ChangeRecord) error) error {
	return tx.Scan(changePrefix, func(_ string, v []byte) error {
		var r ChangeRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil // skip a damaged entry rather than hide the trail
		}
		return fn(r)
	})
}

// DeleteChangesBefore removes change records older than t and reports how
// many it removed.
func DeleteChangesBefore(tx Tx, t time.Time) (int, error) {
	limit := changeKey(t, "")
	var keys []string
	errStop := errors.New("stop")
	err := tx.Scan(changePrefix, func(k string, _ []byte) error {
		if k >= limit {
			return errStop
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

const usageNodePrefix = "usage-nodes/"

// UsageNode says since when a node has been recording IMDSv1 usage and
// when it last wrote, so that a reader can tell "no calls" from "not
// watched": an empty history proves nothing.
type UsageNode struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
	Seen  time.Time `json:"seen"`
}

// PutUsageNode writes a node's observation record.
func PutUsageNode(tx Tx, n UsageNode) error {
	if !validUsagePart(n.Node) {
		return fmt.Errorf("%w: node %q", ErrInvalid, n.Node)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode usage node: %w", err)
	}
	return tx.Put(usageNodePrefix+n.Node, b)
}

// GetUsageNode reads a node's observation record. Errors: ErrNotFound.
func GetUsageNode(tx Tx, node string) (UsageNode, error) {
	b, err := tx.Get(usageNodePrefix + node)
	if err != nil {
		return UsageNode{}, err
	}
	var n UsageNode
	if err := json.Unmarshal(b, &n); err != nil {
		return UsageNode{}, fmt.Errorf("decode usage node: %w", err)
	}
	return n, nil
}

// ListUsageNodes calls fn for every node's observation record.
func ListUsageNodes(tx Tx, fn func(UsageNode) error) error {
	return tx.Scan(usageNodePrefix, func(_ string, v []byte) error {
		var n UsageNode
		if err := json.Unmarshal(v, &n); err != nil {
			return nil
		}
		return fn(n)
	})
}

// DeleteUsageNode removes a node's observation record.
func DeleteUsageNode(tx Tx, node string) error {
	return tx.Delete(usageNodePrefix + node)
}
