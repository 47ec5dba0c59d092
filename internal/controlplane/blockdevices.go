package controlplane

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// rootDeviceName is the root device of every frontdesk AMI: frontdesk has
// no images, so it uses the device name of Amazon Linux and most HVM AMIs.
const rootDeviceName = "/dev/xvda"

var (
	deviceNameRe  = regexp.MustCompile(`^(/dev/)?[a-z]{2,5}[a-z0-9]{0,6}$`)
	virtualNameRe = regexp.MustCompile(`^ephemeral([0-9]|1[0-9]|2[0-3])$`)
)

// parseBlockDevices reads BlockDeviceMapping.N of RunInstances into the
// block-device-mapping/ entries a guest sees, as EC2 lays them out: ami and
// root name the root device (/dev/xvda); each other EBS volume is ebsN and
// each instance-store volume ephemeralN (N from its VirtualName), named
// without /dev/ ("sdb"); a NoDevice entry maps nothing. An Ebs entry for the
// root device itself changes the root volume and adds no entry.
func parseBlockDevices(p params) ([]imds.BlockDevice, error) {
	items, err := p.list("BlockDeviceMapping")
	if err != nil {
		return nil, err
	}
	out := []imds.BlockDevice{{Name: "ami", Device: rootDeviceName}, {Name: "root", Device: rootDeviceName}}
	seen := map[string]bool{}
	ebs := 0
	for _, it := range items {
		dev, err := it.required("DeviceName")
		if err != nil {
			return nil, err
		}
		if !deviceNameRe.MatchString(dev) {
			return nil, errInvalid("Invalid device name " + dev + " for " + it.name("DeviceName") + ".")
		}
		short := strings.TrimPrefix(dev, "/dev/")
		if seen[short] {
			return nil, newAPIError(http.StatusBadRequest, "InvalidBlockDeviceMapping", "The device '"+dev+"' is used in more than one block-device mapping")
		}
		seen[short] = true
		virtual, hasVirtual := it.get("VirtualName")
		_, noDevice := it.get("NoDevice")
		hasEbs := it.has("Ebs")
		switch {
		case hasEbs && hasVirtual, hasEbs && noDevice, hasVirtual && noDevice:
			return nil, errCombination("Only one of Ebs, VirtualName and NoDevice may be given for " + strings.TrimSuffix(it.prefix, ".") + ".")
		case noDevice:
			// Suppresses a mapping of the AMI; frontdesk's AMIs have none
			// besides the root, which cannot be suppressed.
			if short == strings.TrimPrefix(rootDeviceName, "/dev/") {
				return nil, newAPIError(http.StatusBadRequest, "InvalidBlockDeviceMapping", "The root device "+dev+" cannot be suppressed with NoDevice.")
			}
		case hasVirtual:
			if !virtualNameRe.MatchString(virtual) {
				return nil, errInvalid("Invalid value '" + virtual + "' for " + it.name("VirtualName") + ": ephemeral0 to ephemeral23.")
			}
			if err := addUnique(&out, virtual, short); err != nil {
				return nil, err
			}
		case hasEbs:
			if err := checkEbs(it.sub("Ebs")); err != nil {
				return nil, err
			}
			if short == strings.TrimPrefix(rootDeviceName, "/dev/") {
				continue // the root volume's settings
			}
			ebs++
			out = append(out, imds.BlockDevice{Name: "ebs" + strconv.Itoa(ebs), Device: short})
		default:
			return nil, errMissing(it.name("Ebs"))
		}
	}
	return out, nil
}

// addUnique appends a named entry, refusing a second ephemeralN of one N.
func addUnique(out *[]imds.BlockDevice, name, device string) error {
	for _, b := range *out {
		if b.Name == name {
			return newAPIError(http.StatusBadRequest, "InvalidBlockDeviceMapping", "The virtual name '"+name+"' is used in more than one block-device mapping")
		}
	}
	*out = append(*out, imds.BlockDevice{Name: name, Device: device})
	return nil
}

// checkEbs validates the Ebs fields frontdesk accepts and otherwise ignores
// (there are no volumes): sizes, types and flags must still be well formed.
func checkEbs(p params) error {
	if v, err := p.intOpt("VolumeSize"); err != nil {
		return err
	} else if v != nil && (*v < 1 || *v > 65536) {
		return errInvalid("Invalid value '" + strconv.Itoa(*v) + "' for " + p.name("VolumeSize") + ": 1 to 65536 GiB.")
	}
	if _, err := p.enumOpt("VolumeType", "standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"); err != nil {
		return err
	}
	for _, k := range []string{"DeleteOnTermination", "Encrypted"} {
		if _, _, err := p.boolOpt(k); err != nil {
			return err
		}
	}
	for _, k := range []string{"Iops", "Throughput"} {
		if _, err := p.intOpt(k); err != nil {
			return err
		}
	}
	return nil
}
