// Package shiro reads and writes the [users] section of an Apache Shiro INI
// file, the format of Aurora's -shiro_ini: lines `name = password[, role...]`.
// The scheduler takes its HTTP basic credentials from such a file
// (--shiro-ini), `aurorabox up` generates one in the data dir, and the
// aurora clients read it to authenticate to an appliance's scheduler.
package shiro

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// User is one [users] entry. Roles are kept for round trips but not used:
// every listed user may call every RPC.
type User struct {
	Name, Password string
	Roles          []string
}

// ReadFile parses the [users] section of the Shiro INI file at path. It
// fails unless the section lists at least one user.
func ReadFile(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse parses the [users] section of a Shiro INI document; name (the
// file's path) prefixes errors, which also give the line. Users keep the
// file's order.
func Parse(name string, data []byte) ([]User, error) {
	var users []User
	seen := map[string]bool{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if section != "users" {
			continue
		}
		user, rest, ok := strings.Cut(line, "=")
		fields := strings.Split(rest, ",")
		user, pass := strings.TrimSpace(user), strings.TrimSpace(fields[0])
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("%s:%d: want `name = password[, roles]` in [users]", name, i+1)
		}
		if seen[user] {
			return nil, fmt.Errorf("%s:%d: user %q is listed twice", name, i+1, user)
		}
		seen[user] = true
		u := User{Name: user, Password: pass}
		for _, r := range fields[1:] {
			if r = strings.TrimSpace(r); r != "" {
				u.Roles = append(u.Roles, r)
			}
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users in a [users] section", name)
	}
	return users, nil
}

// Format renders users as a Shiro INI document under a comment header
// (one line per element of header); roles named by users get a [roles]
// entry granting every permission, as Aurora's example shiro.ini does for
// its admin role.
func Format(header []string, users []User) []byte {
	var b bytes.Buffer
	for _, h := range header {
		fmt.Fprintf(&b, "# %s\n", h)
	}
	b.WriteString("[users]\n")
	var roles []string
	seen := map[string]bool{}
	for _, u := range users {
		fmt.Fprintf(&b, "%s = %s", u.Name, u.Password)
		for _, r := range u.Roles {
			fmt.Fprintf(&b, ", %s", r)
			if !seen[r] {
				seen[r] = true
				roles = append(roles, r)
			}
		}
		b.WriteString("\n")
	}
	if len(roles) > 0 {
		b.WriteString("\n[roles]\n")
		for _, r := range roles {
			fmt.Fprintf(&b, "%s = *\n", r)
		}
	}
	return b.Bytes()
}
