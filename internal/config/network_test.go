package config

import (
	"strings"
	"testing"
)

func TestPublicIPv4Pool(t *testing.T) {
	c, err := Parse(strings.NewReader("public_ipv4_pool: 203.0.113.0/24\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PublicPool().String(); got != "203.0.113.0/24" {
		t.Errorf("pool %s", got)
	}
	empty, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if empty.PublicPool().IsValid() {
		t.Errorf("no key gave pool %s", empty.PublicPool())
	}
	for _, bad := range []string{"203.0.113.1/24", "10.0.0.0/8", "2001:db8::/64", "nonsense"} {
		_, err := Parse(strings.NewReader("public_ipv4_pool: " + bad + "\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "public_ipv4_pool: ") {
			t.Errorf("%s: %v, want an error naming public_ipv4_pool", bad, err)
		}
	}
}
