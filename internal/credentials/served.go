package credentials

import "github.com/frontdesk-imds/frontdesk/internal/mdtree"

// Served is what the data plane serves: role credentials from a Refresher's
// cache and instance-identity credentials (role "") from an Identity. It
// satisfies the data plane's Credentials interface.
type Served struct {
	Roles    *Refresher
	Identity *Identity
}

// Credentials returns the entry for an instance's role and a version that
// changes whenever the entry does; ok is false until a role's first fetch
// has finished.
func (s Served) Credentials(instanceID, role string) (mdtree.Credentials, uint64, bool) {
	if role == "" {
		c, v := s.Identity.Get(instanceID)
		return mdtree.Credentials{Code: CodeSuccess, LastUpdated: c.LastUpdated, Expiration: c.Expiration,
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken}, v, true
	}
	e, ok := s.Roles.Get(instanceID, role)
	if !ok {
		return mdtree.Credentials{}, 0, false
	}
	c := e.Credentials
	updated := e.LastUpdated
	if updated.IsZero() {
		updated = c.LastUpdated
	}
	return mdtree.Credentials{
		Code:            e.Code,
		Message:         e.Message,
		LastUpdated:     updated,
		Expiration:      c.Expiration,
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
	}, e.Version, true
}
