package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The addresses guests expect the instance metadata service at.
const (
	imdsIPv4Prefix = "169.254.169.254/32"
	imdsIPv6Prefix = "fd00:ec2::254/128"
)

const netsetupHelp = `usage: frontdesk netsetup [flags]

Gives this host the instance metadata service's addresses so that
"frontdesk serve --listen 169.254.169.254:80" can bind them:

  1. creates the link --interface (a dummy link, frontdesk0) unless it exists;
  2. adds 169.254.169.254/32 to it (and fd00:ec2::254/128, without duplicate
     address detection so that serve can bind it at once, with --ipv6);
  3. sets it up.

It runs iproute2's ip and checks the current state first (ip -j link show,
ip -j addr show), so a second run changes nothing and succeeds. It needs
CAP_NET_ADMIN (root). Every command is printed as it runs; --dry-run prints
them without running anything. Output is a shell script: notes are comments.

What guests need, and why nothing else is needed on the host:
  A guest on a Linux bridge (--guest-interface br0) or behind a tap or veth
  device reaches the service when it routes 169.254.169.254 via this host's
  address on that link, e.g. in the guest
      ip route add 169.254.169.254/32 via 203.0.113.1
  (a default route via the host also does; DHCP option 121 can push the
  route). The packet then arrives for a local address of the host: Linux
  accepts a packet for any local address on any interface (weak host model),
  so it is delivered to serve, not forwarded: no ip_forward, no NAT, no
  iptables or nft rule, and no route_localnet (that sysctl only concerns
  127.0.0.0/8). The answer goes back out of the link the guest is on, so
  rp_filter is satisfied. Guests whose route to 169.254.0.0/16 is on-link
  (Windows, zeroconf routes) ARP for 169.254.169.254 instead; the host
  answers for any local address unless arp_ignore is above 0 on that link.
  That is the one host setting that can stand in the way: with
  --guest-interface, netsetup reports it and prints the fix, and --apply
  applies it (net.ipv4.conf.<if>.arp_ignore=0; it cannot override
  net.ipv4.conf.all.arp_ignore, which it only reports). For IPv6 guests
  must route fd00:ec2::254 via the host (its link-local address on the
  link): Linux answers neighbour solicitations only for addresses on the
  receiving link, so the address cannot be on-link for them.
  A firewall that filters the host's INPUT must let the guests reach TCP
  port 80 of 169.254.169.254.

flags:
`

// netsetupConfig is what `frontdesk netsetup` is told on its command line.
type netsetupConfig struct {
	iface    string
	linkType string
	ipv6     bool
	guests   []string
	apply    bool
	dryRun   bool
}

// cmdNetsetup adds the metadata service's addresses to a dummy link and
// reports (with --apply fixes) what the guest-facing links need.
func cmdNetsetup(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("netsetup", flag.ContinueOnError)
	var c netsetupConfig
	var guests string
	fs.StringVar(&c.iface, "interface", "frontdesk0", "link that holds the service's addresses (created if missing)")
	fs.StringVar(&c.linkType, "link-type", "dummy", "kernel link type used to create --interface (dummy; ifb on kernels built without the dummy driver)")
	fs.BoolVar(&c.ipv6, "ipv6", false, "also add fd00:ec2::254/128 (for serve --listen-ipv6 [fd00:ec2::254]:80)")
	fs.StringVar(&guests, "guest-interface", "", "comma-separated host links the guests are on (bridge, tap, veth): check them and print the guests' routes")
	fs.BoolVar(&c.apply, "apply", false, "also apply the fixes found on the --guest-interface links")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the commands without running any")
	usage := func(w io.Writer) {
		io.WriteString(w, netsetupHelp)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if err := parseFlags(e, fs, usage, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("netsetup: unexpected argument %q", fs.Arg(0))}
	}
	if guests != "" {
		c.guests = strings.Split(guests, ",")
	}
	for _, name := range append([]string{c.iface}, c.guests...) {
		if err := validLinkName(name); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("netsetup: %w", err)}
		}
	}
	if c.linkType == "" || strings.ContainsAny(c.linkType, " \t\n/") {
		return &exitError{code: 2, err: fmt.Errorf("netsetup: invalid --link-type %q", c.linkType)}
	}
	n := &netsetup{ctx: ctx, out: e.stdout, dryRun: c.dryRun, sysctlRoot: "/proc/sys"}
	if err := n.setupLink(c); err != nil {
		return fmt.Errorf("netsetup: %w", err)
	}
	for _, g := range c.guests {
		if err := n.guestLink(c, g); err != nil {
			return fmt.Errorf("netsetup: %w", err)
		}
	}
	return nil
}

// validLinkName rejects what the kernel would refuse anyway, and anything
// that could step out of /proc/sys/net/ipv4/conf/.
func validLinkName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// netsetup runs (or, dry, prints) ip commands and reads sysctls.
type netsetup struct {
	ctx        context.Context
	out        io.Writer
	dryRun     bool
	sysctlRoot string
}

// ipLink is the part of `ip -j addr show` output netsetup looks at.
type ipLink struct {
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

func (l *ipLink) up() bool { return slices.Contains(l.Flags, "UP") }

// has reports whether the link holds the address of prefix (any length).
func (l *ipLink) has(prefix string) bool {
	addr, _, _ := strings.Cut(prefix, "/")
	for _, a := range l.AddrInfo {
		if a.Local == addr {
			return true
		}
	}
	return false
}

// links lists every link with its addresses.
func (n *netsetup) links() ([]ipLink, error) {
	out, err := n.query("-j", "addr", "show")
	if err != nil {
		return nil, err
	}
	var ls []ipLink
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("parse ip -j addr show: %w", err)
	}
	return ls, nil
}

