package controlplane

import (
	"context"
	"net/http"
	"strconv"
	"unicode"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// maxHostIDLen bounds a host id: EC2's are 19 characters (h-…), frontdesk's
// fleet node names are operator-chosen.
const maxHostIDLen = 255

// validHostID accepts printable characters without spaces, so a host id is
// always a single token in logs and in the metadata tree.
func validHostID(id string) bool {
	if len(id) > maxHostIDLen {
		return false
	}
	for _, r := range id {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// modifyInstancePlacement moves an instance: HostId (in fleet mode, the
// frontdesk node that serves it, so its metadata moves with it), GroupName
// and PartitionNumber. EC2 requires a stopped instance; frontdesk moves a
// running one (a live migration): IMDSv2 tokens stay valid because they are
// bound to the instance id and launch generation, not to the host. An empty
// HostId clears it. Affinity, Tenancy, HostResourceGroupArn and GroupId are
// refused as unsupported rather than ignored.
func (s *Server) modifyInstancePlacement(ctx context.Context, p params) (response, error) {
	dry, id, err := dryRunAndInstanceID(p)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Affinity", "Tenancy", "HostResourceGroupArn", "GroupId"} {
		if p.has(k) {
			return nil, newAPIError(http.StatusBadRequest, "UnsupportedOperation", "frontdesk supports only HostId, GroupName and PartitionNumber ("+k+" was given).")
		}
	}
	hostID, hasHost := p.get("HostId")
	if hasHost && !validHostID(hostID) {
		return nil, errInvalid("Invalid value '" + hostID + "' for HostId.")
	}
	group, hasGroup := p.get("GroupName")
	if hasGroup && len(group) > 255 {
		return nil, errInvalid("Invalid value for GroupName: at most 255 characters.")
	}
	pn, err := p.intOpt("PartitionNumber")
	if err != nil {
		return nil, err
	}
	if pn != nil && (*pn < 1 || *pn > 7) {
		return nil, errInvalid("Invalid value '" + strconv.Itoa(*pn) + "' for PartitionNumber. Valid values: 1-7.")
	}
	if !hasHost && !hasGroup && pn == nil {
		return nil, errMissing("HostId")
	}
	detail := map[string]string{}
	err = s.modifyLive(ctx, dry, id, func(_ imds.Tx, in *imds.Instance) error {
		if hasHost {
			detail["PreviousHostId"] = in.Placement.HostID
			detail["HostId"] = hostID
			in.Placement.HostID = hostID
		}
		if hasGroup {
			detail["GroupName"] = group
			in.Placement.GroupName = group
		}
		if pn != nil {
			detail["PartitionNumber"] = strconv.Itoa(*pn)
			in.Placement.PartitionNumber = *pn
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, []string{id}, detail)
	return &returnResponse{Return: true}, nil
}
