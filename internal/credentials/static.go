package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Static defaults.
const (
	DefaultStaticPoll     = 10 * time.Second
	DefaultStaticLifetime = time.Hour
	staticStatEvery       = time.Second
)

// StaticOptions configure a Static provider. The zero value works.
type StaticOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PollInterval is how often targets look at the file again;
	// DefaultStaticPoll when zero.
	PollInterval time.Duration
	// Lifetime is the Expiration served for a file without one, rolled
	// forward as it runs down; DefaultStaticLifetime when zero.
	Lifetime time.Duration
}

// Static serves credentials kept in a JSON file, and picks up edits to the
// file without a restart. The file holds one object:
//
//	{
//	  "AccessKeyId": "ASIA...",
//	  "SecretAccessKey": "...",
//	  "SessionToken": "...",
//	  "Expiration": "2026-01-02T15:04:05Z"
//	}
//
// AccessKeyId and SecretAccessKey are required. SessionToken may also be
// spelled Token (so a saved IMDS answer works), and is empty for long-term
// keys. Expiration (RFC 3339) is optional: without it the served Expiration
// is kept between half and all of Lifetime ahead, as SDKs require one. The
// other fields of an IMDS answer or credential_process output (Version,
// Code, Type, LastUpdated) are accepted and ignored; any other key is an
// error, to catch typos.
type Static struct {
	path     string
	now      func() time.Time
	poll     time.Duration
	lifetime time.Duration

	mu        sync.Mutex
	checked   time.Time // last stat
	modTime   time.Time
	size      int64
	creds     Credentials
	synthetic bool // Expiration not in the file
	err       error
}

// staticFile is the file's JSON form.
type staticFile struct {
	Version         int       `json:"Version"`
	Code            string    `json:"Code"`
	Type            string    `json:"Type"`
	LastUpdated     time.Time `json:"LastUpdated"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	SessionToken    string    `json:"SessionToken"`
	Token           string    `json:"Token"`
	Expiration      time.Time `json:"Expiration"`
}

// NewStatic reads the file at path once, so a missing or malformed file is
// reported at start.
func NewStatic(path string, opts StaticOptions) (*Static, error) {
	s := &Static{path: path, now: opts.Now, poll: opts.PollInterval, lifetime: opts.Lifetime}
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = DefaultStaticPoll
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultStaticLifetime
	}
	if _, err := s.Retrieve(context.Background(), Target{}); err != nil {
		return nil, err
	}
	return s, nil
}

// PollInterval makes the Refresher look at the file again this often.
func (s *Static) PollInterval() time.Duration { return s.poll }

// Retrieve returns the file's credentials, reading it again when its size or
// modification time changed.
func (s *Static) Retrieve(_ context.Context, _ Target) (Credentials, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checked.IsZero() || now.Sub(s.checked) >= staticStatEvery || now.Before(s.checked) {
		s.checked = now
		s.reload(now)
	}
	if s.err != nil {
		return Credentials{}, s.err
	}
	if s.synthetic && s.creds.Expiration.Sub(now) < s.lifetime/2 {
		s.creds.Expiration = now.UTC().Truncate(time.Second).Add(s.lifetime)
	}
	if !s.creds.Expiration.After(now) {
		return Credentials{}, fmt.Errorf("static credentials in %s expired at %s", s.path, s.creds.Expiration.Format(time.RFC3339))
	}
	return s.creds, nil
}

// reload reads the file if it changed. Called with s.mu held.
func (s *Static) reload(now time.Time) {
	fi, err := os.Stat(s.path)
	if err != nil {
		s.err = fmt.Errorf("static credentials: %w", err)
		s.modTime, s.size = time.Time{}, -1
		return
	}
	if fi.ModTime().Equal(s.modTime) && fi.Size() == s.size && s.err == nil {
		return
	}
	s.modTime, s.size = fi.ModTime(), fi.Size()
	b, err := os.ReadFile(s.path)
	if err != nil {
		s.err = fmt.Errorf("static credentials: %w", err)
		return
	}
	c, synthetic, err := parseStatic(b, now, s.lifetime)
	if err != nil {
		s.err = fmt.Errorf("static credentials %s: %w", s.path, err)
		return
	}
	s.creds, s.synthetic, s.err = c, synthetic, nil
}

func parseStatic(b []byte, now time.Time, lifetime time.Duration) (c Credentials, synthetic bool, err error) {
	var f staticFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Credentials{}, false, fmt.Errorf("parse: %w", err)
	}
	if f.AccessKeyID == "" {
		return Credentials{}, false, errors.New("AccessKeyId is required")
	}
	if f.SecretAccessKey == "" {
		return Credentials{}, false, errors.New("SecretAccessKey is required")
	}
	if f.SessionToken != "" && f.Token != "" && f.SessionToken != f.Token {
		return Credentials{}, false, errors.New("SessionToken and Token differ")
	}
	c = Credentials{
		AccessKeyID:     f.AccessKeyID,
		SecretAccessKey: f.SecretAccessKey,
		SessionToken:    f.SessionToken + f.Token,
		Expiration:      f.Expiration.UTC().Truncate(time.Second),
		LastUpdated:     now.UTC().Truncate(time.Second),
	}
	if f.SessionToken != "" && f.Token != "" {
		c.SessionToken = f.SessionToken
	}
	if f.Expiration.IsZero() {
		c.Expiration = c.LastUpdated.Add(lifetime)
		synthetic = true
	}
	return c, synthetic, nil
}
