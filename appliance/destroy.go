package appliance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// CheckDestroyable returns an error that says why dir must not be deleted
// by `aurorabox destroy`, or nil. Only a data dir the appliance owns
// qualifies: an absolute, real directory (not a symlink) that holds the
// appliance's lock file, and that is neither / nor home nor one of home's
// ancestors. ok is false (with a nil error) when dir does not exist.
func CheckDestroyable(dir, home string) (ok bool, err error) {
	if !filepath.IsAbs(dir) {
		return false, fmt.Errorf("refusing to delete %q: not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if dir == "/" {
		return false, errors.New("refusing to delete /: the data dir must not be the root directory")
	}
	if home != "" {
		h := filepath.Clean(home)
		if dir == h || strings.HasPrefix(h+"/", dir+"/") {
			return false, fmt.Errorf("refusing to delete %s: it is your home directory or contains it", dir)
		}
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return false, fmt.Errorf("refusing to delete %s: it is a symbolic link; give the directory it points to as --data-dir", dir)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("refusing to delete %s: not a directory", dir)
	}
	lk, err := os.Lstat(filepath.Join(dir, "aurorabox.lock"))
	if err != nil || !lk.Mode().IsRegular() {
		return false, fmt.Errorf("refusing to delete %s: it does not look like an aurorabox data dir (no aurorabox.lock; the appliance never ran there)", dir)
	}
	if m := mountsBeneath(dir); len(m) > 0 {
		return false, fmt.Errorf("refusing to delete %s: file systems are mounted beneath it (%s); unmount them first", dir, strings.Join(m, ", "))
	}
	return true, nil
}

// mountsBeneath lists the mount points strictly inside dir: deleting
// through one would delete another file system's files.
func mountsBeneath(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Destroy stops the appliance on cfg's data dir (as Down) and deletes the
// data dir with everything in it: jobs, tasks and their sandboxes, logs and
// credentials. It checks the dir with CheckDestroyable first, and holds the
// data dir's lock while deleting, so that no `up` starts on it meanwhile.
// It reports whether there was anything to delete.
func Destroy(ctx context.Context, cfg *config.Config, home string) (bool, error) {
	ok, err := CheckDestroyable(cfg.DataDir, home)
	if err != nil || !ok {
		return false, err
	}
	if _, err := Down(ctx, cfg); err != nil {
		return false, fmt.Errorf("stop before deleting: %w", err)
	}
	lk, err := acquireLock(cfg.Path("aurorabox.lock"), cfg.DataDir)
	if err != nil {
		return false, fmt.Errorf("data dir in use again: %w", err)
	}
	defer lk.release()
	// Checked again under the lock: the dir is the one we checked.
	if ok, err := CheckDestroyable(cfg.DataDir, home); err != nil || !ok {
		return false, err
	}
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return false, fmt.Errorf("delete data dir: %w", err)
	}
	return true, nil
}
