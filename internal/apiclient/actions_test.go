package apiclient

import (
	"slices"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
)

// TestExtensionActionsAreTheServers checks the client's own copy of the
// extension action names against the server's list, both ways.
func TestExtensionActionsAreTheServers(t *testing.T) {
	client := []string{
		ActionSendSpotInterruption, ActionCancelSpotInterruption,
		ActionSendRebalanceRecommendation, ActionCancelRebalanceRecommendation,
		ActionCreateMaintenanceEvent, ActionCompleteMaintenanceEvent, ActionCancelMaintenanceEvent,
		ActionSetTargetLifecycleState, ActionDescribeImdsUsage,
		ActionImportInstances, ActionExportInstances,
	}
	server := controlplane.Actions()
	for _, a := range client {
		if !slices.Contains(server, a) {
			t.Errorf("the client names %q, which the control plane does not answer", a)
		}
	}
	for _, a := range server {
		if strings.HasPrefix(a, "Frontdesk") && !slices.Contains(client, a) {
			t.Errorf("the control plane answers %q, which the client has no name for", a)
		}
	}
}
