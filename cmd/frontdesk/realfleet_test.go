//go:build integration

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frontdesk-imds/frontdesk/internal/apiclient"
)

// The README's "Running a real fleet" walk-through, verbatim in spirit: the
// real AWS CLI creates a VPC and a subnet, imports a key pair, launches two
// instances into the subnet with the key, allocates and associates an
// Elastic IP, all against serve --region eu-west-1 --account-id
// 210987654321; then a guest in a network namespace, on the address the
// subnet gave it, reads its region, account, zone, key, subnet, VPC and
// public address over real packets.
func TestRealFleetFromCreateVpcToAGuest(t *testing.T) {
	requireNetnsTools(t, "curl")
	lockNetns(t)
	removeLeftovers(t)
	if hasAddress(t, imdsAddr) {
		t.Fatalf("%s is already on a host interface: another service owns it", imdsAddr)
	}
	const (
		hostAddr = "203.0.113.1"
		region   = "eu-west-1"
		account  = "210987654321"
	)
	sfx := randomSuffix(t)
	imdsLink, hostEnd, ns := netnsPrefix+"d"+sfx, netnsPrefix+"v"+sfx, netnsPrefix+"-real-"+sfx
	imdsOnHost(t, imdsLink)

	d := startDaemon(t, t.TempDir(), "--listen", imdsAddr+":80", "--region", region, "--account-id", account,
		"--public-ipv4-pool", "198.18.0.0/28")
	creds := filepath.Join(d.dataDir, "admin.credentials")
	aws := func(args ...string) map[string]any { t.Helper(); return runAWSIn(t, creds, d.apiURL, region, args...) }
	str := func(m map[string]any, path ...string) string {
		t.Helper()
		var v any = m
		for _, p := range path {
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				if len(x) == 0 {
					t.Fatalf("empty list at %s in %v", p, m)
				}
				v = x[0]
				if p != "0" {
					v = x[0].(map[string]any)[p]
				}
			}
		}
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(m)
			t.Fatalf("no string at %v in %s", path, b)
		}
		return s
	}

	pubFile := filepath.Join(t.TempDir(), "ops.pub")
	if err := os.WriteFile(pubFile, []byte(cliTestKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vpc := str(aws("ec2", "create-vpc", "--cidr-block", "203.0.113.0/24"), "Vpc", "VpcId")
	subnet := str(aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "203.0.113.0/28", "--availability-zone", region+"b"), "Subnet", "SubnetId")
	aws("ec2", "import-key-pair", "--key-name", "ops", "--public-key-material", "fileb://"+pubFile)
	run := aws("ec2", "run-instances", "--image-id", "ami-0abcdef1234567890", "--subnet-id", subnet, "--count", "2", "--key-name", "ops")
	insts := run["Instances"].([]any)
	if len(insts) != 2 {
		t.Fatalf("run-instances launched %d instances, want 2", len(insts))
	}
	second := insts[1].(map[string]any)
	id, guestIP := second["InstanceId"].(string), second["PrivateIpAddress"].(string)
	if guestIP != "203.0.113.5" {
		t.Fatalf("second instance got %s, want 203.0.113.5 (the first four of a subnet are reserved)", guestIP)
	}
	alloc := aws("ec2", "allocate-address")
	publicIP := str(alloc, "PublicIp")
	aws("ec2", "associate-address", "--allocation-id", str(alloc, "AllocationId"), "--instance-id", id)
	waitApplied(t.Context(), t, apiFor(t, d.dataDir, d.apiURL, func(o *apiclient.Options) { o.Region = region }), 2*time.Second, id)

	guestBehindHost(t, hostEnd, ns, hostAddr, guestIP)
	get := guestReader(t, ns)
	if got := get("meta-data/instance-id"); got != id {
		t.Fatalf("instance-id %q, want %s", got, id)
	}
	mac := get("meta-data/mac")
	want := map[string]string{
		"meta-data/placement/region":                                           region,
		"meta-data/placement/availability-zone":                                region + "b",
		"meta-data/placement/availability-zone-id":                             "euw1-az2",
		"meta-data/services/partition":                                         "aws",
		"meta-data/public-keys/":                                               "0=ops",
		"meta-data/public-keys/0/openssh-key":                                  cliTestKey + "\n",
		"meta-data/public-ipv4":                                                publicIP,
		"meta-data/public-hostname":                                            "ec2-" + strings.ReplaceAll(publicIP, ".", "-") + "." + region + ".compute.amazonaws.com",
		"meta-data/network/interfaces/macs/" + mac + "/subnet-id":              subnet,
		"meta-data/network/interfaces/macs/" + mac + "/vpc-id":                 vpc,
		"meta-data/network/interfaces/macs/" + mac + "/owner-id":               account,
		"meta-data/network/interfaces/macs/" + mac + "/public-ipv4s":           publicIP,
		"meta-data/network/interfaces/macs/" + mac + "/local-ipv4s":            guestIP,
		"meta-data/network/interfaces/macs/" + mac + "/subnet-ipv4-cidr-block": "203.0.113.0/28",
	}
	for path, w := range want {
		if got := get(path); got != w {
			t.Errorf("%s = %q, want %q", path, got, w)
		}
	}
	var doc struct{ Region, AccountID, AvailabilityZone, PrivateIP string }
	if err := json.Unmarshal([]byte(get("dynamic/instance-identity/document")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Region != region || doc.AccountID != account || doc.AvailabilityZone != region+"b" || doc.PrivateIP != guestIP {
		t.Errorf("identity document = %+v", doc)
	}
}
