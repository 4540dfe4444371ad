// Package secretfile creates the files that hold the appliance's secrets
// (the scheduler's credential, the agent secret, the executors' key): each
// appears whole, mode 0600, or not at all, and an existing one is never
// replaced, so that processes started before a restart keep theirs.
package secretfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Create writes data to a new file at path, mode 0600. The data goes to a
// private temporary file in the same directory, which is synced and then
// linked into place, so that no reader sees the file partly written; if
// path exists it is left as it is and the error matches fs.ErrExist. The
// directory is synced once the link is made.
func Create(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
