package config

import (
	"strings"
	"testing"
)

func TestRegionAccountAndZonesKeys(t *testing.T) {
	c, err := Parse(strings.NewReader("region: eu-west-1\naccount_id: \"210987654321\"\nzones: [eu-west-1a, eu-west-1c]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu-west-1" || c.AccountID != "210987654321" || strings.Join(c.Zones, ",") != "eu-west-1a,eu-west-1c" {
		t.Fatalf("parsed %+v", c)
	}
	for doc, key := range map[string]string{
		"region: Ireland\n":              "region:",
		"account_id: \"12345\"\n":        "account_id:",
		"account_id: \"abcdefghijkl\"\n": "account_id:",
	} {
		if _, err := Parse(strings.NewReader(doc)); err == nil || !strings.HasPrefix(err.Error(), key) {
			t.Errorf("%q: error %v, want one naming %s", doc, err, key)
		}
	}
}
