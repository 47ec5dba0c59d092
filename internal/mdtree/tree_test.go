package mdtree

import (
	"bytes"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

func TestFixturesAreValidInstances(t *testing.T) {
	for name, in := range map[string]*imds.Instance{"rich": richInstance(t), "plain": plainInstance(t)} {
		if err := in.Validate(); err != nil {
			t.Errorf("%s fixture: %v", name, err)
		}
	}
}

// listed reports whether the listing of p's parent has an entry for p's last
// segment (as "name" or "name/").
func listed(t *testing.T, tree *Tree, version, p string) bool {
	t.Helper()
	parent, name := path.Split(p)
	n, ok := tree.Lookup(version, strings.TrimSuffix(parent, "/"))
	if !ok {
		return false
	}
	for _, line := range strings.Split(string(n.Body), "\n") {
		if strings.TrimSuffix(line, "/") == name {
			return true
		}
	}
	return false
}

func TestAbsentCategoriesAre404AndUnlisted(t *testing.T) {
	plain := Build(plainInstance(t))
	ipv6Only := plainInstance(t)
	ipv6Only.NetworkInterfaces[0].PrivateIPv4s = nil
	ipv6Only.NetworkInterfaces[0].IPv6s = []string{"2001:db8::5"}
	v6 := Build(ipv6Only)
	const eth0 = "meta-data/network/interfaces/macs/0e:00:00:00:00:aa/"

	tests := []struct {
		name string
		tree *Tree
		path string
	}{
		{"no_profile_has_no_iam", plain, "meta-data/iam"},
		{"no_profile_has_no_iam_info", plain, "meta-data/iam/info"},
		{"tags_disabled_hides_tags_even_when_tagged", plain, "meta-data/tags"},
		{"tags_disabled_hides_tag_values", plain, "meta-data/tags/instance/Name"},
		{"no_spot_notice_has_no_spot", plain, "meta-data/spot"},
		{"no_spot_notice_has_no_instance_action", plain, "meta-data/spot/instance-action"},
		{"no_rebalance_has_no_recommendations", plain, "meta-data/events/recommendations"},
		{"no_rebalance_has_no_rebalance", plain, "meta-data/events/recommendations/rebalance"},
		{"no_lifecycle_transition_has_no_autoscaling", plain, "meta-data/autoscaling"},
		{"no_keys_has_no_public_keys", plain, "meta-data/public-keys"},
		{"no_devices_has_no_block_device_mapping", plain, "meta-data/block-device-mapping"},
		{"no_ipv6_has_no_ipv6", plain, "meta-data/ipv6"},
		{"no_public_address_has_no_public_ipv4", plain, "meta-data/public-ipv4"},
		{"no_public_address_has_no_public_hostname", plain, "meta-data/public-hostname"},
		{"no_kernel_has_no_kernel_id", plain, "meta-data/kernel-id"},
		{"no_ramdisk_has_no_ramdisk_id", plain, "meta-data/ramdisk-id"},
		{"no_ancestors_has_no_ancestor_ami_ids", plain, "meta-data/ancestor-ami-ids"},
		{"no_product_codes_has_no_product_codes", plain, "meta-data/product-codes"},
		{"no_profile_value_has_no_profile", plain, "meta-data/profile"},
		{"no_placement_group_has_no_group_name", plain, "meta-data/placement/group-name"},
		{"no_dedicated_host_has_no_host_id", plain, "meta-data/placement/host-id"},
		{"no_partition_has_no_partition_number", plain, "meta-data/placement/partition-number"},
		{"single_card_type_has_no_network_card", plain, eth0 + "network-card"},
		{"no_ipv4_prefixes_has_no_ipv4_prefix", plain, eth0 + "ipv4-prefix"},
		{"no_ipv6_prefixes_has_no_ipv6_prefix", plain, eth0 + "ipv6-prefix"},
		{"no_ipv6_has_no_ipv6s", plain, eth0 + "ipv6s"},
		{"no_public_address_has_no_ipv4_associations", plain, eth0 + "ipv4-associations"},
		{"no_public_address_has_no_public_ipv4s", plain, eth0 + "public-ipv4s"},
		{"no_ipv6_subnet_has_no_subnet_ipv6_cidr_blocks", plain, eth0 + "subnet-ipv6-cidr-blocks"},
		{"no_user_data_has_no_user_data", plain, "user-data"},
		{"ipv6_only_has_no_local_ipv4", v6, "meta-data/local-ipv4"},
		{"ipv6_only_has_no_local_ipv4s", v6, eth0 + "local-ipv4s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, version := range []string{"latest", "2024-04-11"} {
				if n, ok := tc.tree.Lookup(version, tc.path); ok {
					t.Errorf("%s %s: got %s %q, want 404", version, tc.path, n.Kind, n.Body)
				}
				if listed(t, tc.tree, version, tc.path) {
					t.Errorf("%s %s: still listed by its parent", version, tc.path)
				}
			}
		})
	}
}

