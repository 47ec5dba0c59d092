package controlplane

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// servedOptions is a data plane whose snapshot holds the instances served
// answers for.
type servedOptions struct {
	DataPlane
	served func(id string) (int64, bool)
}

func (s servedOptions) AppliedOptions(id string) (int64, bool) { return s.served(id) }

func TestMetadataOptionsStateUsesTheServedInstance(t *testing.T) {
	var mu sync.Mutex
	snapshot := map[string]int64{} // instance → OptionsRevision the data plane holds
	e := newEnv(t, func(o *Options) {
		o.DataPlane = servedOptions{o.DataPlane, func(id string) (int64, bool) {
			mu.Lock()
			defer mu.Unlock()
			rev, ok := snapshot[id]
			return rev, ok
		}}
	})
	served := *e.launch("192.0.2.1", nil).InstanceId
	other := *e.launch("192.0.2.2", nil).InstanceId
	if _, err := e.client.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(served), HttpTokens: types.HttpTokensStateOptional,
	}); err != nil {
		t.Fatal(err)
	}
	stored := e.stored(served).OptionsRevision
	tests := []struct {
		name     string
		id       string
		snapRev  int64 // -1: not served here
		applied  int64
		wantSate types.InstanceMetadataOptionsState
	}{
		// etcd can commit after read revision + 1: the store revision the
		// snapshot reached may pass OptionsRevision before the change.
		{"served and the snapshot holds an older copy is pending whatever the store revision", served, stored - 1, stored + 100, types.InstanceMetadataOptionsStatePending},
		{"served and the snapshot holds the change is applied whatever the store revision", served, stored, 0, types.InstanceMetadataOptionsStateApplied},
		{"not served here falls back on the store revision (behind)", other, -1, 0, types.InstanceMetadataOptionsStatePending},
		{"not served here falls back on the store revision (caught up)", other, -1, e.revision(), types.InstanceMetadataOptionsStateApplied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			delete(snapshot, tc.id)
			if tc.snapRev >= 0 {
				snapshot[tc.id] = tc.snapRev
			}
			mu.Unlock()
			e.applied.Store(tc.applied)
			if st := e.describeOne(tc.id).MetadataOptions.State; st != tc.wantSate {
				t.Errorf("state %s, want %s", st, tc.wantSate)
			}
		})
	}
}
