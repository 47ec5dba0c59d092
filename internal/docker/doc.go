// Package docker serves Docker containers as instances. A Source follows a
// Docker daemon (its event stream, reconciled against a full listing after
// every reconnect) and keeps one instance per running container that has an
// address, written through the control plane's checked actions. Labels on
// the container (frontdesk.*) and the configuration's allow rules decide
// what a container may claim: its role, tags, user data and metadata
// options. Before it writes an instance it tells the data plane, so that a
// container calling at once waits for its instance instead of a 404.
package docker