func TestAlwaysPresentCategories(t *testing.T) {
	plain := Build(plainInstance(t))
	v6 := plainInstance(t)
	v6.NetworkInterfaces[0].PrivateIPv4s = nil
	v6.NetworkInterfaces[0].IPv6s = []string{"2001:db8::5"}
	tests := []struct {
		name, path, want string
		tree             *Tree
	}{
		{"version_root_without_user_data_lists_two_entries", "", "dynamic\nmeta-data", plain},
		{"scheduled_events_without_events_is_empty_array", "meta-data/events/maintenance/scheduled", "[]", plain},
		{"history_without_events_is_empty_array", "meta-data/events/maintenance/history", "[]", plain},
		{"ebs_backed_ami_manifest_path_is_unknown", "meta-data/ami-manifest-path", "(unknown)", plain},
		{"instance_action_defaults_to_none", "meta-data/instance-action", "none", plain},
		{"life_cycle_defaults_to_on_demand", "meta-data/instance-life-cycle", "on-demand", plain},
		{"monitoring_defaults_to_disabled", "dynamic/fws/instance-monitoring", "disabled", plain},
		{"identity_credentials_without_profile", "meta-data/identity-credentials/ec2/security-credentials", "ec2-instance", plain},
		{"ipv6_only_instance_serves_ipv6", "meta-data/ipv6", "2001:db8::5", Build(v6)},
		{"identity_listing_in_ug_order_without_dsa2048", "dynamic/instance-identity", "rsa2048\npkcs7\ndocument\nsignature", plain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := tc.tree.Lookup("latest", tc.path)
			if !ok || string(n.Body) != tc.want {
				t.Errorf("Lookup(latest, %q) = %q, %v; want %q", tc.path, n.Body, ok, tc.want)
			}
		})
	}
}

