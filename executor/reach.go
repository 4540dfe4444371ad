package executor

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// unreachable returns the first directory from dir up to / that u may not
// traverse, by the permission bits that apply to it, or "" if u can reach
// dir. A task runs as its role user only if that user can reach its
// sandbox: an agent whose work dir sits in a private home (a developer's
// ~/.aurorabox under a 0700 home) cannot hand sandboxes to other users, and
// such a task fails (the appliance makes its work dir reachable).
func unreachable(dir string, u *user.User) string {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	groups := map[int]bool{gid: true}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			n, _ := strconv.Atoi(g)
			groups[n] = true
		}
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return d
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var ok bool
		switch {
		case int(st.Uid) == uid:
			ok = mode&0o100 != 0
		case groups[int(st.Gid)]:
			ok = mode&0o010 != 0
		default:
			ok = mode&0o001 != 0
		}
		if !ok {
			return d
		}
		if d == "/" || d == "." {
			return ""
		}
	}
}
