// Package controlplane is frontdesk's EC2 API: the subset of the EC2 Query
// protocol (form-encoded POST or GET, Version=2016-11-15, XML answers in the
// EC2 namespace, EC2 error documents and codes) that the AWS CLI and SDKs
// need with --endpoint-url to register and manage instances, plus frontdesk's
// extension actions that simulate EC2 events, and /healthz and /readyz.
//
// Every Query API request must carry a SigV4 signature (Authorization header
// or presigned query) by the admin credentials, which LoadOrCreateAdmin keeps
// in the store. The signature arithmetic is the AWS SDK's own signer: the
// server re-signs a copy of the request with the claimed scope and compares.
//
// EC2 actions: RunInstances, DescribeInstances, TerminateInstances,
// CreateTags, DeleteTags, ModifyInstanceAttribute (userData),
// ModifyInstanceMetadataOptions, GetInstanceMetadataDefaults,
// ModifyInstanceMetadataDefaults, AssociateIamInstanceProfile,
// DisassociateIamInstanceProfile, DescribeIamInstanceProfileAssociations,
// ModifyInstancePlacement. RunInstances honours ClientToken (idempotency).
//
// Extension actions (parameters in EXTENSIONS.md): FrontdeskSendSpotInterruption,
// FrontdeskCancelSpotInterruption, FrontdeskSendRebalanceRecommendation,
// FrontdeskCancelRebalanceRecommendation, FrontdeskCreateMaintenanceEvent,
// FrontdeskCompleteMaintenanceEvent, FrontdeskCancelMaintenanceEvent,
// FrontdeskSetTargetLifecycleState, FrontdeskDescribeImdsUsage.
//
// An Observer (Options.Observer) lets metrics and the audit log see every
// request and every committed change; Actions lists the action names. The
// DataPlane and Health interfaces are what the server asks of the rest of
// the node.
//
// Every action is one store Update: an action that fails writes nothing.
package controlplane
