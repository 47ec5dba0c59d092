package controlplane

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// instanceFilters maps each supported DescribeInstances filter name to the
// values an instance has for it. tag:KEY is handled apart.
var instanceFilters = map[string]func(s *Server, in *imds.Instance) []string{
	"instance-id":         func(_ *Server, in *imds.Instance) []string { return []string{in.InstanceID} },
	"instance-state-name": func(_ *Server, in *imds.Instance) []string { return []string{in.State} },
	"instance-state-code": func(_ *Server, in *imds.Instance) []string { return []string{strconv.Itoa(stateCodes[in.State])} },
	"reservation-id":      func(_ *Server, in *imds.Instance) []string { return []string{in.ReservationID} },
	"image-id":            func(_ *Server, in *imds.Instance) []string { return []string{in.ImageID} },
	"instance-type":       func(_ *Server, in *imds.Instance) []string { return []string{in.InstanceType} },
	"architecture":        func(_ *Server, in *imds.Instance) []string { return []string{in.Architecture} },
	"availability-zone":   func(_ *Server, in *imds.Instance) []string { return []string{in.Placement.AvailabilityZone} },
	"instance-lifecycle":  func(_ *Server, in *imds.Instance) []string { return []string{in.InstanceLifecycle} },
	"owner-id":            func(_ *Server, in *imds.Instance) []string { return []string{in.AccountID} },
	"private-ip-address":  func(_ *Server, in *imds.Instance) []string { return liveAddrs(in, true) },
	"network-interface.addresses.private-ip-address": func(_ *Server, in *imds.Instance) []string { return liveAddrs(in, true) },
	"ipv6-address": func(_ *Server, in *imds.Instance) []string { return liveAddrs(in, false) },
	"network-interface.ipv6-addresses.ipv6-address": func(_ *Server, in *imds.Instance) []string { return liveAddrs(in, false) },
	"private-dns-name": func(_ *Server, in *imds.Instance) []string {
		if p := in.Primary(); p != nil && in.Live() {
			return []string{p.LocalHostname}
		}
		return nil
	},
	"subnet-id": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.NetworkInterfaces, func(n imds.NetworkInterface) string { return n.SubnetID })
	},
	"vpc-id": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.NetworkInterfaces, func(n imds.NetworkInterface) string { return n.VPCID })
	},
	"network-interface.mac-address": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.NetworkInterfaces, func(n imds.NetworkInterface) string { return n.MAC })
	},
	"key-name": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.PublicKeys, func(k imds.PublicKey) string { return k.Name })
	},
	"iam-instance-profile.arn": func(_ *Server, in *imds.Instance) []string {
		if in.IAMInstanceProfile != nil {
			return []string{in.IAMInstanceProfile.Arn}
		}
		return nil
	},
	"tag-key": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.Tags, func(t imds.Tag) string { return t.Key })
	},
	"tag-value": func(_ *Server, in *imds.Instance) []string {
		return fieldOf(in.Tags, func(t imds.Tag) string { return t.Value })
	},
	"metadata-options.http-tokens":   func(_ *Server, in *imds.Instance) []string { return []string{in.MetadataOptions.HttpTokens} },
	"metadata-options.http-endpoint": func(_ *Server, in *imds.Instance) []string { return []string{in.MetadataOptions.HttpEndpoint} },
	"metadata-options.http-put-response-hop-limit": func(_ *Server, in *imds.Instance) []string {
		return []string{strconv.Itoa(in.MetadataOptions.HttpPutResponseHopLimit)}
	},
	"metadata-options.http-protocol-ipv6":     func(_ *Server, in *imds.Instance) []string { return []string{in.MetadataOptions.HttpProtocolIPv6} },
	"metadata-options.instance-metadata-tags": func(_ *Server, in *imds.Instance) []string { return []string{in.MetadataOptions.InstanceMetadataTags} },
	"metadata-options.state":                  func(s *Server, in *imds.Instance) []string { return []string{s.optionsState(in)} },
}

func liveAddrs(in *imds.Instance, v4 bool) []string {
	if !in.Live() {
		return nil
	}
	var out []string
	for _, n := range in.NetworkInterfaces {
		if v4 {
			out = append(out, n.PrivateIPv4s...)
		} else {
			out = append(out, n.IPv6s...)
		}
	}
	return out
}

