package credentials

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCreds(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// Move the modification time on, so the change is seen even where the
	// file system's timestamps are coarse.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), time.Now().Add(time.Duration(len(body))*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestStaticParsesTheFile(t *testing.T) {
	clk := newFakeClock()
	tests := []struct {
		name, body string
		want       Credentials
		wantErr    string
	}{
		{
			name: "credential_process_form",
			body: `{"Version":1,"AccessKeyId":"ASIAONE","SecretAccessKey":"s1","SessionToken":"t1","Expiration":"2026-03-01T18:00:00Z"}`,
			want: Credentials{AccessKeyID: "ASIAONE", SecretAccessKey: "s1", SessionToken: "t1", Expiration: time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)},
		},
		{
			name: "saved_imds_answer_with_token",
			body: `{"Code":"Success","LastUpdated":"2026-03-01T11:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIATWO","SecretAccessKey":"s2","Token":"t2","Expiration":"2026-03-01T17:00:00Z"}`,
			want: Credentials{AccessKeyID: "ASIATWO", SecretAccessKey: "s2", SessionToken: "t2", Expiration: time.Date(2026, 3, 1, 17, 0, 0, 0, time.UTC)},
		},
		{
			name: "long_term_keys_get_a_rolling_expiration",
			body: `{"AccessKeyId":"AKIATHREE","SecretAccessKey":"s3"}`,
			want: Credentials{AccessKeyID: "AKIATHREE", SecretAccessKey: "s3", Expiration: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)},
		},
		{name: "unknown_key_is_an_error", body: `{"AccessKeyId":"A","SecretAccessKey":"s","SesionToken":"t"}`, wantErr: "SesionToken"},
		{name: "missing_access_key_is_an_error", body: `{"SecretAccessKey":"s"}`, wantErr: "AccessKeyId is required"},
		{name: "missing_secret_is_an_error", body: `{"AccessKeyId":"A"}`, wantErr: "SecretAccessKey is required"},
		{name: "not_json_is_an_error", body: `AccessKeyId=A`, wantErr: "parse"},
		{name: "expired_file_is_an_error", body: `{"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"2026-03-01T11:00:00Z"}`, wantErr: "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "creds.json")
			writeCreds(t, path, tc.body)
			s, err := NewStatic(path, StaticOptions{Now: clk.Now})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewStatic = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Retrieve(context.Background(), Target{})
			if err != nil {
				t.Fatal(err)
			}
			tc.want.LastUpdated = clk.Now()
			if got != tc.want {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
	t.Run("missing_file_is_an_error", func(t *testing.T) {
		if _, err := NewStatic(filepath.Join(t.TempDir(), "none.json"), StaticOptions{}); err == nil {
			t.Error("NewStatic of a missing file succeeded")
		}
	})
}

func TestStaticRollsASyntheticExpiration(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "creds.json")
	writeCreds(t, path, `{"AccessKeyId":"AKIA","SecretAccessKey":"s"}`)
	s, err := NewStatic(path, StaticOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Retrieve(context.Background(), Target{})
	clk.Advance(29 * time.Minute)
	if c, _ := s.Retrieve(context.Background(), Target{}); !c.Expiration.Equal(first.Expiration) {
		t.Error("Expiration moved while more than half the lifetime was left")
	}
	clk.Advance(2 * time.Minute)
	if c, _ := s.Retrieve(context.Background(), Target{}); !c.Expiration.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("Expiration = %s, want rolled to an hour from now", c.Expiration)
	}
}

func TestStaticFileChangesReachGuests(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "creds.json")
	writeCreds(t, path, `{"AccessKeyId":"ASIAOLD","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-03-01T18:00:00Z"}`)
	s, err := NewStatic(path, StaticOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRefresher(localResolver(s), RefresherOptions{Now: clk.Now, Until: clk.Until, Logger: discard()})
	run(t, r)
	r.SetTargets([]Target{{InstanceID: "i-1", Role: "web"}})
	old := waitFor(t, r, "i-1", "web")
	if old.Credentials.AccessKeyID != "ASIAOLD" {
		t.Fatalf("served %s", old.Credentials.AccessKeyID)
	}

	clk.Advance(DefaultStaticPoll) // an unchanged file: same entry
	scheduled(t, r, "i-1", "web")
	if e, _ := r.Get("i-1", "web"); e != old {
		t.Error("re-reading an unchanged file changed the entry")
	}

	writeCreds(t, path, `{"AccessKeyId":"ASIANEW","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-03-01T19:00:00Z"}`)
	clk.Advance(DefaultStaticPoll)
	eventually(t, "the edited file is served", func() bool {
		e, _ := r.Get("i-1", "web")
		return e.Credentials.AccessKeyID == "ASIANEW" && e.Version != old.Version
	})
	scheduled(t, r, "i-1", "web")

	writeCreds(t, path, `{"AccessKeyId":`)
	clk.Advance(DefaultStaticPoll)
	eventually(t, "the broken file is read", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err != nil
	})
	scheduled(t, r, "i-1", "web")
	if e, _ := r.Get("i-1", "web"); e.Credentials.AccessKeyID != "ASIANEW" || e.Code != CodeSuccess {
		t.Errorf("after a broken edit Get = %+v, want the last good credentials", e)
	}
}
