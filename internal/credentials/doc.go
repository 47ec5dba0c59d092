// Package credentials produces the temporary AWS credentials that the data
// plane serves under iam/security-credentials/ROLE and
// identity-credentials/ec2/security-credentials/ec2-instance.
//
// Providers (Local, Static, STS) sit behind one small interface, and a
// Refresher keeps one cache entry per (instance, role): it fetches when a
// target appears, refreshes well before expiry in the background, and lets a
// request read the cache without ever waiting on an upstream call. This is
// what the peers (kube2iam, kiam) get wrong: they fetch on the first request
// and run into the SDKs' one-second metadata timeouts.
package credentials
