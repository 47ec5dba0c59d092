package controlplane

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
	"github.com/frontdesk-imds/frontdesk/internal/sshkey"
)

// Key pairs: ImportKeyPair, CreateKeyPair, DescribeKeyPairs and
// DeleteKeyPair, each one store transaction. Only the public half is
// stored; CreateKeyPair returns the private key once. An instance keeps the
// key line it was launched with (its metadata is rendered from the
// instance record), so deleting or replacing a key pair later changes no
// running guest, as on EC2.

func errKeyPairNotFound(name string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidKeyPair.NotFound", "The key pair '"+name+"' does not exist")
}

func errKeyPairDuplicate(name string) *apiError {
	return newAPIError(http.StatusBadRequest, "InvalidKeyPair.Duplicate", "The keypair '"+name+"' already exists.")
}

// keyPairName reads a required KeyName.
func keyPairName(p params) (string, error) {
	name, err := p.required("KeyName")
	if err != nil {
		return "", err
	}
	if !imds.ValidKeyPairName(name) {
		return "", errInvalid("Value (" + name + ") for parameter keyName is invalid. Key pair names are 1 to 255 ASCII characters.")
	}
	return name, nil
}

// keyPairTags reads the tags of TagSpecification.N with ResourceType
// key-pair.
func keyPairTags(p params) ([]imds.Tag, error) {
	specs, err := p.list("TagSpecification")
	if err != nil {
		return nil, err
	}
	var out []imds.Tag
	for _, sp := range specs {
		rt, err := sp.required("ResourceType")
		if err != nil {
			return nil, err
		}
		if rt != "key-pair" {
			return nil, errInvalid("'" + rt + "' is not a valid taggable resource type for this operation.")
		}
		tags, err := parseTags(sp, "Tag")
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if slices.ContainsFunc(out, func(o imds.Tag) bool { return o.Key == t.Key }) {
				return nil, errInvalid("Duplicate tag key '" + t.Key + "' specified.")
			}
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, newAPIError(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags (50) per resource has been exceeded.")
	}
	return out, nil
}

// storeKeyPair writes a new key pair in one update, answering a taken name
// with InvalidKeyPair.Duplicate.
func (s *Server) storeKeyPair(ctx context.Context, dry bool, kp *imds.KeyPair) error {
	err := s.update(ctx, dry, func(tx imds.Tx) error {
		id, err := s.freeKeyPairID(tx)
		if err != nil {
			return err
		}
		kp.KeyPairID = id
		return imds.CreateKeyPair(tx, kp)
	})
	if errors.Is(err, imds.ErrKeyPairExists) {
		return errKeyPairDuplicate(kp.Name)
	}
	return err
}

// freeKeyPairID draws key- ids until one is unused.
func (s *Server) freeKeyPairID(tx imds.Tx) (string, error) {
	for {
		id, err := newID("key-")
		if err != nil {
			return "", err
		}
		taken := false
		err = imds.ListKeyPairs(tx, func(k *imds.KeyPair) error {
			taken = taken || k.KeyPairID == id
			return nil
		})
		if err != nil {
			return "", err
		}
		if !taken {
			return id, nil
		}
	}
}

type importKeyPairResponse struct {
	respMeta
	KeyFingerprint string   `xml:"keyFingerprint"`
	KeyName        string   `xml:"keyName"`
	KeyPairID      string   `xml:"keyPairId"`
	Tags           []xmlTag `xml:"tagSet>item,omitempty"`
}

// importKeyPair stores a public key given as PublicKeyMaterial (base64 on
// the wire): an OpenSSH line (RSA, ED25519, ECDSA), an RFC 4716 block or
// base64 DER.
func (s *Server) importKeyPair(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	name, err := keyPairName(p)
	if err != nil {
		return nil, err
	}
	raw, err := p.required("PublicKeyMaterial")
	if err != nil {
		return nil, err
	}
	material, err := decodeBase64(raw)
	if err != nil {
		return nil, errInvalid("Value for parameter PublicKeyMaterial is invalid: it must be base64-encoded.")
	}
	tags, err := keyPairTags(p)
	if err != nil {
		return nil, err
	}
	pub, err := sshkey.ParsePublic(material, name)
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, "InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format")
	}
	kp := &imds.KeyPair{Name: name, Type: pub.Type, Fingerprint: pub.Fingerprint, PublicKey: pub.Line,
		Created: s.opts.Now().UTC().Truncate(1e6), Tags: tags}
	if err := s.storeKeyPair(ctx, dry, kp); err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"KeyName": name, "KeyPairId": kp.KeyPairID, "KeyType": kp.Type})
	return &importKeyPairResponse{KeyFingerprint: kp.Fingerprint, KeyName: name, KeyPairID: kp.KeyPairID, Tags: xmlTags(tags)}, nil
}