func TestVersionGating(t *testing.T) {
	tree := Build(richInstance(t))
	const eth0 = "meta-data/network/interfaces/macs/0e:00:00:00:00:01/"
	tests := []struct {
		name, version, path string
		wantOK              bool
		wantBody            string // checked when not empty
	}{
		{"2009_04_04_has_no_iam", "2009-04-04", "meta-data/iam", false, ""},
		{"2009_04_04_has_no_iam_credentials", "2009-04-04", "meta-data/iam/security-credentials/web-role", false, ""},
		{"2009_04_04_has_no_tags", "2009-04-04", "meta-data/tags/instance", false, ""},
		{"2009_04_04_has_no_network", "2009-04-04", "meta-data/network", false, ""},
		{"2009_04_04_has_no_mac", "2009-04-04", "meta-data/mac", false, ""},
		{"2009_04_04_has_dynamic", "2009-04-04", "dynamic/instance-identity/document", true, ""},
		{"2008_09_01_has_no_dynamic", "2008-09-01", "dynamic", false, ""},
		{"2008_09_01_root_lists_no_dynamic", "2008-09-01", "", true, "meta-data\nuser-data"},
		{"2012_01_12_has_iam", "2012-01-12", "meta-data/iam/security-credentials", true, "web-role"},
		{"2016_09_02_local_ipv4s_single_valued", "2016-09-02", eth0 + "local-ipv4s", true, "192.0.2.10"},
		{"2016_09_02_ipv6s_single_valued", "2016-09-02", eth0 + "ipv6s", true, "2001:db8:0:1::10"},
		{"2018_08_17_local_ipv4s_single_valued", "2018-08-17", eth0 + "local-ipv4s", true, "192.0.2.10"},
		{"2018_09_24_local_ipv4s_multi_valued", "2018-09-24", eth0 + "local-ipv4s", true, "192.0.2.10\n192.0.2.11"},
		{"latest_ipv6s_multi_valued", "latest", eth0 + "ipv6s", true, "2001:db8:0:1::10\n2001:db8:0:1::11"},
		{"2016_06_30_has_vpc_ipv4_cidr_blocks", "2016-06-30", eth0 + "vpc-ipv4-cidr-blocks", true, ""},
		{"2016_04_19_has_no_vpc_ipv4_cidr_blocks", "2016-04-19", eth0 + "vpc-ipv4-cidr-blocks", false, ""},
		{"2016_09_02_spot_lists_only_termination_time", "2016-09-02", "meta-data/spot", true, "termination-time"},
		{"2016_09_02_has_no_spot_instance_action", "2016-09-02", "meta-data/spot/instance-action", false, ""},
		{"2018_03_28_has_spot_instance_action", "2018-03-28", "meta-data/spot/instance-action", true, ""},
		{"2018_03_28_has_no_identity_credentials", "2018-03-28", "meta-data/identity-credentials", false, ""},
		{"2018_08_17_has_identity_credentials", "2018-08-17", "meta-data/identity-credentials/ec2/info", true, ""},
		{"2018_08_17_events_lists_only_maintenance", "2018-08-17", "meta-data/events", true, "maintenance/"},
		{"2020_10_27_events_lists_recommendations", "2020-10-27", "meta-data/events", true, "maintenance/\nrecommendations/"},
		{"2019_10_01_placement_has_no_region", "2019-10-01", "meta-data/placement", true, "availability-zone\navailability-zone-id"},
		{"2020_10_27_has_no_network_card", "2020-10-27", "meta-data/network/interfaces/macs/0e:00:00:00:00:02/network-card", false, ""},
		{"2021_01_03_has_network_card", "2021-01-03", "meta-data/network/interfaces/macs/0e:00:00:00:00:02/network-card", true, "1"},
		{"2020_10_27_has_no_ipv6", "2020-10-27", "meta-data/ipv6", false, ""},
		{"2021_01_03_has_no_tags", "2021-01-03", "meta-data/tags", false, ""},
		{"2021_03_23_has_tags", "2021-03-23", "meta-data/tags/instance", true, "Name\nEnvironment"},
		{"2021_03_23_has_no_autoscaling", "2021-03-23", "meta-data/autoscaling", false, ""},
		{"2021_07_15_has_autoscaling", "2021-07-15", "meta-data/autoscaling/target-lifecycle-state", true, "InService"},
		{"2014_02_25_services_lists_only_domain", "2014-02-25", "meta-data/services", true, "domain"},
		{"1_0_has_user_data", "1.0", "user-data", true, "#!/bin/sh\necho hello\n"},
		{"unknown_dated_version_is_404", "2099-01-01", "meta-data/ami-id", false, ""},
		{"unknown_version_root_is_404", "2013-01-01", "", false, ""},
		{"version_names_are_case_sensitive", "LATEST", "meta-data/ami-id", false, ""},
		{"empty_version_is_404", "", "meta-data/ami-id", false, ""},
		{"unknown_category_is_404", "latest", "meta-data/no-such-thing", false, ""},
		{"path_below_a_leaf_is_404", "latest", "meta-data/ami-id/more", false, ""},
		{"dated_path_below_a_leaf_is_404", "2021-07-15", "meta-data/ami-id/more", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := tree.Lookup(tc.version, tc.path)
			if ok != tc.wantOK {
				t.Fatalf("Lookup(%q, %q) ok = %v, want %v (body %q)", tc.version, tc.path, ok, tc.wantOK, n.Body)
			}
			if tc.wantBody != "" && string(n.Body) != tc.wantBody {
				t.Errorf("Lookup(%q, %q) = %q, want %q", tc.version, tc.path, n.Body, tc.wantBody)
			}
			if !tc.wantOK && tc.path != "" && listed(t, tree, tc.version, tc.path) {
				t.Errorf("%s is listed by its parent in %s", tc.path, tc.version)
			}
		})
	}
}

