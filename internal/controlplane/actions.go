package controlplane

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
)

// actionTable lists every action the control plane answers.
func (s *Server) actionTable() map[string]action {
	return map[string]action{
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

		ActionSendSpotInterruption:          s.sendSpotInterruption,
		ActionCancelSpotInterruption:        s.cancelSpotInterruption,
		ActionSendRebalanceRecommendation:   s.sendRebalanceRecommendation,
		ActionCancelRebalanceRecommendation: s.cancelRebalanceRecommendation,
		ActionCreateMaintenanceEvent:        s.createMaintenanceEvent,
		ActionCompleteMaintenanceEvent:      s.completeMaintenanceEvent,
		ActionCancelMaintenanceEvent:        s.cancelMaintenanceEvent,
		ActionSetTargetLifecycleState:       s.setTargetLifecycleState,
	}
}
