package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// cmdKeys is `frontdesk keys …`: the key-pair operations of the EC2 API.
// A key pair named at `instances run --key-name` is what the guest finds at
// public-keys/0/openssh-key, and what cloud-init installs.
func cmdKeys(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "keys", args, map[string]subcommand{
		"list":   {cmdKeysList, "list key pairs with their fingerprints"},
		"import": {cmdKeysImport, "import a public key (OpenSSH line, SSH2 block or base64 DER)"},
		"create": {cmdKeysCreate, "create a key pair; the private key is printed (or written) once"},
		"delete": {cmdKeysDelete, "delete key pairs (running instances keep their key)"},
	})
}

// keyView is one key pair as `keys list --json` prints it.
type keyView struct {
	Name        string            `json:"keyName"`
	ID          string            `json:"keyPairId"`
	Type        string            `json:"keyType"`
	Fingerprint string            `json:"keyFingerprint"`
	PublicKey   string            `json:"publicKey,omitempty"`
	Created     string            `json:"createTime,omitempty"`
	Tags        map[string]string `json:"tags"`
}

func cmdKeysList(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "keys list", "frontdesk keys list [--json] [--public-key] [NAME...]")
	asJSON := c.fs.Bool("json", false, "print JSON instead of a table")
	withPublic := c.fs.Bool("public-key", false, "include the public key (--json)")
	names, err := c.parse(args, 0, -1)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: names, IncludePublicKey: withPublic})
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	views := []keyView{}
	for _, k := range out.KeyPairs {
		v := keyView{Name: aws.ToString(k.KeyName), ID: aws.ToString(k.KeyPairId), Type: string(k.KeyType),
			Fingerprint: aws.ToString(k.KeyFingerprint), PublicKey: aws.ToString(k.PublicKey), Tags: map[string]string{}}
		if k.CreateTime != nil {
			v.Created = k.CreateTime.UTC().Format("2006-01-02T15:04:05Z")
		}
		for _, t := range k.Tags {
			v.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		views = append(views, v)
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	rows := [][]string{{"KEY NAME", "KEY PAIR ID", "TYPE", "FINGERPRINT", "CREATED"}}
	for _, v := range views {
		rows = append(rows, []string{v.Name, v.ID, v.Type, v.Fingerprint, dash(v.Created)})
	}
	return table(e.stdout, rows)
}

func cmdKeysImport(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "keys import", "frontdesk keys import NAME --public-key-file FILE|- [--tag K=V]...")
	file := c.fs.String("public-key-file", "", "the public key, e.g. ~/.ssh/id_ed25519.pub (- reads stdin)")
	var tags listFlag
	c.fs.Var(&tags, "tag", "key pair tag KEY=VALUE (repeatable)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *file == "" {
		c.fs.Usage()
		return usageErr("keys import: --public-key-file is required")
	}
	var material []byte
	if *file == "-" {
		material, err = io.ReadAll(io.LimitReader(e.stdin, 64<<10))
	} else {
		material, err = os.ReadFile(*file)
	}
	if err != nil {
		return usageErr("--public-key-file: %w", err)
	}
	ts, err := keyTagSpecs(tags)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	out, err := cl.EC2().ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(pos[0]), PublicKeyMaterial: material, TagSpecifications: ts})
	if err != nil {
		return fmt.Errorf("keys import: %w", err)
	}
	return table(e.stdout, [][]string{{"KEY NAME", "KEY PAIR ID", "FINGERPRINT"},
		{aws.ToString(out.KeyName), aws.ToString(out.KeyPairId), aws.ToString(out.KeyFingerprint)}})
}

func cmdKeysCreate(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "keys create", "frontdesk keys create NAME [--type rsa|ed25519] [--out FILE] [--tag K=V]...")
	typ := c.fs.String("type", "ed25519", "key type: rsa (2048 bits) or ed25519")
	outFile := c.fs.String("out", "", "write the private key to FILE (mode 0600, must not exist) instead of stdout")
	var tags listFlag
	c.fs.Var(&tags, "tag", "key pair tag KEY=VALUE (repeatable)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if err := oneOf("type", *typ, "rsa", "ed25519"); err != nil {
		return err
	}
	ts, err := keyTagSpecs(tags)
	if err != nil {
		return err
	}
	var f *os.File
	if *outFile != "" {
		// Opened first: a private key that cannot be saved must not be
		// created, since it is never shown again.
		if f, err = os.OpenFile(*outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return usageErr("--out: %w", err)
		}
		defer f.Close()
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		if f != nil {
			os.Remove(*outFile)
		}
		return err
	}
	out, err := cl.EC2().CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(pos[0]), KeyType: types.KeyType(*typ), TagSpecifications: ts})
	if err != nil {
		if f != nil {
			os.Remove(*outFile)
		}
		return fmt.Errorf("keys create: %w", err)
	}
	key := aws.ToString(out.KeyMaterial) + "\n"
	if f == nil {
		_, err = io.WriteString(e.stdout, key)
		return err
	}
	if _, err := io.WriteString(f, key); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(e.stderr, "key pair %s (%s), fingerprint %s: private key written to %s\n",
		aws.ToString(out.KeyName), aws.ToString(out.KeyPairId), aws.ToString(out.KeyFingerprint), *outFile)
	return nil
}

func cmdKeysDelete(ctx context.Context, e *env, args []string) error {
	c := newCommand(e, "keys delete", "frontdesk keys delete NAME...")
	names, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	cl, err := c.api.client(ctx, e)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := cl.EC2().DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(n)}); err != nil {
			return fmt.Errorf("keys delete %s: %w", n, err)
		}
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

func keyTagSpecs(tags []string) ([]types.TagSpecification, error) {
	pairs, err := parseTags("--tag", tags)
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	ts := types.TagSpecification{ResourceType: types.ResourceTypeKeyPair}
	for _, p := range pairs {
		ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(p.key), Value: aws.String(p.value)})
	}
	return []types.TagSpecification{ts}, nil
}