// latestPaths returns every path of the "latest" tree, found by crawling.
func latestPaths(t *testing.T, tree *Tree) []string {
	t.Helper()
	var paths []string
	walk(t, tree, "latest", func(p string, _ Node) { paths = append(paths, p) })
	return paths
}

func TestEveryNodeIsListedExactlyOnce(t *testing.T) {
	tree := Build(richInstance(t))
	paths := latestPaths(t, tree)
	if len(paths) != len(tree.latest) {
		t.Errorf("crawl found %d nodes, the tree holds %d: some node is unlisted or listed twice", len(paths), len(tree.latest))
	}
	for _, p := range paths {
		if _, ok := tree.latest[p]; !ok {
			t.Errorf("crawled path %q is not in the latest index", p)
		}
	}
}

func TestTrailingSlashIsTheSameNode(t *testing.T) {
	tree := Build(richInstance(t))
	for _, version := range []string{"latest", "2016-09-02"} {
		t.Run("version_"+version, func(t *testing.T) {
			walk(t, tree, version, func(p string, n Node) {
				m, ok := tree.Lookup(version, p+"/")
				if !ok || !reflect.DeepEqual(m, n) {
					t.Errorf("%q and %q/ differ: %v %q vs %q", p, p, ok, m.Body, n.Body)
				}
			})
		})
	}
}

func TestNewestDatedVersionMatchesLatest(t *testing.T) {
	tree := Build(richInstance(t))
	for _, p := range latestPaths(t, tree) {
		a, _ := tree.Lookup("latest", p)
		b, ok := tree.Lookup("2024-04-11", p)
		if !ok || !reflect.DeepEqual(a, b) {
			t.Errorf("%q: 2024-04-11 gives %v %s %q, latest %s %q", p, ok, b.Kind, b.Body, a.Kind, a.Body)
		}
	}
}

func TestDynamicNodes(t *testing.T) {
	tree := Build(richInstance(t))
	tests := []struct {
		path     string
		kind     Kind
		role     string
		wantBody []byte
	}{
		{"meta-data/iam/info", RoleInfo, "web-role", nil},
		{"meta-data/iam/security-credentials/web-role", RoleCredentials, "web-role", nil},
		{"meta-data/identity-credentials/ec2/info", IdentityCredentialsInfo, "", nil},
		{"meta-data/identity-credentials/ec2/security-credentials/ec2-instance", IdentityCredentials, "", nil},
		{"dynamic/instance-identity/signature", IdentitySignature, "", nil},
		{"dynamic/instance-identity/pkcs7", IdentityPKCS7, "", nil},
		{"dynamic/instance-identity/rsa2048", IdentityRSA2048, "", nil},
		{"dynamic/instance-identity/document", Static, "", tree.Document()},
		{"user-data", UserData, "", []byte("#!/bin/sh\necho hello\n")},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.path, "/", "_")+"_is_"+tc.kind.String(), func(t *testing.T) {
			n, ok := tree.Lookup("latest", tc.path)
			if !ok || n.Kind != tc.kind || n.Role != tc.role || !bytes.Equal(n.Body, tc.wantBody) {
				t.Errorf("got %v %s role=%q body=%q; want %s role=%q body=%q", ok, n.Kind, n.Role, n.Body, tc.kind, tc.role, tc.wantBody)
			}
		})
	}
	if _, ok := tree.Lookup("latest", "meta-data/iam/security-credentials/other-role"); ok {
		t.Error("a role other than the attached one must 404")
	}
	if _, ok := tree.Lookup("latest", "dynamic/instance-identity/dsa2048"); ok {
		t.Error("dsa2048 must 404: frontdesk cannot produce it")
	}
}

func TestBuildDoesNotAliasTheInstance(t *testing.T) {
	in := richInstance(t)
	tree := Build(in)
	in.UserData[0] = 'X'
	in.Tags[0].Value = "changed"
	n, _ := tree.Lookup("latest", "user-data")
	if n.Body[0] != '#' {
		t.Error("changing the instance's user data after Build changed the tree")
	}
}

func TestBuildNilInstanceServesOnlyDefaults(t *testing.T) {
	tree := Build(nil)
	if _, ok := tree.Lookup("latest", "meta-data/instance-action"); !ok {
		t.Error("an empty instance still has instance-action")
	}
	if _, ok := tree.Lookup("latest", "meta-data/instance-id"); ok {
		t.Error("an empty instance has no instance-id")
	}
}

