// Package region derives what EC2 names after a region and an account: the
// partition and its DNS domain, the short region code of availability-zone
// ids (use1, euw1, apse2), the default zones, and ARNs. It holds no state;
// every answer follows from the names alone, so the control plane, the
// metadata tree and the credential wiring agree without sharing anything.
package region

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Defaults of a frontdesk that was told nothing else.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
)

var (
	nameRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
)

// Valid reports whether name has the form of an AWS region name
// (eu-west-1, us-gov-west-1, ap-southeast-2).
func Valid(name string) bool { return nameRe.MatchString(name) }

// ValidAccountID reports whether id is a 12-digit AWS account id.
func ValidAccountID(id string) bool { return accountRe.MatchString(id) }

// Partition is the ARN partition of a region: aws-cn for cn-*, aws-us-gov
// for us-gov-*, aws-iso and aws-iso-b for the isolated regions, aws
// otherwise.
func Partition(name string) string {
	switch {
	case strings.HasPrefix(name, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(name, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(name, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(name, "us-iso-"):
		return "aws-iso"
	}
	return "aws"
}

// Domain is the DNS domain of a region's partition, as IMDS serves it at
// services/domain.
func Domain(name string) string {
	switch Partition(name) {
	case "aws-cn":
		return "amazonaws.com.cn"
	case "aws-iso":
		return "c2s.ic.gov"
	case "aws-iso-b":
		return "sc2s.sgov.gov"
	}
	return "amazonaws.com"
}

// directions are the abbreviations of the words in a region name that EC2
// uses in zone ids: eu-west-1 → euw1, ap-southeast-2 → apse2.
var directions = map[string]string{
	"east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
	"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
	"gov": "g",
}

// ShortCode is the short form of a region in its zone ids: the leading
// country or area code kept, every following word abbreviated (east → e,
// southeast → se, gov → g, any other word to its first letter), then the
// number. us-east-1 → use1, us-gov-west-1 → usgw1, cn-north-1 → cnn1.
func ShortCode(name string) string {
	parts := strings.Split(name, "-")
	if len(parts) < 2 {
		return name
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		if d, ok := directions[p]; ok {
			b.WriteString(d)
		} else if p != "" {
			b.WriteByte(p[0])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// DefaultZones are the zones of a region that was given no zone list: its
// a, b and c zones.
func DefaultZones(name string) []string {
	return []string{name + "a", name + "b", name + "c"}
}

// ZoneID is the id of a zone of the region, in EC2's form (use1-az1): the
// zone letter's position in the alphabet is the az number, so a zone keeps
// its id whatever the configured zone list. (Real zone ids are mapped per
// account; a stable derivation is what an emulator can offer.)
func ZoneID(regionName, zone string) string {
	n := 1
	if s, ok := strings.CutPrefix(zone, regionName); ok && len(s) == 1 && s[0] >= 'a' && s[0] <= 'z' {
		n = int(s[0]-'a') + 1
	}
	return ShortCode(regionName) + "-az" + strconv.Itoa(n)
}

// CheckZones validates a zone list for a region: each zone is the region
// name and one letter, none twice.
func CheckZones(regionName string, zones []string) error {
	if len(zones) == 0 {
		return fmt.Errorf("zones: at least one zone is needed")
	}
	seen := map[string]bool{}
	for _, z := range zones {
		s, ok := strings.CutPrefix(z, regionName)
		if !ok || len(s) != 1 || s[0] < 'a' || s[0] > 'z' {
			return fmt.Errorf("zones: %q is not a zone of %s (%sa, %sb, ...)", z, regionName, regionName, regionName)
		}
		if seen[z] {
			return fmt.Errorf("zones: %q is listed twice", z)
		}
		seen[z] = true
	}
	return nil
}

// ARN builds an ARN in the region's partition. Global services (IAM) pass
// an empty region.
func ARN(partitionOf, service, regionName, account, resource string) string {
	return "arn:" + Partition(partitionOf) + ":" + service + ":" + regionName + ":" + account + ":" + resource
}

// Endpoint is the EC2 endpoint host of a region as DescribeRegions names it.
func Endpoint(name string) string { return "ec2." + name + "." + Domain(name) }