type createKeyPairResponse struct {
	respMeta
	KeyName        string   `xml:"keyName"`
	KeyFingerprint string   `xml:"keyFingerprint"`
	KeyMaterial    string   `xml:"keyMaterial"`
	KeyPairID      string   `xml:"keyPairId"`
	Tags           []xmlTag `xml:"tagSet>item,omitempty"`
}

// createKeyPair generates a key pair (KeyType rsa or ed25519) and returns
// its private key in PEM; the private key is not kept anywhere. KeyFormat
// ppk is refused: frontdesk writes PEM only.
func (s *Server) createKeyPair(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	name, err := keyPairName(p)
	if err != nil {
		return nil, err
	}
	typ := sshkey.TypeRSA
	if t, err := p.enumOpt("KeyType", sshkey.TypeRSA, sshkey.TypeED25519); err != nil {
		return nil, err
	} else if t != nil {
		typ = *t
	}
	if f, err := p.enumOpt("KeyFormat", "pem", "ppk"); err != nil {
		return nil, err
	} else if f != nil && *f == "ppk" {
		return nil, errInvalid("KeyFormat ppk is not supported by frontdesk: use pem (PuTTYgen converts it).")
	}
	tags, err := keyPairTags(p)
	if err != nil {
		return nil, err
	}
	created, err := sshkey.Generate(typ, name)
	if err != nil {
		return nil, err
	}
	kp := &imds.KeyPair{Name: name, Type: created.Type, Fingerprint: created.Fingerprint, PublicKey: created.Line,
		Created: s.opts.Now().UTC().Truncate(1e6), Tags: tags}
	if err := s.storeKeyPair(ctx, dry, kp); err != nil {
		return nil, err
	}
	noteChange(ctx, nil, map[string]string{"KeyName": name, "KeyPairId": kp.KeyPairID, "KeyType": kp.Type})
	return &createKeyPairResponse{KeyName: name, KeyFingerprint: kp.Fingerprint, KeyMaterial: created.PrivateKey,
		KeyPairID: kp.KeyPairID, Tags: xmlTags(tags)}, nil
}

type xmlKeyPair struct {
	KeyPairID      string   `xml:"keyPairId"`
	KeyType        string   `xml:"keyType"`
	Tags           []xmlTag `xml:"tagSet>item,omitempty"`
	KeyName        string   `xml:"keyName"`
	KeyFingerprint string   `xml:"keyFingerprint"`
	PublicKey      string   `xml:"publicKey,omitempty"`
	CreateTime     string   `xml:"createTime"`
}

type describeKeyPairsResponse struct {
	respMeta
	Keys []xmlKeyPair `xml:"keySet>item"`
}