func TestServicesFollowThePartition(t *testing.T) {
	tests := []struct{ name, region, az, domain, partition string }{
		{"commercial_region", "eu-central-1", "eu-central-1b", "amazonaws.com", "aws"},
		{"china_region", "cn-north-1", "cn-north-1a", "amazonaws.com.cn", "aws-cn"},
		{"govcloud_region", "us-gov-west-1", "us-gov-west-1a", "amazonaws.com", "aws-us-gov"},
		{"region_derived_from_az", "", "cn-northwest-1c", "amazonaws.com.cn", "aws-cn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := plainInstance(t)
			in.Placement.Region, in.Placement.AvailabilityZone = tc.region, tc.az
			tree := Build(in)
			for p, want := range map[string]string{"meta-data/services/domain": tc.domain, "meta-data/services/partition": tc.partition} {
				if n, ok := tree.Lookup("latest", p); !ok || string(n.Body) != want {
					t.Errorf("%s = %q, %v; want %q", p, n.Body, ok, want)
				}
			}
		})
	}
}

func TestVersions(t *testing.T) {
	v := Versions()
	if v[0] != "1.0" || v[len(v)-1] != "latest" || len(v) != 30 {
		t.Fatalf("Versions() = %v: want 30 entries from 1.0 to latest", v)
	}
	if !slices.IsSorted(v) {
		t.Error("versions must be oldest first (and sort as strings, which visibility relies on)")
	}
	if got := string(RootListing()); got != strings.Join(v, "\n") || strings.HasSuffix(got, "\n") {
		t.Errorf("RootListing() = %q", got)
	}
	for _, s := range v {
		if !KnownVersion(s) {
			t.Errorf("KnownVersion(%q) = false", s)
		}
	}
	for _, s := range []string{"", "2013-01-01", "latest/", "1.0\n2007-01-19", "\n", "Latest", "2024-04-1"} {
		if KnownVersion(s) {
			t.Errorf("KnownVersion(%q) = true", s)
		}
	}
}

func TestLatestLookupDoesNotAllocate(t *testing.T) {
	tree := Build(richInstance(t))
	for _, p := range []string{"meta-data/instance-id", "meta-data/", "meta-data/iam/security-credentials/", "dynamic/instance-identity/document", "nope"} {
		if a := testing.AllocsPerRun(100, func() { tree.Lookup("latest", p) }); a != 0 {
			t.Errorf("Lookup(latest, %q) allocates %v times", p, a)
		}
	}
}

func BenchmarkLookupLatest(b *testing.B) {
	tree := Build(richInstance(b))
	b.ReportAllocs()
	for b.Loop() {
		tree.Lookup("latest", "meta-data/iam/security-credentials/")
		tree.Lookup("latest", "meta-data/placement/availability-zone")
	}
}

func BenchmarkLookupDated(b *testing.B) {
	tree := Build(richInstance(b))
	b.ReportAllocs()
	for b.Loop() {
		tree.Lookup("2021-03-23", "meta-data/network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s")
	}
}

func BenchmarkBuild(b *testing.B) {
	in := richInstance(b)
	b.ReportAllocs()
	for b.Loop() {
		Build(in)
	}
}

func FuzzLookup(f *testing.F) {
	tree := Build(richInstance(f))
	for _, s := range [][2]string{
		{"latest", ""}, {"latest", "meta-data/"}, {"2016-09-02", "meta-data/network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s"},
		{"1.0", "user-data/"}, {"2009-04-04", "dynamic//instance-identity"}, {"", "/"}, {"latest", "meta-data/public-keys/0=my-key"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, version, p string) {
		n, ok := tree.Lookup(version, p)
		if ok && !KnownVersion(version) {
			t.Fatalf("unknown version %q answered %q", version, p)
		}
		if !ok && (n.Body != nil || n.Kind != 0) {
			t.Fatalf("a 404 must return the zero Node, got %+v", n)
		}
		if !strings.HasSuffix(p, "/") {
			m, ok2 := tree.Lookup(version, p+"/")
			if ok != ok2 || !reflect.DeepEqual(n, m) {
				t.Fatalf("%q and %q/ differ", p, p)
			}
		}
	})
}
