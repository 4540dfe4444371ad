package scheduler

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// Aurora's framework authentication (-framework_authentication_file): the
// scheduler authenticates to the Mesos master as a principal, which the
// master needs of a framework that runs tasks as root (the executor runs as
// root and switches to each task's role user). Over the v1 HTTP API that is
// HTTP basic authentication on every call (the master checks each call's
// credential against the one the framework subscribed with).

// The keys of a framework authentication file: Aurora's.
const (
	PrincipalKey = "aurora_authentication_principal"
	SecretKey    = "aurora_authentication_secret"
)

// FrameworkCredential is the principal and secret the scheduler
// authenticates to the Mesos master with.
type FrameworkCredential struct {
	Principal string
	Secret    string
}

// maxAuthFile bounds what ReadFrameworkAuthenticationFile reads.
const maxAuthFile = 64 << 10

// ReadFrameworkAuthenticationFile reads a framework authentication file as
// Aurora's -framework_authentication_file: a Java properties file with the
// keys aurora_authentication_principal and aurora_authentication_secret.
// It holds a secret, so it must be a regular file that group and others
// cannot access (0600).
func ReadFrameworkAuthenticationFile(path string) (FrameworkCredential, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s: not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s: mode %#o lets other users read or change it; make it 0600", path, m)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err != nil {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s: %w", path, err)
	}
	if len(b) > maxAuthFile {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s: longer than %d bytes", path, maxAuthFile)
	}
	props := parseProperties(string(b))
	var c FrameworkCredential
	var ok bool
	if c.Principal, ok = props[PrincipalKey]; !ok {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s is missing the key: %s", path, PrincipalKey)
	}
	if c.Secret, ok = props[SecretKey]; !ok {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s is missing the key: %s", path, SecretKey)
	}
	if c.Principal == "" || strings.Contains(c.Principal, ":") {
		return FrameworkCredential{}, fmt.Errorf("framework authentication file %s: %s %q is empty or contains ':'", path, PrincipalKey, c.Principal)
	}
	return c, nil
}

// parseProperties reads the subset of the Java properties format that a
// credential needs: key=value or key:value (or key value) lines, '#' and
// '!' comments, white space around keys and before values ignored, and a
// backslash at the end of a line continuing it. Escapes inside keys and
// values other than line continuation are not interpreted.
func parseProperties(s string) map[string]string {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	var logical string
	for sc.Scan() {
		line := sc.Text()
		if logical == "" {
			line = strings.TrimLeft(line, " \t\f")
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
		} else {
			line = strings.TrimLeft(line, " \t\f")
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			logical += strings.TrimSuffix(line, `\`)
			continue
		}
		logical += line
		key, value := splitProperty(logical)
		props[key] = value
		logical = ""
	}
	if logical != "" {
		key, value := splitProperty(logical)
		props[key] = value
	}
	return props
}

// splitProperty splits a logical line at its first '=', ':' or white
// space, as java.util.Properties does.
func splitProperty(line string) (string, string) {
	i := strings.IndexAny(line, "=: \t\f")
	if i < 0 {
		return line, ""
	}
	key, rest := line[:i], strings.TrimLeft(line[i:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}
