package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/aurorabox/aurorabox/appliance/secretfile"
)

// EnvExecutorToken is where an executor finds its authentication token,
// under Mesos' name; it sends it as "Authorization: Bearer <token>" on
// every call of the executor API (see Config.AuthenticateExecutors).
const EnvExecutorToken = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"

// Executor authentication, as Mesos' --authenticate_http_executors: each
// executor gets a token that names it (framework, executor, container),
// signed with a key only the agent holds, so the agent needs to keep no
// token (recovered executors keep theirs) and any other local user, or an
// executor speaking for another, gets 401.

// executorKeyFile is the key, in the agent's private meta dir.
func (a *Agent) executorKeyFile() string { return filepath.Join(a.cfg.WorkDir, "meta", "executor.key") }

// loadExecutorKey reads the signing key, making it on first use (32 bytes
// from crypto/rand, 0600, linked into place whole).
func loadExecutorKey(path string) ([]byte, error) {
	read := func() ([]byte, error) {
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("executor key %s: want a regular file of mode 0600, have %v", path, fi.Mode())
		}
		b, err := io.ReadAll(io.LimitReader(f, 65))
		if err != nil {
			return nil, err
		}
		if len(b) != 32 {
			return nil, fmt.Errorf("executor key %s: %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if k, err := read(); !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := secretfile.Create(path, k); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return read()
}

// executorToken is the token of one executor's container.
func executorToken(key []byte, fw, executorID, containerID string) string {
	m := hmac.New(sha256.New, key)
	for _, s := range []string{"aurorabox-executor", fw, executorID, containerID} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// executorAuthorized reports whether r carries the token of the executor
// container the call names. Caller holds a.mu.
func (a *Agent) executorAuthorized(r *http.Request, fw, executorID string, ex *executorState) bool {
	if ex == nil {
		return false
	}
	want := "Bearer " + executorToken(a.execKey, fw, executorID, ex.containerID)
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}
