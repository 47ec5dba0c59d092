package controlplane

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

type xmlAssociation struct {
	AssociationID string     `xml:"associationId"`
	InstanceID    string     `xml:"instanceId"`
	Profile       xmlProfile `xml:"iamInstanceProfile"`
	State         string     `xml:"state"`
	Timestamp     string     `xml:"timestamp,omitempty"`
}

type associationResponse struct {
	respMeta
	Association xmlAssociation `xml:"iamInstanceProfileAssociation"`
}

func associationXML(in *imds.Instance, state string) xmlAssociation {
	p := in.IAMInstanceProfile
	return xmlAssociation{
		AssociationID: p.AssociationID,
		InstanceID:    in.InstanceID,
		Profile:       xmlProfile{Arn: p.Arn, ID: p.ID},
		State:         state,
	}
}

// associateIamInstanceProfile attaches a profile to an instance that has
// none. EC2 answers "associating"; frontdesk's change is visible to the data
// plane as soon as its snapshot catches up.
func (s *Server) associateIamInstanceProfile(ctx context.Context, p params) (response, error) {
	id, err := requiredInstanceID(p)
	if err != nil {
		return nil, err
	}
	if !p.has("IamInstanceProfile") {
		return nil, errMissing("IamInstanceProfile")
	}
	prof, err := s.parseProfile(p.sub("IamInstanceProfile"))
	if err != nil {
		return nil, err
	}
	var out xmlAssociation
	err = s.modifyLive(ctx, false, id, func(_ imds.Tx, in *imds.Instance) error {
		if in.IAMInstanceProfile != nil {
			return newAPIError(http.StatusBadRequest, "IncorrectState", "There is an existing association for instance "+id)
		}
		pr := *prof
		var err error
		if pr.AssociationID, err = newID("iip-assoc-"); err != nil {
			return err
		}
		in.IAMInstanceProfile = &pr
		out = associationXML(in, "associating")
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Timestamp = ec2Time(s.opts.Now())
	noteChange(ctx, []string{id}, map[string]string{"InstanceProfileArn": out.Profile.Arn, "AssociationId": out.AssociationID})
	return &associationResponse{Association: out}, nil
}

func (s *Server) disassociateIamInstanceProfile(ctx context.Context, p params) (response, error) {
	assoc, err := p.required("AssociationId")
	if err != nil {
		return nil, err
	}
	if !assocIDRe.MatchString(assoc) {
		return nil, errAssociationNotFound(assoc)
	}
	var out xmlAssociation
	err = s.update(ctx, false, func(tx imds.Tx) error {
		in, err := findAssociation(tx, assoc)
		if err != nil {
			return err
		}
		out = associationXML(in, "disassociating")
		in.IAMInstanceProfile = nil
		return imds.PutInstance(tx, in)
	})
	if err != nil {
		return nil, err
	}
	out.Timestamp = ec2Time(s.opts.Now())
	noteChange(ctx, []string{out.InstanceID}, map[string]string{"InstanceProfileArn": out.Profile.Arn, "AssociationId": out.AssociationID})
	return &associationResponse{Association: out}, nil
}

func errAssociationNotFound(id string) error {
	return newAPIError(http.StatusBadRequest, "InvalidAssociationID.NotFound", "The association ID '"+id+"' does not exist")
}

var errFound = errors.New("found")

// findAssociation scans for the live instance holding an association id.
// Instances are few enough per node that a scan beats keeping an index.
func findAssociation(tx imds.Tx, assoc string) (*imds.Instance, error) {
	var hit *imds.Instance
	err := imds.ListInstances(tx, func(in *imds.Instance) error {
		if in.Live() && in.IAMInstanceProfile != nil && in.IAMInstanceProfile.AssociationID == assoc {
			hit = in
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, err
	}
	if hit == nil {
		return nil, errAssociationNotFound(assoc)
	}
	return hit, nil
}

var associationFilters = map[string]func(*Server, *imds.Instance) []string{
	"instance-id": func(_ *Server, in *imds.Instance) []string { return []string{in.InstanceID} },
	"state":       func(_ *Server, _ *imds.Instance) []string { return []string{"associated"} },
}

type describeAssociationsResponse struct {
	respMeta
	Associations struct {
		Items []xmlAssociation `xml:"item"`
	} `xml:"iamInstanceProfileAssociationSet"`
	NextToken string `xml:"nextToken,omitempty"`
}

func (s *Server) describeIamInstanceProfileAssociations(ctx context.Context, p params) (response, error) {
	ids, err := p.strings("AssociationId")
	if err != nil {
		return nil, err
	}
	filters, err := parseFilters(p, associationFilters)
	if err != nil {
		return nil, err
	}
	limit, after, err := parsePaging(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > 0 {
		return nil, errCombination("The parameter AssociationId cannot be used with the parameter MaxResults")
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]bool{}
	resp := &describeAssociationsResponse{}
	var last string
	more := false
	errStop := errors.New("page full")
	err = s.store.View(ctx, func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			pr := in.IAMInstanceProfile
			if !in.Live() || pr == nil || (len(want) > 0 && !want[pr.AssociationID]) {
				return nil
			}
			found[pr.AssociationID] = true
			if (after != "" && in.InstanceID <= after) || !s.matches(filters, in) {
				return nil
			}
			if limit > 0 && len(resp.Associations.Items) == limit {
				more = true
				return errStop
			}
			resp.Associations.Items = append(resp.Associations.Items, associationXML(in, "associated"))
			last = in.InstanceID
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	for _, id := range ids {
		if !found[id] {
			return nil, errAssociationNotFound(id)
		}
	}
	if more {
		resp.NextToken = nextToken(last)
	}
	return resp, nil
}

// modifyInstanceAttribute supports the one attribute the metadata service
// serves: userData (either UserData.Value or Attribute=userData with Value).
// EC2 requires the instance to be stopped; frontdesk instances are never
// stopped, so the change applies to the running instance, and the data
// plane serves the new user data once its snapshot catches up.
func (s *Server) modifyInstanceAttribute(ctx context.Context, p params) (response, error) {
	dry, id, err := dryRunAndInstanceID(p)
	if err != nil {
		return nil, err
	}
	var encoded string
	var given bool
	if v, ok := p.get("UserData.Value"); ok {
		encoded, given = v, true
	}
	if attr, ok := p.get("Attribute"); ok {
		if attr != "userData" {
			return nil, newAPIError(http.StatusBadRequest, "UnsupportedOperation", "frontdesk supports only the userData attribute.")
		}
		if given {
			return nil, errCombination("Specify either UserData or Attribute and Value, not both.")
		}
		encoded, given = p.str("Value"), true
	}
	if !given {
		for _, k := range []string{"InstanceType", "SourceDestCheck", "DisableApiTermination", "DisableApiStop", "Kernel", "Ramdisk",
			"InstanceInitiatedShutdownBehavior", "GroupId", "BlockDeviceMapping", "EbsOptimized", "SriovNetSupport", "EnaSupport", "EnclaveOptions"} {
			if p.has(k) {
				return nil, newAPIError(http.StatusBadRequest, "UnsupportedOperation", "frontdesk supports only the userData attribute.")
			}
		}
		return nil, errMissing("UserData")
	}
	data, err := decodeBase64(encoded)
	if err != nil {
		return nil, errInvalid("Invalid BASE64 encoding of user data.")
	}
	if len(data) > imds.MaxUserData {
		return nil, errInvalid("User data is limited to " + strconv.Itoa(imds.MaxUserData) + " bytes.")
	}
	if len(data) == 0 {
		data = nil
	}
	err = s.modifyLive(ctx, dry, id, func(_ imds.Tx, in *imds.Instance) error {
		in.UserData = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The size only: user data often holds secrets.
	noteChange(ctx, []string{id}, map[string]string{"Attribute": "userData", "UserDataBytes": strconv.Itoa(len(data))})
	return &returnResponse{Return: true}, nil
}
