//go:build integration

package main

import (
	"context"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/frontdesk-imds/frontdesk/internal/etcd/etcdtest"
)

// Two control planes on one real etcd launch into one subnet at the same
// time: every launch lands, no address is handed out twice, and together
// they fill the subnet's lowest addresses. Each launch is one optimistic
// etcd transaction over the subnet's part of the address index, so a
// launch that raced another is retried on a fresh read rather than
// committed on a stale one.
func TestFleetLaunchesIntoOneSubnetNeverShareAnAddress(t *testing.T) {
	cluster := etcdtest.Start(t, etcdtest.Options{})
	prefix := fleetPrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startFleetNode(t, "node-a", cluster.Endpoints(), prefix)
	b := startFleetNode(t, "node-b", cluster.Endpoints(), prefix)

	vpc, err := a.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("198.51.100.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	// Created through node A, used through node B: the records are shared.
	sub, err := a.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("198.51.100.0/26")})
	if err != nil {
		t.Fatal(err)
	}
	const perNode, launches, count = 2, 6, 3 // 2 nodes × 2 writers × 6 launches × 3 = 72 > 59 usable
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		owner    = map[string]string{}
		dups     []string
		full     int
		launched int
	)
	for _, n := range []*fleetNode{a, b} {
		for range perNode {
			wg.Go(func() {
				for range launches {
					out, err := n.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
						ImageId: aws.String("ami-0abcdef1234567890"), MinCount: aws.Int32(count), MaxCount: aws.Int32(count),
						SubnetId: sub.Subnet.SubnetId,
					})
					mu.Lock()
					if err != nil {
						if isCode(err, "InsufficientFreeAddressesInSubnet") {
							full++
						} else {
							t.Errorf("launch through %s: %v", n.name, err)
						}
						mu.Unlock()
						continue
					}
					launched++
					for _, in := range out.Instances {
						ip := aws.ToString(in.PrivateIpAddress)
						if prev, ok := owner[ip]; ok {
							dups = append(dups, ip+" ("+prev+", "+aws.ToString(in.InstanceId)+")")
						}
						owner[ip] = aws.ToString(in.InstanceId)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(dups) > 0 {
		t.Fatalf("addresses handed out twice: %v", dups)
	}
	// 59 usable addresses (64 - 5): 19 launches of 3 fit (57), the rest
	// find fewer than 3 free and fail whole.
	if launched != 19 || full != 2*perNode*launches-19 {
		t.Errorf("%d launches landed and %d found the subnet full; want 19 and %d", launched, full, 2*perNode*launches-19)
	}
	ips := make([]netip.Addr, 0, len(owner))
	for s := range owner {
		ips = append(ips, netip.MustParseAddr(s))
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	want := netip.MustParseAddr("198.51.100.4")
	for _, ip := range ips {
		if ip != want {
			t.Fatalf("allocated %v: %s missing (lowest first, no gaps)", ips, want)
		}
		want = want.Next()
	}
	// Both nodes see the same subnet usage.
	for _, n := range []*fleetNode{a, b} {
		d, err := n.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{*sub.Subnet.SubnetId}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToInt32(d.Subnets[0].AvailableIpAddressCount); got != 59-int32(len(owner)) {
			t.Errorf("%s: %d available, want %d", n.name, got, 59-len(owner))
		}
	}
	t.Logf("%d launches landed, %d refused as full, %d addresses, all distinct", launched, full, len(owner))
}
