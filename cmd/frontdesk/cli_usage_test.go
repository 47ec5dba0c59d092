package main

import (
	"strings"
	"testing"
)

// Mistakes on the command line exit with status 2 and a message naming the
// flag or argument, before any credentials are looked for or any request is
// made (the endpoint below is unreachable and the data dir is empty, so a
// command that went further would exit 1 instead).
func TestCLIBadInputExits2(t *testing.T) {
	const id = "i-0123456789abcdef0"
	cases := []struct {
		name string
		args []string
		want string // in the error message
	}{
		{"instances_without_command", []string{"instances"}, "command is required"},
		{"unknown_instances_command", []string{"instances", "explode"}, `unknown command "explode"`},
		{"unknown_flag", []string{"instances", "list", "--bogus"}, "bogus"},
		{"list_with_a_non_id", []string{"instances", "list", "vol-1"}, `"vol-1" is not an instance id`},
		{"run_without_image", []string{"instances", "run", "--private-ip", "192.0.2.1"}, "--image-id is required"},
		{"run_with_hop_limit_out_of_range", []string{"instances", "run", "--image-id", "ami-1", "--hop-limit", "65"}, "--hop-limit"},
		{"run_with_hop_limit_not_a_number", []string{"instances", "run", "--image-id", "ami-1", "--hop-limit", "two"}, "hop-limit"},
		{"run_with_bad_http_tokens", []string{"instances", "run", "--image-id", "ami-1", "--http-tokens", "maybe"}, "--http-tokens must be required, optional"},
		{"run_with_tag_without_value", []string{"instances", "run", "--image-id", "ami-1", "--tag", "Name"}, `--tag: "Name" is not KEY=VALUE`},
		{"run_with_missing_user_data_file", []string{"instances", "run", "--image-id", "ami-1", "--user-data-file", "/nonexistent/ud"}, "--user-data-file"},
		{"run_with_positional_argument", []string{"instances", "run", "--image-id", "ami-1", "extra"}, `unexpected argument "extra"`},
		{"terminate_without_ids", []string{"instances", "terminate"}, "missing arguments"},
		{"modify_without_changes", []string{"instances", "modify-metadata-options", id}, "nothing to change"},
		{"modify_with_bad_endpoint", []string{"instances", "modify-metadata-options", id, "--http-endpoint", "on"}, "--http-endpoint must be enabled, disabled"},
		{"modify_two_ids", []string{"instances", "modify-metadata-options", id, id, "--hop-limit", "2"}, "unexpected argument"},
		{"tag_without_tags", []string{"instances", "tag", id}, "nothing to do"},
		{"tag_with_bad_pair", []string{"instances", "tag", id, "=v"}, `"=v" is not KEY=VALUE`},
		{"defaults_set_without_changes", []string{"defaults", "set"}, "nothing to change"},
		{"defaults_set_hop_limit_zero", []string{"defaults", "set", "--hop-limit", "0"}, "--hop-limit must be between 1 and 64, or -1"},
		{"defaults_set_bad_enforced", []string{"defaults", "set", "--http-tokens-enforced", "yes"}, "--http-tokens-enforced"},
		{"defaults_get_with_argument", []string{"defaults", "get", "now"}, "unexpected argument"},
		{"spot_with_bad_action", []string{"events", "spot", id, "--action", "explode"}, "--action must be terminate, stop, hibernate"},
		{"spot_with_bad_time", []string{"events", "spot", id, "--time", "tomorrow"}, "--time must be an RFC 3339 time"},
		{"spot_without_instance", []string{"events", "spot"}, "missing arguments"},
		{"maintenance_without_code", []string{"events", "maintenance", "create", id}, "--code is required"},
		{"maintenance_with_bad_not_before", []string{"events", "maintenance", "create", id, "--code", "system-reboot", "--not-before", "soon"}, "--not-before"},
		{"maintenance_not_after_before_not_before", []string{"events", "maintenance", "create", id, "--code", "system-reboot", "--not-before", "2030-01-02T00:00:00Z", "--not-after", "2030-01-01T00:00:00Z"}, "--not-after must be after --not-before"},
		{"maintenance_complete_without_event", []string{"events", "maintenance", "complete", id}, "missing arguments"},
		{"lifecycle_without_state", []string{"events", "lifecycle", id}, "STATE (or --clear) is required"},
		{"lifecycle_with_state_and_clear", []string{"events", "lifecycle", id, "InService", "--clear"}, "not both"},
		{"compliance_with_zero_window", []string{"compliance", "--window", "0s"}, "--window must be between"},
		{"compliance_with_too_long_window", []string{"compliance", "--window", "337h"}, "--window must be between"},
		{"include_active_without_remediate", []string{"compliance", "--include-active"}, "go with --remediate"},
		{"compliance_with_argument", []string{"compliance", "now"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cliRun(t, "", append(tc.args, "--endpoint", "http://127.0.0.1:1", "--data-dir", t.TempDir())...)
			if r.code() != 2 {
				t.Fatalf("exit %d (%v), want 2", r.code(), r.err)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", r.err, tc.want)
			}
		})
	}
}

// Without admin.credentials in the data dir and without AWS variables the
// command says where it looked, and exits 1.
func TestCLIWithoutCredentials(t *testing.T) {
	r := cliRun(t, "", "instances", "list", "--endpoint", "http://127.0.0.1:1", "--data-dir", t.TempDir())
	if r.code() != 1 || !strings.Contains(r.err.Error(), "no credentials") || !strings.Contains(r.err.Error(), "admin.credentials") {
		t.Errorf("exit %d: %v", r.code(), r.err)
	}
}
