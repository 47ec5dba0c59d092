package docker

import (
	"errors"
	"fmt"
	"path/filepath"
)

// userDataFile resolves a frontdesk.user-data-file label inside dir.
func userDataFile(dir, name string) (string, error) {
	if dir == "" {
		return "", errors.New("no user_data_dir is configured for frontdesk.user-data-file")
	}
	if name == "" || filepath.IsAbs(name) || !filepath.IsLocal(name) {
		return "", fmt.Errorf("frontdesk.user-data-file %q must be a relative path inside the user data directory", name)
	}
	return filepath.Join(dir, name), nil
}
