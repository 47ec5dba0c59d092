package mdtree

import (
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestPublicKeyIsServedWithItsTrailingNewline(t *testing.T) {
	tr := Build(&imds.Instance{PublicKeys: []imds.PublicKey{{Name: "ops", OpenSSH: "ssh-ed25519 AAAA ops"}}})
	for path, want := range map[string]string{
		"meta-data/public-keys":               "0=ops",
		"meta-data/public-keys/0":             "openssh-key",
		"meta-data/public-keys/0/openssh-key": "ssh-ed25519 AAAA ops\n",
	} {
		n, ok := tr.Lookup(Latest, path)
		if !ok || string(n.Body) != want {
			t.Errorf("%s = %q (%v), want %q", path, n.Body, ok, want)
		}
	}
}

func TestHostIDIsServedOnlyForADedicatedHost(t *testing.T) {
	for id, served := range map[string]bool{
		"h-0123456789abcdef0": true,
		"node-a":              false,
		"h-0123456789ABCDEF0": false,
		"h-0123":              false,
	} {
		n, ok := Build(&imds.Instance{Placement: imds.Placement{Region: "us-east-1", HostID: id}}).Lookup(Latest, "meta-data/placement/host-id")
		if ok != served || (served && string(n.Body) != id) {
			t.Errorf("host id %q: served %v %q, want served %v", id, ok, n.Body, served)
		}
	}
}

func TestServicesFollowTheRegionsPartition(t *testing.T) {
	for region, want := range map[string][2]string{
		"cn-northwest-1": {"amazonaws.com.cn", "aws-cn"},
		"us-gov-west-1":  {"amazonaws.com", "aws-us-gov"},
		"eu-west-1":      {"amazonaws.com", "aws"},
	} {
		tr := Build(&imds.Instance{Placement: imds.Placement{Region: region}})
		d, _ := tr.Lookup(Latest, "meta-data/services/domain")
		p, _ := tr.Lookup(Latest, "meta-data/services/partition")
		if string(d.Body) != want[0] || string(p.Body) != want[1] {
			t.Errorf("%s: domain %q partition %q, want %v", region, d.Body, p.Body, want)
		}
	}
}
