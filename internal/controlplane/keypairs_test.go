package controlplane

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// testED25519 is an ssh-keygen key; its EC2 fingerprint is the padded
// base64 SHA-256 that ssh-keygen -l prints (unpadded) for it.
const (
	testED25519   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDlVni0Ou36qkEgpdQqOZN22nNjcBT70DaWW+CUAFC/ bob@example"
	testED25519FP = "+z0Cc44p8cP0pgqFtKUj5nrFZ/GWiw2Bky3BE7NUIaU="
)

func TestImportedKeyPairIsDescribedAndServedToItsInstances(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	imp, err := e.client.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName: aws.String("ops"), PublicKeyMaterial: []byte(testED25519 + "\n"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("infra")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(imp.KeyFingerprint) != testED25519FP || !strings.HasPrefix(aws.ToString(imp.KeyPairId), "key-") {
		t.Fatalf("import answered %+v", imp)
	}
	desc, err := e.client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"ops"}, IncludePublicKey: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.KeyPairs) != 1 {
		t.Fatalf("described %d key pairs", len(desc.KeyPairs))
	}
	k := desc.KeyPairs[0]
	if k.KeyType != types.KeyTypeEd25519 || aws.ToString(k.PublicKey) != testED25519 || aws.ToString(k.KeyPairId) != aws.ToString(imp.KeyPairId) ||
		len(k.Tags) != 1 || k.CreateTime == nil {
		t.Fatalf("described %+v", k)
	}
	byTag, err := e.client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("tag:team"), Values: []string{"inf*"}}}})
	if err != nil || len(byTag.KeyPairs) != 1 {
		t.Fatalf("tag filter: %v %+v", err, byTag)
	}

	inst := e.launch("192.0.2.30", func(in *ec2.RunInstancesInput) { in.KeyName = aws.String("ops") })
	if aws.ToString(inst.KeyName) != "ops" {
		t.Errorf("launch answered key %q", aws.ToString(inst.KeyName))
	}
	if _, err := e.client.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	got := e.stored(aws.ToString(inst.InstanceId))
	if len(got.PublicKeys) != 1 || got.PublicKeys[0].Name != "ops" || got.PublicKeys[0].OpenSSH != testED25519 {
		t.Fatalf("instance keeps %+v after the key pair was deleted", got.PublicKeys)
	}
	_, err = e.client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		PrivateIpAddress: aws.String("192.0.2.31"), KeyName: aws.String("ops")})
	if code(t, err) != "InvalidKeyPair.NotFound" {
		t.Fatalf("launch with a deleted key: %v", err)
	}
}

func TestCreatedKeyPairReturnsThePrivateKeyOnce(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, typ := range []types.KeyType{types.KeyTypeRsa, types.KeyTypeEd25519} {
		name := "made-" + string(typ)
		out, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(name), KeyType: typ})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(aws.ToString(out.KeyMaterial), "PRIVATE KEY-----") || aws.ToString(out.KeyFingerprint) == "" {
			t.Fatalf("%s: created %+v", typ, out)
		}
		desc, err := e.client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyPairIds: []string{aws.ToString(out.KeyPairId)}})
		if err != nil || len(desc.KeyPairs) != 1 || desc.KeyPairs[0].KeyType != typ ||
			aws.ToString(desc.KeyPairs[0].KeyFingerprint) != aws.ToString(out.KeyFingerprint) {
			t.Fatalf("%s: described %v %+v", typ, err, desc)
		}
	}
	// The private keys are nowhere in the store.
	err := e.store.View(ctx, func(tx imds.Tx) error {
		return tx.Scan("", func(k string, v []byte) error {
			if strings.Contains(string(v), "PRIVATE KEY") {
				t.Errorf("%s holds a private key", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeyPairErrorsWriteNothing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.client.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("ops"), PublicKeyMaterial: []byte(testED25519)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, code string
		call       func() error
	}{
		{"import_duplicate_name", "InvalidKeyPair.Duplicate", func() error {
			_, err := e.client.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("ops"), PublicKeyMaterial: []byte(testED25519)})
			return err
		}},
		{"create_duplicate_name", "InvalidKeyPair.Duplicate", func() error {
			_, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("ops")})
			return err
		}},
		{"import_garbage", "InvalidKeyPair.Format", func() error {
			_, err := e.client.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: []byte("ssh-rsa not-a-key")})
			return err
		}},
		{"create_ppk", "InvalidParameterValue", func() error {
			_, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("p"), KeyFormat: types.KeyFormatPpk})
			return err
		}},
		{"create_unknown_type", "InvalidParameterValue", func() error {
			_, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("p"), KeyType: "dsa"})
			return err
		}},
		{"name_too_long", "InvalidParameterValue", func() error {
			_, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(strings.Repeat("k", 256))})
			return err
		}},
		{"describe_missing_name", "InvalidKeyPair.NotFound", func() error {
			_, err := e.client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"ops", "nope"}})
			return err
		}},
		{"delete_missing_id", "InvalidKeyPair.NotFound", func() error {
			_, err := e.client.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: aws.String("key-0123456789abcdef0")})
			return err
		}},
		{"create_dry_run", "DryRunOperation", func() error {
			_, err := e.client.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("dry"), DryRun: aws.Bool(true)})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.revision()
			if got := code(t, tt.call()); got != tt.code {
				t.Fatalf("code %q, want %q", got, tt.code)
			}
			if e.revision() != before {
				t.Error("a refused key-pair action wrote to the store")
			}
		})
	}
	// Deleting a name that does not exist succeeds, as on EC2.
	if _, err := e.client.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("never-was")}); err != nil {
		t.Fatalf("delete of a missing name: %v", err)
	}
}
