package controlplane

// DataPlane is what the control plane asks of the local data plane, to
// report a metadata-options change "applied" (DescribeInstances'
// MetadataOptions.State) once guests are answered with it.
type DataPlane interface {
	// AppliedOptions returns the OptionsRevision of an instance as the
	// data plane's snapshot holds it, and whether this node serves the
	// instance at all. For a served instance, its options are applied
	// exactly when that revision has reached the stored one: the
	// comparison is between two copies of the same recorded value, so it
	// holds whatever revision the store committed the change at.
	AppliedOptions(instanceID string) (optionsRevision int64, served bool)
	// Applied returns the store revision the snapshot has reached: the
	// fallback for an instance this node does not serve (fleet mode:
	// another host; or not yet in the snapshot), applied once its
	// OptionsRevision is at or below it. OptionsRevision is the read
	// revision + 1 of the changing transaction, and etcd may commit it at
	// a higher revision, so this fallback can say "applied" a little early.
	Applied() int64
}

// Health answers /readyz.
type Health interface {
	// Ready is nil when the node is ready (200).
	Ready() error
	// Components reports each component's state ("data_plane", "store",
	// ...) for the body of /readyz and /readyz?component=NAME; a nil
	// error is healthy.
	Components() map[string]error
}

// Observer hears the control plane's traffic, for metrics and the audit
// stream.
type Observer interface {
	// Request is called once per Query API request with the action name
	// and the EC2 error code ("" on success, "DryRunOperation" for a dry
	// run). action is one of Actions() when the request named a known
	// action, even if it then failed its signature check, and ""
	// otherwise (unknown action, no Action, unreadable request), so a
	// metrics label stays bounded.
	Request(action, errorCode string)
	// Change is called after every state-changing action that committed
	// (never for Describe*/Get*, a dry run, a failure, or a RunInstances
	// answered from its ClientToken), with the access key id that signed
	// the request, the action, the instances it changed (none for account
	// defaults) and a small detail map of what changed. Detail never holds
	// user data, tag values or secrets.
	Change(accessKeyID, action string, instanceIDs []string, detail map[string]string)
}
