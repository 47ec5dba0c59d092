package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A daemon under systemd (Type=notify) says READY=1 only once its
// listeners answer, and STOPPING=1 when it begins to drain.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	d := startDaemon(t, t.TempDir(), "--demo")
	msg := readNotify(t, conn)
	if !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification = %q, want READY=1", msg)
	}
	// READY came after "ready" on stdout, which follows the bind: the
	// data plane must answer now.
	resp, err := http.Get(d.dataURL + "/latest/meta-data/")
	if err != nil {
		t.Fatalf("data plane not answering after READY=1: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("IMDSv1 GET on a required instance = %d, want 401", resp.StatusCode)
	}

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if msg := readNotify(t, conn); !strings.Contains(msg, "STOPPING=1") {
		t.Fatalf("notification at stop = %q, want STOPPING=1", msg)
	}
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no systemd notification: %v", err)
	}
	return string(buf[:n])
}

// /metrics says which build runs, and the store-error series exist at zero
// before the first error, as exporters do.
func TestMetricsHaveBuildInfoAndStoreErrorsFromTheStart(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	resp, err := http.Get(d.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	bi := buildInfo()
	for _, want := range []string{
		`frontdesk_build_info{goversion="` + bi.GoVersion + `",revision="` + bi.Revision + `",version="` + bi.Version + `"} 1`,
		`frontdesk_store_errors_total{op="probe"} 0`,
		`frontdesk_store_errors_total{op="watch"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
