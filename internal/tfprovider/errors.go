package tfprovider

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// apiError turns a control-plane failure into a diagnostic whose detail
// starts with EC2's error code and message, as the AWS provider shows them
// ("InvalidAMIID.Malformed: Invalid id: ..."), followed by the whole error
// (operation, status and request id) for a bug report.
func apiError(summary string, err error) diag.Diagnostic {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf("%s: %s\n\n%v", ae.ErrorCode(), ae.ErrorMessage(), err))
	}
	return diag.NewErrorDiagnostic(summary, err.Error())
}

// notConfigured is the diagnostic of a resource used before the provider
// could build its client.
func notConfigured() diag.Diagnostic {
	return diag.NewErrorDiagnostic("frontdesk provider not configured",
		"The provider has no control-plane client: its configuration was not known when this resource was planned. Apply again.")
}