// describeKeyPairs lists key pairs in name order. KeyName.N and
// KeyPairId.N must all exist (InvalidKeyPair.NotFound names the first one
// that does not); IncludePublicKey adds the public key line.
func (s *Server) describeKeyPairs(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	names, err := p.strings("KeyName")
	if err != nil {
		return nil, err
	}
	ids, err := p.strings("KeyPairId")
	if err != nil {
		return nil, err
	}
	withPublic, _, err := p.boolOpt("IncludePublicKey")
	if err != nil {
		return nil, err
	}
	fs, err := parseAttrFilters(p, "key-name", "key-pair-id", "fingerprint", "key-type", "tag-key")
	if err != nil {
		return nil, err
	}
	var all []*imds.KeyPair
	err = s.store.View(ctx, func(tx imds.Tx) error {
		all = all[:0]
		return imds.ListKeyPairs(tx, func(k *imds.KeyPair) error { all = append(all, k); return nil })
	})
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(k *imds.KeyPair) bool { return k.Name == n }) {
			return nil, errKeyPairNotFound(n)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(all, func(k *imds.KeyPair) bool { return k.KeyPairID == id }) {
			return nil, newAPIError(http.StatusBadRequest, "InvalidKeyPair.NotFound", "The key pair ID '"+id+"' does not exist")
		}
	}
	if dry {
		return nil, errDryRun
	}
	resp := &describeKeyPairsResponse{}
	for _, k := range all {
		if (len(names) > 0 && !slices.Contains(names, k.Name)) || (len(ids) > 0 && !slices.Contains(ids, k.KeyPairID)) {
			continue
		}
		attrs := map[string][]string{
			"key-name": {k.Name}, "key-pair-id": {k.KeyPairID}, "fingerprint": {k.Fingerprint}, "key-type": {k.Type},
			"tag-key": fieldOf(k.Tags, func(t imds.Tag) string { return t.Key }),
		}
		for _, t := range k.Tags {
			attrs["tag:"+t.Key] = []string{t.Value}
		}
		if !matchAttrs(fs, attrs) {
			continue
		}
		x := xmlKeyPair{KeyPairID: k.KeyPairID, KeyType: k.Type, Tags: xmlTags(k.Tags), KeyName: k.Name,
			KeyFingerprint: k.Fingerprint, CreateTime: ec2Time(k.Created)}
		if withPublic {
			x.PublicKey = k.PublicKey
		}
		resp.Keys = append(resp.Keys, x)
	}
	return resp, nil
}

type deleteKeyPairResponse struct {
	respMeta
	Return    bool   `xml:"return"`
	KeyPairID string `xml:"keyPairId,omitempty"`
}

// deleteKeyPair removes a key pair by KeyName or KeyPairId. As on EC2,
// deleting a name that does not exist succeeds; an unknown id is
// InvalidKeyPair.NotFound.
func (s *Server) deleteKeyPair(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	name, id := p.str("KeyName"), p.str("KeyPairId")
	switch {
	case name == "" && id == "":
		return nil, errMissing("KeyName")
	case id != "" && !imds.ValidKeyPairID(id):
		return nil, errMalformedID("InvalidKeyPairId.Malformed", id, "key")
	}
	var deleted string
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		deleted = ""
		var target *imds.KeyPair
		err := imds.ListKeyPairs(tx, func(k *imds.KeyPair) error {
			if (name != "" && k.Name == name) || (name == "" && k.KeyPairID == id) {
				target = k
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch {
		case target == nil && name != "":
			return nil
		case target == nil:
			return newAPIError(http.StatusBadRequest, "InvalidKeyPair.NotFound", "The key pair ID '"+id+"' does not exist")
		case id != "" && target.KeyPairID != id:
			return errCombination("KeyName '" + name + "' and KeyPairId '" + id + "' name different key pairs.")
		}
		deleted = target.KeyPairID
		return imds.DeleteKeyPair(tx, target.Name)
	})
	if err != nil {
		return nil, err
	}
	if deleted != "" {
		noteChange(ctx, nil, map[string]string{"KeyName": name, "KeyPairId": deleted})
	}
	return &deleteKeyPairResponse{Return: true, KeyPairID: deleted}, nil
}

// resolveKeyPair fills in the public key of RunInstances' KeyName from the
// stored key pairs, inside the launch's transaction, when no KeyPairs hook
// is configured. The line is copied into the instance record, so the guest
// is served the key as it was at launch.
func (s *Server) resolveKeyPair(tx imds.Tx, sp *launchSpec) error {
	if sp.keyName == "" || s.opts.KeyPairs != nil {
		return nil
	}
	kp, err := imds.GetKeyPair(tx, sp.keyName)
	if errors.Is(err, imds.ErrNotFound) {
		return errKeyPairNotFound(sp.keyName)
	}
	if err != nil {
		return err
	}
	sp.keyMaterial = kp.PublicKey
	return nil
}

func xmlTags(tags []imds.Tag) []xmlTag {
	var out []xmlTag
	for _, t := range tags {
		out = append(out, xmlTag{Key: t.Key, Value: t.Value})
	}
	return out
}
