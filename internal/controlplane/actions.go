package controlplane

import "sort"

// Extension action names (see EXTENSIONS.md).
const (
	ActionSendSpotInterruption          = "FrontdeskSendSpotInterruption"
	ActionCancelSpotInterruption        = "FrontdeskCancelSpotInterruption"
	ActionSendRebalanceRecommendation   = "FrontdeskSendRebalanceRecommendation"
	ActionCancelRebalanceRecommendation = "FrontdeskCancelRebalanceRecommendation"
	ActionCreateMaintenanceEvent        = "FrontdeskCreateMaintenanceEvent"
	ActionCompleteMaintenanceEvent      = "FrontdeskCompleteMaintenanceEvent"
	ActionCancelMaintenanceEvent        = "FrontdeskCancelMaintenanceEvent"
	ActionSetTargetLifecycleState       = "FrontdeskSetTargetLifecycleState"
	ActionDescribeImdsUsage             = "FrontdeskDescribeImdsUsage"
)

// Actions returns the name of every action the control plane answers (EC2
// and extension actions), sorted: the fixed set OnRequest reports, so that
// metrics can bound their action label.
func Actions() []string {
	// The table's method values bind a nil-field Server without calling it.
	t := (&Server{}).actionTable()
	out := make([]string, 0, len(t))
	for name := range t {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// actionTable lists every action the control plane answers.
func (s *Server) actionTable() map[string]action {
	return map[string]action{
		// regions.go, keypairs.go
		"DescribeRegions":           s.describeRegions,
		"DescribeAvailabilityZones": s.describeAvailabilityZones,
		"ImportKeyPair":             s.importKeyPair,
		"CreateKeyPair":             s.createKeyPair,
		"DescribeKeyPairs":          s.describeKeyPairs,
		"DeleteKeyPair":             s.deleteKeyPair,

		"RunInstances":                           s.runInstances,
		"DescribeInstances":                      s.describeInstances,
		"TerminateInstances":                     s.terminateInstances,
		"CreateTags":                             s.createTags,
		"DeleteTags":                             s.deleteTags,
		"ModifyInstanceAttribute":                s.modifyInstanceAttribute,
		"ModifyInstanceMetadataOptions":          s.modifyInstanceMetadataOptions,
		"GetInstanceMetadataDefaults":            s.getInstanceMetadataDefaults,
		"ModifyInstanceMetadataDefaults":         s.modifyInstanceMetadataDefaults,
		"AssociateIamInstanceProfile":            s.associateIamInstanceProfile,
		"DisassociateIamInstanceProfile":         s.disassociateIamInstanceProfile,
		"DescribeIamInstanceProfileAssociations": s.describeIamInstanceProfileAssociations,
		"ModifyInstancePlacement":                s.modifyInstancePlacement,
		"CreateVpc":                              s.createVpc,
		"DescribeVpcs":                           s.describeVpcs,
		"DeleteVpc":                              s.deleteVpc,
		"CreateSubnet":                           s.createSubnet,
		"DescribeSubnets":                        s.describeSubnets,
		"DeleteSubnet":                           s.deleteSubnet,
		"AllocateAddress":                        s.allocateAddress,
		"AssociateAddress":                       s.associateAddress,
		"DisassociateAddress":                    s.disassociateAddress,
		"ReleaseAddress":                         s.releaseAddress,
		"DescribeAddresses":                      s.describeAddresses,

		ActionSendSpotInterruption:          s.sendSpotInterruption,
		ActionCancelSpotInterruption:        s.cancelSpotInterruption,
		ActionSendRebalanceRecommendation:   s.sendRebalanceRecommendation,
		ActionCancelRebalanceRecommendation: s.cancelRebalanceRecommendation,
		ActionCreateMaintenanceEvent:        s.createMaintenanceEvent,
		ActionCompleteMaintenanceEvent:      s.completeMaintenanceEvent,
		ActionCancelMaintenanceEvent:        s.cancelMaintenanceEvent,
		ActionSetTargetLifecycleState:       s.setTargetLifecycleState,
		ActionDescribeImdsUsage:             s.describeImdsUsage,
		ActionImportInstances:               s.importInstances, // import.go
		ActionExportInstances:               s.exportInstances,
	}
}
