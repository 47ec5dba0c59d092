package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/frontdesk-imds/frontdesk/internal/config"
	"github.com/frontdesk-imds/frontdesk/internal/controlplane"
	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// Labels a container may carry.
const (
	LabelInstance     = "frontdesk.instance"             // "false" leaves the container out
	LabelProfile      = "frontdesk.iam-instance-profile" // role (instance profile) name
	LabelHTTPTokens   = "frontdesk.http-tokens"          // required | optional
	LabelHopLimit     = "frontdesk.hop-limit"            // 1..64
	LabelTagPrefix    = "frontdesk.tags."                // frontdesk.tags.KEY=VALUE
	LabelUserData     = "frontdesk.user-data"            // the user data itself
	LabelUserDataFile = "frontdesk.user-data-file"       // a file under Policy.UserDataDir
)

// Tags frontdesk sets on a container's instance.
const (
	TagContainerID = "frontdesk:container-id" // the full container id: marks the instance as the Docker source's
	TagLaunch      = "frontdesk:launch"       // fingerprint of what the instance was launched from
	TagRoleRefused = "frontdesk:role-refused" // the role the container asked for and was refused
	TagName        = "Name"                   // the container name, EC2's naming convention
	TagImage       = "image"                  // the image reference the container was created from
)

// InstanceID derives the instance id from a container id: "i-" and the
// container id's first 17 hex digits, so `docker ps` (12 digits) and
// `describe-instances` line up by eye.
func InstanceID(containerID string) (string, bool) {
	if len(containerID) < 17 {
		return "", false
	}
	id := "i-" + strings.ToLower(containerID[:17])
	return id, imds.ValidInstanceID(id)
}

// plan is what a container should be: an instance to launch, or a reason
// why it has none.
type plan struct {
	containerID string
	instanceID  string
	launch      *controlplane.LaunchInput // nil: no instance
	fingerprint string
	addrs       []netip.Addr
	skip        string // why there is no instance (for the log), "" if there is one
	hostNet     bool
	warnings    []string // labels that were ignored, and why
	refusedRole string
}

