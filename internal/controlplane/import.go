package controlplane

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Bulk import and export of an inventory (EXTENSIONS.md). A line is the
// JSON object `aws ec2 run-instances --cli-input-json` takes, the subset
// frontdesk supports; a batch of lines is launched in one store
// transaction, all or nothing.

// Extension actions of this file.
const (
	ActionImportInstances = "FrontdeskImportInstances"
	ActionExportInstances = "FrontdeskExportInstances"
)

// MaxImportBatch bounds the lines of one FrontdeskImportInstances request.
// With etcd each instance is a few operations of one transaction, and etcd
// bounds those (--max-txn-ops, 128 by default): clients send smaller
// batches unless the cluster allows more.
const MaxImportBatch = 1000

// maxExportPage bounds the lines of one FrontdeskExportInstances answer.
const maxExportPage = 1000

// importFields are the run-instances fields frontdesk takes, and the Query
// name of each (EC2 names a list by its member). Nested objects keep their
// member names, except the few lists below.
var importFields = map[string]string{
	"ImageId": "ImageId", "InstanceType": "InstanceType", "MinCount": "MinCount", "MaxCount": "MaxCount",
	"PrivateIpAddress": "PrivateIpAddress", "Ipv6Addresses": "Ipv6Address", "Ipv6AddressCount": "Ipv6AddressCount",
	"SubnetId": "SubnetId", "Placement": "Placement", "IamInstanceProfile": "IamInstanceProfile",
	"KeyName": "KeyName", "UserData": "UserData", "TagSpecifications": "TagSpecification",
	"MetadataOptions": "MetadataOptions", "NetworkInterfaces": "NetworkInterface",
	"BlockDeviceMappings": "BlockDeviceMapping", "KernelId": "KernelId", "RamdiskId": "RamdiskId",
}

// nestedListNames renames lists inside objects, by their JSON name.
var nestedListNames = map[string]string{"Tags": "Tag", "Groups": "SecurityGroupId"}

// lineParams turns one JSON line into RunInstances Query parameters.
func lineParams(line []byte) (params, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return params{}, errInvalid("not a JSON object: " + err.Error())
	}
	if dec.More() {
		return params{}, errInvalid("more than one JSON value on the line")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	m := map[string]string{}
	for _, k := range keys {
		name, ok := importFields[k]
		if !ok {
			return params{}, errInvalid("field " + k + " is not supported by frontdesk")
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(obj[k]))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return params{}, errInvalid("field " + k + ": " + err.Error())
		}
		if err := flatten(m, name, v); err != nil {
			return params{}, err
		}
	}
	return params{v: m}, nil
}

// flatten writes v under name in the Query form: objects as name.Member,
// lists as name.1, name.2, ...
func flatten(m map[string]string, name string, v any) error {
	switch x := v.(type) {
	case nil:
	case string:
		m[name] = x
	case json.Number:
		m[name] = x.String()
	case bool:
		m[name] = strconv.FormatBool(x)
	case map[string]any:
		for k, sub := range x {
			member := k
			if _, isList := sub.([]any); isList {
				if n, ok := nestedListNames[k]; ok {
					member = n
				}
			}
			if err := flatten(m, name+"."+member, sub); err != nil {
				return err
			}
		}
	case []any:
		for i, sub := range x {
			if err := flatten(m, name+"."+strconv.Itoa(i+1), sub); err != nil {
				return err
			}
		}
	default:
		return errInvalid(fmt.Sprintf("field %s: unsupported JSON value", name))
	}
	return nil
}

// atLine names the input line of a refused item in the error, keeping the
// EC2 code. Unavailable and internal errors are returned as they are.
func atLine(line int, err error) error {
	ae := toAPIError(err)
	if ae == errUnavailable || ae == errInternal {
		return err
	}
	return newAPIError(ae.Status, ae.Code, "line "+strconv.Itoa(line)+": "+ae.Message)
}

type importItem struct {
	line int
	spec *launchSpec
}

type importedXML struct {
	Line       int    `xml:"line"`
	InstanceID string `xml:"instanceId"`
}

type importResponse struct {
	respMeta
	Items []importedXML `xml:"instancesSet>item"`
}

