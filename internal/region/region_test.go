package region

import "testing"

func TestShortCodeFollowsEC2ZoneIDs(t *testing.T) {
	for name, want := range map[string]string{
		"us-east-1":      "use1",
		"us-west-2":      "usw2",
		"eu-west-1":      "euw1",
		"eu-central-1":   "euc1",
		"eu-north-1":     "eun1",
		"ap-southeast-2": "apse2",
		"ap-northeast-1": "apne1",
		"sa-east-1":      "sae1",
		"ca-central-1":   "cac1",
		"us-gov-west-1":  "usgw1",
		"us-gov-east-1":  "usge1",
		"cn-north-1":     "cnn1",
		"cn-northwest-1": "cnnw1",
		"me-south-1":     "mes1",
	} {
		if got := ShortCode(name); got != want {
			t.Errorf("ShortCode(%s) = %s, want %s", name, got, want)
		}
	}
}

func TestPartitionAndDomain(t *testing.T) {
	for _, c := range []struct{ region, partition, domain string }{
		{"us-east-1", "aws", "amazonaws.com"},
		{"eu-west-1", "aws", "amazonaws.com"},
		{"cn-north-1", "aws-cn", "amazonaws.com.cn"},
		{"us-gov-west-1", "aws-us-gov", "amazonaws.com"},
	} {
		if p, d := Partition(c.region), Domain(c.region); p != c.partition || d != c.domain {
			t.Errorf("%s: partition %s domain %s, want %s %s", c.region, p, d, c.partition, c.domain)
		}
	}
}

func TestZoneIDNumbersZonesByLetter(t *testing.T) {
	for zone, want := range map[string]string{"eu-west-1a": "euw1-az1", "eu-west-1c": "euw1-az3", "ap-southeast-2b": "apse2-az2"} {
		r := zone[:len(zone)-1]
		if got := ZoneID(r, zone); got != want {
			t.Errorf("ZoneID(%s) = %s, want %s", zone, got, want)
		}
	}
}

func TestCheckZonesRefusesForeignAndRepeatedZones(t *testing.T) {
	if err := CheckZones("eu-west-1", []string{"eu-west-1a", "eu-west-1c"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"us-east-1a"}, {"eu-west-1a", "eu-west-1a"}, {"eu-west-1"}, {"eu-west-1ab"}, nil} {
		if err := CheckZones("eu-west-1", bad); err == nil {
			t.Errorf("CheckZones(%v) accepted", bad)
		}
	}
}

func TestValidNamesAndAccounts(t *testing.T) {
	if !Valid("us-gov-west-1") || Valid("useast1") || Valid("US-EAST-1") {
		t.Fatal("region name check is wrong")
	}
	if !ValidAccountID("210987654321") || ValidAccountID("12345") || ValidAccountID("12345678901a") {
		t.Fatal("account id check is wrong")
	}
	if got := ARN("cn-north-1", "iam", "", "210987654321", "role/web"); got != "arn:aws-cn:iam::210987654321:role/web" {
		t.Fatal(got)
	}
}
