// Package docker serves Docker containers as instances. A Source follows a
// Docker daemon (its event stream, reconciled against a full listing after
// every reconnect) and keeps one instance per running container that has an
// address, written through the control plane's checked actions. Labels on
// the container (frontdesk.*) give its tags, user data, metadata options and
// instance profile; the configuration's allow rules decide which containers
// may have which role. Before it writes an instance it tells the data plane, so that a
// container calling at once waits for its instance instead of a 404.
package docker
