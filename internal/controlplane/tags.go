package controlplane

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/frontdesk-imds/frontdesk/internal/imds"
)

// maxTags is EC2's limit of user tags per resource.
const maxTags = 50

// parseTags reads "prefix.N.Key" / "prefix.N.Value" and applies EC2's tag
// rules. A missing Value is the empty string, as on EC2.
func parseTags(p params, key string) ([]imds.Tag, error) {
	items, err := p.list(key)
	if err != nil {
		return nil, err
	}
	tags := make([]imds.Tag, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		k, err := it.required("Key")
		if err != nil {
			return nil, err
		}
		v := it.str("Value")
		if err := checkTag(k, v); err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, errInvalid("Duplicate tag key '" + k + "' specified.")
		}
		seen[k] = true
		tags = append(tags, imds.Tag{Key: k, Value: v})
	}
	return tags, nil
}

func checkTag(k, v string) error {
	switch {
	case utf8.RuneCountInString(k) > 128 || !utf8.ValidString(k):
		return errInvalid("Tag key exceeds the maximum length of 128 characters")
	case utf8.RuneCountInString(v) > 256 || !utf8.ValidString(v):
		return errInvalid("Tag value exceeds the maximum length of 256 characters")
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return errInvalid("Tag keys starting with 'aws:' are reserved for internal use")
	}
	return nil
}

// checkMetadataTagKeys applies the instance-metadata key rules to tags that
// will be served under tags/instance/.
func checkMetadataTagKeys(tags []imds.Tag) error {
	for _, t := range tags {
		if !imds.ValidMetadataTagKey(t.Key) {
			return errInvalid("The tag key '" + t.Key + "' is not allowed while instance tags are available in instance metadata (InstanceMetadataTags=enabled): use letters, digits and + - = . , _ : @ only, and not '.', '..' or '_index'.")
		}
	}
	return nil
}

func errTagLimit(id string) error {
	return newAPIError(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags ("+"50"+") for resource '"+id+"' has been reached.")
}

// resourceIDs reads ResourceId.N; frontdesk's only taggable resource is the
// instance, so any other id is InvalidID.
func resourceIDs(p params) ([]string, error) {
	ids, err := p.strings("ResourceId")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errMissing("ResourceId.1")
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "i-") {
			if !imds.ValidInstanceID(id) {
				return nil, errInstanceMalformed(id)
			}
			continue
		}
		return nil, newAPIError(http.StatusBadRequest, "InvalidID", "The ID '"+id+"' is not valid (frontdesk tags instances only)")
	}
	return ids, nil
}

// createTags adds or overwrites tags on every resource, all or nothing.
func (s *Server) createTags(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	ids, err := resourceIDs(p)
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tag")
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, errMissing("Tag.1.Key")
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		return eachInstance(tx, ids, func(id string, in *imds.Instance) error {
			for _, t := range tags {
				replaced := false
				for i := range in.Tags {
					if in.Tags[i].Key == t.Key {
						in.Tags[i].Value = t.Value
						replaced = true
					}
				}
				if !replaced {
					in.Tags = append(in.Tags, t)
				}
			}
			if len(in.Tags) > maxTags {
				return errTagLimit(id)
			}
			if in.MetadataOptions.InstanceMetadataTags == imds.Enabled {
				if err := checkMetadataTagKeys(tags); err != nil {
					return err
				}
			}
			return imds.PutInstance(tx, in)
		})
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		keys = append(keys, t.Key)
	}
	// Tag keys only: values are the user's data.
	noteChange(ctx, ids, map[string]string{"TagKeys": strings.Join(keys, ",")})
	return &returnResponse{Return: true}, nil
}

// deleteTags removes tags: by key, by key and value (only if the value
// matches), or every tag when no Tag is given, as EC2 does.
func (s *Server) deleteTags(ctx context.Context, p params) (response, error) {
	dry, err := p.dryRun()
	if err != nil {
		return nil, err
	}
	ids, err := resourceIDs(p)
	if err != nil {
		return nil, err
	}
	items, err := p.list("Tag")
	if err != nil {
		return nil, err
	}
	type sel struct {
		key, value string
		hasValue   bool
	}
	var sels []sel
	for _, it := range items {
		k, err := it.required("Key")
		if err != nil {
			return nil, err
		}
		v, hasValue := it.get("Value")
		sels = append(sels, sel{key: k, value: v, hasValue: hasValue})
	}
	err = s.update(ctx, dry, func(tx imds.Tx) error {
		return eachInstance(tx, ids, func(id string, in *imds.Instance) error {
			kept := in.Tags[:0:0]
			for _, t := range in.Tags {
				drop := len(sels) == 0
				for _, s := range sels {
					if s.key == t.Key && (!s.hasValue || s.value == t.Value) {
						drop = true
					}
				}
				if !drop {
					kept = append(kept, t)
				}
			}
			in.Tags = kept
			return imds.PutInstance(tx, in)
		})
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(sels))
	for _, s := range sels {
		keys = append(keys, s.key)
	}
	detail := map[string]string{"TagKeys": strings.Join(keys, ",")}
	if len(sels) == 0 {
		detail["TagKeys"] = "*"
	}
	noteChange(ctx, ids, detail)
	return &returnResponse{Return: true}, nil
}
