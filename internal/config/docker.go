package config

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Docker is the docker: section: the operator's say over what containers
// (serve --docker) may ask for. The zero value grants no role to any
// container and takes user data only from labels.
type Docker struct {
	// Allow lists which containers may ask for which roles. A container's
	// frontdesk.iam-instance-profile label is honoured only if some rule
	// matches both the container and the role.
	Allow []DockerRule `yaml:"allow"`
	// HopLimit is HttpPutResponseHopLimit for containers that do not set
	// frontdesk.hop-limit (DefaultDockerHopLimit when 0).
	HopLimit int `yaml:"hop_limit"`
	// HTTPTokens is HttpTokens for containers that do not set
	// frontdesk.http-tokens: required or optional; the account default
	// (required unless changed) when empty.
	HTTPTokens string `yaml:"http_tokens"`
	// UserDataDir is the only directory frontdesk.user-data-file may name a
	// file in (a relative path, resolved inside it). Empty: the label is
	// refused, so a container cannot make frontdesk read a host file.
	UserDataDir string `yaml:"user_data_dir"`
}

// DockerRule grants roles to the containers it selects. A container is selected
// when its image matches one of Images (or Images is empty) and it carries
// every label of Labels (value "*" matches any value). A rule with neither
// selects every container: write it only where every container may have
// every listed role (a developer's laptop).
type DockerRule struct {
	// Roles are role names or path.Match patterns ("ci-*", "*").
	Roles []string `yaml:"roles"`
	// Images are image references or patterns ("registry.example.com/app:*",
	// "busybox"); a reference without a tag also matches with ":latest".
	Images []string `yaml:"images"`
	// Labels must all be present with these values.
	Labels map[string]string `yaml:"labels"`
}

// DefaultDockerHopLimit is the hop limit of a container's token response when
// neither its labels nor the policy say otherwise. A container on a Docker
// bridge talks to frontdesk on the same host: the response leaves
// frontdesk's socket for the bridge and reaches the container's network
// namespace without being routed, so no router decrements it and 1 is
// enough. (EC2 recommends 2 for containers because there the metadata
// service sits beyond the host, which forwards the response once.) 1 keeps
// a token from going any further: a process that forwards the answer on,
// or a nested container behind the container, gets nothing.
const DefaultDockerHopLimit = 1

// Validate checks the policy and names the key of the first problem.
func (p *Docker) Validate(key string) error {
	if p.HopLimit < 0 || p.HopLimit > 64 {
		return fmt.Errorf("%s.hop_limit: %d is outside 1 to 64", key, p.HopLimit)
	}
	switch p.HTTPTokens {
	case "", "required", "optional":
	default:
		return fmt.Errorf("%s.http_tokens: %q is not required or optional", key, p.HTTPTokens)
	}
	if p.UserDataDir != "" && !filepath.IsAbs(p.UserDataDir) {
		return fmt.Errorf("%s.user_data_dir: %q is not an absolute path", key, p.UserDataDir)
	}
	for i, r := range p.Allow {
		k := fmt.Sprintf("%s.allow[%d]", key, i)
		if len(r.Roles) == 0 {
			return fmt.Errorf("%s.roles: required", k)
		}
		for _, pat := range append(append([]string(nil), r.Roles...), r.Images...) {
			if _, err := path.Match(pat, ""); err != nil {
				return fmt.Errorf("%s: pattern %q: %w", k, pat, err)
			}
		}
	}
	return nil
}

// Allowed reports whether a container with this image and these labels may
// have role.
func (p *Docker) Allowed(role, image string, labels map[string]string) bool {
	for _, r := range p.Allow {
		if r.selects(image, labels) && matchAny(r.Roles, role) {
			return true
		}
	}
	return false
}

func (r DockerRule) selects(image string, labels map[string]string) bool {
	if len(r.Images) > 0 && !slices.ContainsFunc(r.Images, func(p string) bool { return matchImage(p, image) }) {
		return false
	}
	for k, want := range r.Labels {
		v, ok := labels[k]
		if !ok || (want != "*" && v != want) {
			return false
		}
	}
	return true
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// matchImage matches an image reference against a pattern, taking a
// reference or pattern without a tag to mean ":latest".
func matchImage(pattern, image string) bool {
	if !hasTag(pattern) {
		pattern += ":latest"
	}
	if !hasTag(image) {
		image += ":latest"
	}
	ok, _ := path.Match(pattern, image)
	return ok
}

// hasTag reports whether an image reference names a tag or digest.
func hasTag(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":")
}