func findLink(ls []ipLink, name string) *ipLink {
	for i := range ls {
		if ls[i].Name == name {
			return &ls[i]
		}
	}
	return nil
}

// query runs a read-only ip command; it runs even with --dry-run.
func (n *netsetup) query(args ...string) ([]byte, error) {
	cmd := exec.CommandContext(n.ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// change prints one ip command and, unless dry, runs it.
func (n *netsetup) change(args ...string) error {
	fmt.Fprintln(n.out, "ip "+strings.Join(args, " "))
	if n.dryRun {
		return nil
	}
	out, err := exec.CommandContext(n.ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *netsetup) note(format string, a ...any) {
	fmt.Fprintf(n.out, "# "+format+"\n", a...)
}

// setupLink makes sure the link exists, holds the addresses and is up,
// running only the commands the current state calls for.
func (n *netsetup) setupLink(c netsetupConfig) error {
	ls, err := n.links()
	if err != nil {
		return err
	}
	l := findLink(ls, c.iface)
	changed := false
	if l == nil {
		if err := n.change("link", "add", c.iface, "type", c.linkType); err != nil {
			return err
		}
		l, changed = &ipLink{Name: c.iface}, true
	}
	if !l.has(imdsIPv4Prefix) {
		if err := n.change("addr", "add", imdsIPv4Prefix, "dev", c.iface); err != nil {
			return err
		}
		changed = true
	}
	if c.ipv6 && !l.has(imdsIPv6Prefix) {
		// nodad: a tentative address cannot be bound, and serve starts
		// right after this.
		if err := n.change("-6", "addr", "add", imdsIPv6Prefix, "dev", c.iface, "nodad"); err != nil {
			return err
		}
		changed = true
	}
	if !l.up() {
		if err := n.change("link", "set", c.iface, "up"); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		addrs := imdsIPv4Prefix
		if c.ipv6 {
			addrs += " and " + imdsIPv6Prefix
		}
		n.note("%s already holds %s and is up: nothing to do", c.iface, addrs)
	}
	return nil
}

// guestLink checks one guest-facing link, prints the route its guests need
// and fixes arp_ignore if asked to.
func (n *netsetup) guestLink(c netsetupConfig, name string) error {
	ls, err := n.links()
	if err != nil {
		return err
	}
	l := findLink(ls, name)
	if l == nil {
		return fmt.Errorf("guest interface %s does not exist", name)
	}
	if !l.up() {
		n.note("%s is down: its guests reach nothing until it is up", name)
	}
	var v4, v6 []string
	for _, a := range l.AddrInfo {
		switch {
		case a.Family == "inet" && a.Scope != "host":
			v4 = append(v4, a.Local)
		case a.Family == "inet6" && a.Scope == "link":
			v6 = append(v6, a.Local)
		}
	}
	if len(v4) == 0 {
		n.note("%s has no IPv4 address: guests on it need one of the host's addresses as their next hop", name)
	} else {
		n.note("guests on %s: ip route add %s via %s (nothing else is needed on this host)", name, imdsIPv4Prefix, v4[0])
	}
	if c.ipv6 {
		if len(v6) == 0 {
			n.note("%s has no IPv6 link-local address: IPv6 guests on it cannot route %s via this host", name, imdsIPv6Prefix)
		} else {
			n.note("IPv6 guests on %s: ip -6 route add %s via %s dev <guest's interface>", name, imdsIPv6Prefix, v6[0])
		}
	}

	all, err := n.readSysctl("net/ipv4/conf/all/arp_ignore")
	if err != nil {
		return err
	}
	own, err := n.readSysctl("net/ipv4/conf/" + name + "/arp_ignore")
	if err != nil {
		return err
	}
	if all > 0 {
		n.note("net.ipv4.conf.all.arp_ignore=%d: guests whose route to 169.254.0.0/16 is on-link get no ARP answer on %s; route it via the host in the guests, or lower it (netsetup leaves a host-wide setting alone)", all, name)
	}
	if own > 0 {
		key := "net.ipv4.conf." + strings.ReplaceAll(name, ".", "/") + ".arp_ignore"
		if !c.apply {
			n.note("%s=%d: guests whose route to 169.254.0.0/16 is on-link get no ARP answer; fix (run with --apply to apply):", key, own)
			n.note("sysctl -w %s=0", key)
			return nil
		}
		fmt.Fprintf(n.out, "sysctl -w %s=0\n", key)
		if !n.dryRun {
			if err := n.writeSysctl("net/ipv4/conf/"+name+"/arp_ignore", "0"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *netsetup) readSysctl(key string) (int, error) {
	b, err := os.ReadFile(filepath.Join(n.sysctlRoot, key))
	if err != nil {
		return 0, fmt.Errorf("read sysctl: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return v, nil
}

func (n *netsetup) writeSysctl(key, value string) error {
	// The file exists (readSysctl read it); O_TRUNC is what sysctl -w does.
	if err := os.WriteFile(filepath.Join(n.sysctlRoot, key), []byte(value+"\n"), 0o644); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("write sysctl %s: %w (netsetup needs CAP_NET_ADMIN)", key, err)
		}
		return fmt.Errorf("write sysctl %s: %w", key, err)
	}
	return nil
}