// fieldOf is one field of every item: the values a filter on a list
// attribute (network interfaces, tags, keys) matches against.
func fieldOf[T any](items []T, f func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}

// filter is one Filter.N: the instance matches if any of its values matches
// any of the filter's values (EC2's * and ? wildcards allowed).
type filter struct {
	name   string
	values []string
	get    func(s *Server, in *imds.Instance) []string
}

func parseFilters(p params, known map[string]func(*Server, *imds.Instance) []string) ([]filter, error) {
	items, err := p.list("Filter")
	if err != nil {
		return nil, err
	}
	var out []filter
	for _, it := range items {
		name, err := it.required("Name")
		if err != nil {
			return nil, err
		}
		values, err := it.strings("Value")
		if err != nil {
			return nil, err
		}
		if len(values) == 0 {
			return nil, errInvalid("The filter '" + name + "' requires at least one value.")
		}
		f := filter{name: name, values: values}
		if key, ok := strings.CutPrefix(name, "tag:"); ok && known["tag-key"] != nil {
			f.get = func(_ *Server, in *imds.Instance) []string {
				if v, ok := in.TagValue(key); ok {
					return []string{v}
				}
				return nil
			}
		} else if g, ok := known[name]; ok {
			f.get = g
		} else {
			return nil, errInvalid("The filter '" + name + "' is invalid")
		}
		out = append(out, f)
	}
	return out, nil
}

func (s *Server) matches(fs []filter, in *imds.Instance) bool {
	for _, f := range fs {
		if !anyMatch(f.values, f.get(s, in)) {
			return false
		}
	}
	return true
}

func anyMatch(patterns, have []string) bool {
	for _, h := range have {
		for _, pat := range patterns {
			if wildcardMatch(pat, h) {
				return true
			}
		}
	}
	return false
}

// wildcardMatch implements EC2 filter wildcards: * any run, ? one character,
// backslash escapes. path.Match has the same syntax apart from '/', '[' and
// ']', which are made literal here.
func wildcardMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?\\") {
		return pattern == s
	}
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '[', ']':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	// '/' is a separator for path.Match; map it to a character that cannot
	// occur in either string so that * matches across it.
	const sep = "\x00"
	ok, err := path.Match(strings.ReplaceAll(b.String(), "/", sep), strings.ReplaceAll(s, "/", sep))
	return err == nil && ok
}

// paging reads MaxResults / NextToken. The token is the id of the last item
// of the previous page, so pages stay stable while instances come and go.
func parsePaging(p params, minResults, maxResults int) (limit int, after string, err error) {
	mr, err := p.intOpt("MaxResults")
	if err != nil {
		return 0, "", err
	}
	if mr != nil {
		if *mr < minResults || *mr > maxResults {
			return 0, "", errInvalid("Value (" + strconv.Itoa(*mr) + ") for parameter maxResults is invalid. Expecting a value between " + strconv.Itoa(minResults) + " and " + strconv.Itoa(maxResults) + ".")
		}
		limit = *mr
	}
	if tok, ok := p.get("NextToken"); ok && tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		rest, found := strings.CutPrefix(string(b), "fd1:")
		if err != nil || !found || rest == "" {
			return 0, "", newAPIError(http.StatusBadRequest, "InvalidPaginationToken", "The pagination token is invalid.")
		}
		after = rest
	}
	return limit, after, nil
}

func nextToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("fd1:" + lastID))
}

// parseInstanceIDs reads InstanceId.N, rejecting malformed ids.
func parseInstanceIDs(p params) ([]string, error) {
	ids, err := p.strings("InstanceId")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !imds.ValidInstanceID(id) {
			return nil, errInstanceMalformed(id)
		}
	}
	return ids, nil
}

type describeInstancesResponse struct {
	respMeta
	Reservations struct {
		Items []xmlReservation `xml:"item"`
	} `xml:"reservationSet"`
	NextToken string `xml:"nextToken,omitempty"`
}