// planFor decides what a container's instance is. It reads user-data files
// but nothing else outside the container's description.
func planFor(c container.InspectResponse, p *config.Docker, hostID string) plan {
	pl := plan{}
	if c.ContainerJSONBase == nil {
		pl.skip = "no container description"
		return pl
	}
	pl.containerID = c.ID
	id, ok := InstanceID(c.ID)
	if !ok {
		pl.skip = "container id is not hex"
		return pl
	}
	pl.instanceID = id
	var labels map[string]string
	image := c.Image
	if c.Config != nil {
		labels = c.Config.Labels
		image = c.Config.Image
	}
	switch {
	case c.State == nil || !c.State.Running:
		pl.skip = "not running"
		return pl
	case strings.EqualFold(labels[LabelInstance], "false"):
		pl.skip = "label " + LabelInstance + "=false"
		return pl
	case c.HostConfig != nil && c.HostConfig.NetworkMode.IsHost():
		pl.skip, pl.hostNet = "host network: it shares the host's addresses, so it cannot have an identity of its own", true
		return pl
	}

	var ifaces []controlplane.LaunchInterface
	var v6 bool
	if c.NetworkSettings != nil {
		names := make([]string, 0, len(c.NetworkSettings.Networks))
		for n := range c.NetworkSettings.Networks {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ep := c.NetworkSettings.Networks[n]
			if ep == nil {
				continue
			}
			var li controlplane.LaunchInterface
			if a, err := netip.ParseAddr(ep.IPAddress); err == nil && a.Is4() {
				li.IPv4 = append(li.IPv4, a)
			}
			if a, err := netip.ParseAddr(ep.GlobalIPv6Address); err == nil && a.Is6() {
				li.IPv6 = append(li.IPv6, a)
				v6 = true
			}
			if len(li.IPv4)+len(li.IPv6) > 0 {
				ifaces = append(ifaces, li)
				pl.addrs = append(append(pl.addrs, li.IPv4...), li.IPv6...)
			}
		}
	}
	if len(ifaces) == 0 {
		pl.skip = "no address on any network"
		return pl
	}

	name := strings.TrimPrefix(c.Name, "/")
	in := &controlplane.LaunchInput{
		InstanceID: id,
		ImageID:    controlplane.ImageIDFor(image),
		Interfaces: ifaces,
		HostID:     hostID,
	}
	tags := []imds.Tag{{Key: TagName, Value: name}, {Key: TagImage, Value: image}}
	if role := labels[LabelProfile]; role != "" {
		if p.Allowed(role, image, labels) {
			in.Profile = role
		} else {
			pl.refusedRole = role
			pl.warnings = append(pl.warnings, fmt.Sprintf("role %q is not allowed for image %q by the docker allow-list: no role", role, image))
			tags = append(tags, imds.Tag{Key: TagRoleRefused, Value: role})
		}
	}
	tokens := p.HTTPTokens
	if v, ok := labels[LabelHTTPTokens]; ok {
		if v == imds.Required || v == imds.Optional {
			tokens = v
		} else {
			pl.warnings = append(pl.warnings, fmt.Sprintf("%s=%q is not required or optional: ignored", LabelHTTPTokens, v))
		}
	}
	if tokens != "" {
		in.Options.HttpTokens = &tokens
	}
	hop := p.HopLimit
	if hop == 0 {
		hop = config.DefaultDockerHopLimit
	}
	if v, ok := labels[LabelHopLimit]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 64 {
			hop = n
		} else {
			pl.warnings = append(pl.warnings, fmt.Sprintf("%s=%q is not 1 to 64: ignored", LabelHopLimit, v))
		}
	}
	in.Options.HttpPutResponseHopLimit = &hop
	if v6 {
		en := imds.Enabled
		in.Options.HttpProtocolIPv6 = &en
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if strings.HasPrefix(k, LabelTagPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := strings.TrimPrefix(k, LabelTagPrefix)
		if key == "" || strings.HasPrefix(key, "frontdesk:") || key == TagName || key == TagImage {
			pl.warnings = append(pl.warnings, fmt.Sprintf("label %s: tag key %q is reserved: ignored", k, key))
			continue
		}
		tags = append(tags, imds.Tag{Key: key, Value: labels[k]})
	}
	if v, ok := labels[LabelUserData]; ok {
		in.UserData = []byte(v)
	}
	if f, ok := labels[LabelUserDataFile]; ok {
		if b, err := readUserData(p.UserDataDir, f); err != nil {
			pl.warnings = append(pl.warnings, err.Error()+": no user data from the file")
		} else {
			in.UserData = b
		}
	}
	in.Tags = tags
	// The fingerprint covers everything the instance is launched from and
	// the container's start time: a restart, or a change in addresses,
	// labels or files, is a new launch.
	started := ""
	if c.State != nil {
		started = c.State.StartedAt
	}
	b, _ := json.Marshal(struct {
		In      *controlplane.LaunchInput
		Started string
	}{in, started})
	sum := sha256.Sum256(b)
	pl.fingerprint = hex.EncodeToString(sum[:8])
	in.Tags = append(in.Tags, imds.Tag{Key: TagContainerID, Value: c.ID}, imds.Tag{Key: TagLaunch, Value: pl.fingerprint})
	pl.launch = in
	return pl
}

// readUserData reads a user-data file inside dir; symbolic links may not
// lead out of it.
func readUserData(dir, name string) ([]byte, error) {
	if _, err := userDataFile(dir, name); err != nil {
		return nil, err
	}
	f, err := os.OpenInRoot(dir, name)
	if err != nil {
		return nil, fmt.Errorf("frontdesk.user-data-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, imds.MaxUserData+1))
	if err != nil {
		return nil, fmt.Errorf("frontdesk.user-data-file: %w", err)
	}
	if len(b) > imds.MaxUserData {
		return nil, fmt.Errorf("frontdesk.user-data-file %q is larger than %d bytes", name, imds.MaxUserData)
	}
	return b, nil
}