// importInstances: Instance.N.Json (one run-instances object) and
// Instance.N.Line (its line in the caller's file, for errors; default N).
// Every instance of the request is launched in one store transaction, or
// none is.
func (s *Server) importInstances(ctx context.Context, p params) (response, error) {
	dryRun, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	list, err := p.list("Instance")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errMissing("Instance.1.Json")
	}
	if len(list) > MaxImportBatch {
		return nil, errInvalid("At most " + strconv.Itoa(MaxImportBatch) + " instances per request.")
	}
	items := make([]importItem, 0, len(list))
	for i, it := range list {
		line := i + 1
		if v, ok := it.get("Line"); ok {
			if line, err = strconv.Atoi(v); err != nil || line < 1 {
				return nil, errInvalid("Invalid value '" + v + "' for " + it.name("Line") + ".")
			}
		}
		raw, err := it.required("Json")
		if err != nil {
			return nil, err
		}
		lp, err := lineParams([]byte(raw))
		if err != nil {
			return nil, atLine(line, err)
		}
		if _, ok := lp.get("ClientToken"); ok {
			return nil, atLine(line, errInvalid("ClientToken is not taken on import"))
		}
		sp, err := s.parseLaunch(lp)
		if err != nil {
			return nil, atLine(line, err)
		}
		items = append(items, importItem{line: line, spec: sp})
	}
	var out []importedXML
	var ids []string
	err = s.update(ctx, dryRun, func(tx imds.Tx) error {
		out, ids = out[:0], ids[:0]
		acct, err := imds.GetDefaults(tx)
		if err != nil {
			return err
		}
		for _, it := range items {
			l, err := s.launchInTx(tx, it.spec, acct)
			if err != nil {
				return atLine(it.line, err)
			}
			for _, in := range l.instances {
				out = append(out, importedXML{Line: it.line, InstanceID: in.InstanceID})
				ids = append(ids, in.InstanceID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	noteChange(ctx, ids, map[string]string{"Imported": strconv.Itoa(len(ids))})
	return &importResponse{Items: out}, nil
}

// launch is what one launch wrote: its instances, their resolved
// metadata options and their reservation.
type launch struct {
	instances     []*imds.Instance
	options       imds.MetadataOptions
	reservationID string
}

// launchInTx launches the instances of one RunInstances request (or one
// import line) in tx: options against the account defaults, key pair,
// addresses (given or allocated in the subnet), public addresses.
func (s *Server) launchInTx(tx imds.Tx, sp *launchSpec, acct imds.AccountDefaults) (launch, error) {
	opts, err := imds.LaunchOptions(sp.options, acct, false)
	if err != nil {
		if errors.Is(err, imds.ErrTokensEnforced) {
			return launch{}, errTokensEnforced()
		}
		return launch{}, err
	}
	if err := s.resolveKeyPair(tx, sp); err != nil {
		return launch{}, err
	}
	if opts.InstanceMetadataTags == imds.Enabled {
		if err := checkMetadataTagKeys(sp.tags); err != nil {
			return launch{}, err
		}
	}
	reservationID, err := newID("r-")
	if err != nil {
		return launch{}, err
	}
	addrSets, err := s.launchNetwork(tx, sp)
	if err != nil {
		return launch{}, err
	}
	l := launch{options: opts, reservationID: reservationID}
	for i, enis := range addrSets {
		in, err := s.newInstance(tx, sp, enis, opts, reservationID, i)
		if err != nil {
			return launch{}, err
		}
		if err := s.assignPublicIPs(tx, in, enis); err != nil {
			return launch{}, err
		}
		if err := imds.PutInstance(tx, in); err != nil {
			return launch{}, err
		}
		l.instances = append(l.instances, in)
	}
	return l, nil
}

type exportResponse struct {
	respMeta
	Lines     []string `xml:"lineSet>item"`
	NextToken string   `xml:"nextToken,omitempty"`
}

// exportInstances: MaxResults (default and most 1000), NextToken. Answers
// one line per live instance, in id order, in the form importInstances
// takes.
func (s *Server) exportInstances(ctx context.Context, p params) (response, error) {
	limit := maxExportPage
	if n, err := p.intOpt("MaxResults"); err != nil {
		return nil, err
	} else if n != nil {
		if *n < 1 || *n > maxExportPage {
			return nil, errInvalid("MaxResults must be between 1 and " + strconv.Itoa(maxExportPage) + ".")
		}
		limit = *n
	}
	after := p.str("NextToken")
	resp := &exportResponse{}
	err := s.store.View(ctx, func(tx imds.Tx) error {
		resp.Lines, resp.NextToken = resp.Lines[:0], ""
		last := ""
		return imds.ListInstances(tx, func(in *imds.Instance) error {
			if !in.Live() || in.InstanceID <= after {
				return nil
			}
			if len(resp.Lines) == limit {
				resp.NextToken = last
				return errStopExport
			}
			b, err := json.Marshal(exportLine(in))
			if err != nil {
				return err
			}
			resp.Lines = append(resp.Lines, string(b))
			last = in.InstanceID
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStopExport) {
		return nil, err
	}
	return resp, nil
}

var errStopExport = errors.New("export page full")

// Line is one instance in the run-instances form (the fields frontdesk
// exports; import takes more).
type Line struct {
	ImageId            string            `json:"ImageId"`
	InstanceType       string            `json:"InstanceType,omitempty"`
	KernelId           string            `json:"KernelId,omitempty"`
	RamdiskId          string            `json:"RamdiskId,omitempty"`
	PrivateIpAddress   string            `json:"PrivateIpAddress,omitempty"`
	Ipv6Addresses      []lineIPv6        `json:"Ipv6Addresses,omitempty"`
	NetworkInterfaces  []lineInterface   `json:"NetworkInterfaces,omitempty"`
	Placement          *linePlacement    `json:"Placement,omitempty"`
	IamInstanceProfile *lineProfile      `json:"IamInstanceProfile,omitempty"`
	KeyName            string            `json:"KeyName,omitempty"`
	UserData           string            `json:"UserData,omitempty"`
	TagSpecifications  []lineTagSpec     `json:"TagSpecifications,omitempty"`
	MetadataOptions    *lineMetadataOpts `json:"MetadataOptions,omitempty"`
}

type lineIPv6 struct {
	Ipv6Address string `json:"Ipv6Address"`
}

type linePrivateIP struct {
	PrivateIpAddress string `json:"PrivateIpAddress"`
	Primary          bool   `json:"Primary"`
}

type lineInterface struct {
	DeviceIndex        int             `json:"DeviceIndex"`
	PrivateIpAddresses []linePrivateIP `json:"PrivateIpAddresses,omitempty"`
	Ipv6Addresses      []lineIPv6      `json:"Ipv6Addresses,omitempty"`
}

type linePlacement struct {
	AvailabilityZone string `json:"AvailabilityZone,omitempty"`
	GroupName        string `json:"GroupName,omitempty"`
	PartitionNumber  int    `json:"PartitionNumber,omitempty"`
	HostId           string `json:"HostId,omitempty"`
	Tenancy          string `json:"Tenancy,omitempty"`
}

type lineProfile struct {
	Arn string `json:"Arn"`
}

type lineTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type lineTagSpec struct {
	ResourceType string    `json:"ResourceType"`
	Tags         []lineTag `json:"Tags"`
}

type lineMetadataOpts struct {
	HttpTokens              string `json:"HttpTokens"`
	HttpPutResponseHopLimit int    `json:"HttpPutResponseHopLimit"`
	HttpEndpoint            string `json:"HttpEndpoint"`
	HttpProtocolIpv6        string `json:"HttpProtocolIpv6"`
	InstanceMetadataTags    string `json:"InstanceMetadataTags"`
}

// exportLine is the run-instances object that launches a copy of in.
func exportLine(in *imds.Instance) Line {
	l := Line{ImageId: in.ImageID, InstanceType: in.InstanceType, KernelId: in.KernelID, RamdiskId: in.RamdiskID}
	switch nis := in.NetworkInterfaces; {
	case len(nis) == 1 && len(nis[0].PrivateIPv4s) <= 1:
		if len(nis[0].PrivateIPv4s) == 1 {
			l.PrivateIpAddress = nis[0].PrivateIPv4s[0]
		}
		for _, a := range nis[0].IPv6s {
			l.Ipv6Addresses = append(l.Ipv6Addresses, lineIPv6{a})
		}
	default:
		for _, ni := range nis {
			li := lineInterface{DeviceIndex: ni.DeviceIndex}
			for i, a := range ni.PrivateIPv4s {
				li.PrivateIpAddresses = append(li.PrivateIpAddresses, linePrivateIP{PrivateIpAddress: a, Primary: i == 0})
			}
			for _, a := range ni.IPv6s {
				li.Ipv6Addresses = append(li.Ipv6Addresses, lineIPv6{a})
			}
			l.NetworkInterfaces = append(l.NetworkInterfaces, li)
		}
	}
	pl := in.Placement
	lp := linePlacement{AvailabilityZone: pl.AvailabilityZone, GroupName: pl.GroupName, PartitionNumber: pl.PartitionNumber, HostId: pl.HostID}
	if pl.Tenancy != "" && pl.Tenancy != "default" {
		lp.Tenancy = pl.Tenancy
	}
	l.Placement = &lp
	if p := in.IAMInstanceProfile; p != nil {
		l.IamInstanceProfile = &lineProfile{Arn: p.Arn}
	}
	if len(in.PublicKeys) > 0 {
		l.KeyName = in.PublicKeys[0].Name
	}
	if len(in.UserData) > 0 {
		l.UserData = base64.StdEncoding.EncodeToString(in.UserData)
	}
	if len(in.Tags) > 0 {
		ts := lineTagSpec{ResourceType: "instance"}
		for _, t := range in.Tags {
			ts.Tags = append(ts.Tags, lineTag{Key: t.Key, Value: t.Value})
		}
		l.TagSpecifications = []lineTagSpec{ts}
	}
	o := in.MetadataOptions
	l.MetadataOptions = &lineMetadataOpts{HttpTokens: o.HttpTokens, HttpPutResponseHopLimit: o.HttpPutResponseHopLimit,
		HttpEndpoint: o.HttpEndpoint, HttpProtocolIpv6: o.HttpProtocolIPv6, InstanceMetadataTags: o.InstanceMetadataTags}
	return l
}
