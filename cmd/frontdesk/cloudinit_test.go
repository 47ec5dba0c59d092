//go:build integration

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cloudInitScript runs inside `unshare --net --mount`: a network namespace
// with only a loopback link, and a mount namespace whose private mounts
// hide everything cloud-init would change on this machine. 169.254.169.254
// is made local on the namespace's loopback (and checked) before anything
// runs, so no packet to it can leave even if cloud-init fell back to the
// default address. cloud-init's Ec2 datasource is pointed at frontdesk on
// 127.0.0.1 with datasource.Ec2.metadata_urls; a fake /sys/hypervisor/uuid
// ("ec2…") makes it identify the platform as AWS, so it takes the IMDSv2
// path as on EC2. systemctl and hostnamectl are bound to /bin/false so
// nothing can reach this machine's services.
const cloudInitScript = `set -eu
W="$1"
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip -o addr show dev lo | grep -q 'inet 169.254.169.254/32' || { echo "169.254.169.254 is not local" >&2; exit 3; }
[ "$(ip -o link show | wc -l)" = 1 ] || { echo "the namespace has links besides lo" >&2; exit 3; }
mount -t tmpfs tmpfs /sys
mkdir -p /sys/hypervisor
echo ec2e1916-9099-7caf-fd21-012345abcdef > /sys/hypervisor/uuid
for d in /root /var/lib/cloud /run/cloud-init /var/log /etc/ssh; do mkdir -p "$d"; mount -t tmpfs tmpfs "$d"; done
cp -a /etc/cloud "$W/etc-cloud"
cp "$W/cfg.yaml" "$W/etc-cloud/cloud.cfg.d/99-frontdesk-test.cfg"
mount --bind "$W/etc-cloud" /etc/cloud
for b in systemctl hostnamectl; do p=$(command -v $b || true); [ -z "$p" ] || mount --bind /bin/false "$p"; done
"$W/frontdesk" serve --store memory --data-dir "$W/data" --listen 127.0.0.1:1338 --api-listen 127.0.0.1:1339 >"$W/serve.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
i=0; until grep -q '^ready' "$W/serve.out"; do i=$((i+1)); [ $i -lt 100 ] || { echo "frontdesk not ready" >&2; exit 4; }; sleep 0.1; done
"$W/frontdesk" keys import ci --public-key-file "$W/key.pub" --data-dir "$W/data"
"$W/frontdesk" instances run --image-id ami-0123456789abcdef0 --private-ip 127.0.0.1 --key-name ci --http-tokens required --data-dir "$W/data"
cloud-init init >"$W/cloud-init.out" 2>&1
cp /var/log/cloud-init.log "$W/cloud-init.log"
cp /root/.ssh/authorized_keys "$W/authorized_keys"
`

const cloudInitConfig = `datasource_list: [Ec2]
datasource:
  Ec2:
    metadata_urls: ["http://127.0.0.1:1338"]
    timeout: 5
    max_wait: 30
network: {config: disabled}
users: []
disable_root: false
ssh_deletekeys: false
ssh_genkeytypes: []
cloud_init_modules: [ssh]
`

// A real cloud-init (Debian's) run against frontdesk installs the key pair
// an instance was launched with into authorized_keys: the key a user then
// logs in with.
func TestCloudInitInstallsTheKeyPair(t *testing.T) {
	requireNetnsTools(t, "unshare", "cloud-init")
	w := t.TempDir()
	bin := buildFrontdesk(t)
	if err := os.Rename(bin, filepath.Join(w, "frontdesk")); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"run.sh": cloudInitScript, "cfg.yaml": cloudInitConfig, "key.pub": cliTestKey + "\n"} {
		if err := os.WriteFile(filepath.Join(w, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--mount", "--fork", "sh", filepath.Join(w, "run.sh"), w)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On timeout the whole group goes: unshare, the shell, frontdesk and
	// cloud-init; the namespaces die with their last process.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		ci, _ := os.ReadFile(filepath.Join(w, "cloud-init.out"))
		t.Fatalf("cloud-init run: %v\n%s\ncloud-init:\n%s", err, out, tailString(string(ci), 4000))
	}
	keys, err := os.ReadFile(filepath.Join(w, "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(keys)) != cliTestKey {
		t.Fatalf("authorized_keys = %q, want the key pair %q", keys, cliTestKey)
	}
	log, err := os.ReadFile(filepath.Join(w, "cloud-init.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cloud_name=aws", "latest/api/token", "public-keys/0/openssh-key"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("cloud-init.log does not mention %q", want)
		}
	}
}