func (s *Server) describeInstances(ctx context.Context, p params) (response, error) {
	dry, ids, err := dryRunAndInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	filters, err := parseFilters(p, instanceFilters)
	if err != nil {
		return nil, err
	}
	limit, after, err := parsePaging(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > 0 {
		return nil, errCombination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	if dry {
		return nil, errDryRun
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var (
		page []*imds.Instance
		more bool
	)
	found := map[string]bool{}
	errStop := errors.New("page full")
	err = s.store.View(ctx, func(tx imds.Tx) error {
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			if len(want) > 0 && !want[in.InstanceID] {
				return nil
			}
			found[in.InstanceID] = true
			if after != "" && in.InstanceID <= after {
				return nil
			}
			if !s.matches(filters, in) {
				return nil
			}
			if limit > 0 && len(page) == limit {
				more = true
				return errStop
			}
			page = append(page, in)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, errInstanceNotFound(missing...)
	}
	resp := &describeInstancesResponse{}
	byRes := map[string]int{}
	for _, in := range page {
		i, ok := byRes[in.ReservationID]
		if !ok {
			i = len(resp.Reservations.Items)
			byRes[in.ReservationID] = i
			resp.Reservations.Items = append(resp.Reservations.Items, xmlReservation{ReservationID: in.ReservationID, OwnerID: in.AccountID})
		}
		r := &resp.Reservations.Items[i]
		r.Instances = append(r.Instances, s.instanceXML(in))
	}
	if more && len(page) > 0 {
		resp.NextToken = nextToken(page[len(page)-1].InstanceID)
	}
	return resp, nil
}

type instanceStateChange struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  xmlInstanceState `xml:"currentState"`
	PreviousState xmlInstanceState `xml:"previousState"`
}

type terminateInstancesResponse struct {
	respMeta
	Instances []instanceStateChange `xml:"instancesSet>item"`
}

// terminateInstances terminates every listed instance (all or nothing): the
// record stays, so DescribeInstances shows it as terminated, and its
// addresses are released at once.
func (s *Server) terminateInstances(ctx context.Context, p params) (response, error) {
	dry, ids, err := dryRunAndInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errMissing("InstanceId.1")
	}
	var changes []instanceStateChange
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		changes = changes[:0]
		return eachInstance(tx, ids, func(id string, in *imds.Instance) error {
			prev := in.State
			if in.State != imds.StateTerminated {
				in.State = imds.StateTerminated
				in.TerminatedAt = s.opts.Now().UTC()
				if err := imds.ReleaseInstancePublicIPs(tx, in); err != nil {
					return err
				}
				if err := imds.PutInstance(tx, in); err != nil {
					return err
				}
			}
			changes = append(changes, instanceStateChange{InstanceID: id, CurrentState: instanceState(imds.StateTerminated), PreviousState: instanceState(prev)})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, ids, nil)
	return &terminateInstancesResponse{Instances: changes}, nil
}

// getLiveInstance reads an instance for a modifying action: unknown ids are
// InvalidInstanceID.NotFound and terminated instances cannot be changed.
func getLiveInstance(tx imds.Tx, id string) (*imds.Instance, error) {
	in, err := imds.GetInstance(tx, id)
	if errors.Is(err, imds.ErrNotFound) {
		return nil, errInstanceNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if !in.Live() {
		return nil, errIncorrectState(id, in.State)
	}
	return in, nil
}

// dryRunAndInstanceID reads DryRun, then InstanceId: what every action
// that modifies one instance starts with.
func dryRunAndInstanceID(p params) (dry bool, id string, err error) {
	if dry, err = p.dryRun(); err != nil {
		return false, "", err
	}
	if id, err = requiredInstanceID(p); err != nil {
		return false, "", err
	}
	return dry, id, nil
}

// dryRunAndInstanceIDs reads DryRun, then InstanceId.N: what the actions
// on a list of instances start with.
func dryRunAndInstanceIDs(p params) (dry bool, ids []string, err error) {
	if dry, err = p.dryRun(); err != nil {
		return false, nil, err
	}
	if ids, err = parseInstanceIDs(p); err != nil {
		return false, nil, err
	}
	return dry, ids, nil
}

// requiredInstanceID reads and checks InstanceId.
func requiredInstanceID(p params) (string, error) {
	id, err := p.required("InstanceId")
	if err != nil {
		return "", err
	}
	if !imds.ValidInstanceID(id) {
		return "", errInstanceMalformed(id)
	}
	return id, nil
}
