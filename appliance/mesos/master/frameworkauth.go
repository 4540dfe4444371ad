package master

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"syscall"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Framework authentication and root, as Mesos' master does where it has a
// mechanism:
//
//   - Config.Credentials (mesos-master --credentials) are the principals and
//     secrets frameworks authenticate with: HTTP basic authentication of
//     /api/v1/scheduler (mesos-master --http_framework_authenticators=basic).
//     A request that carries an Authorization header must match one of them
//     (401 with Mesos' WWW-Authenticate otherwise), whether or not
//     authentication is required; Config.AuthenticateHTTPFrameworks
//     (--authenticate_http_frameworks) requires it of every request.
//   - A framework that subscribed with a credential is authenticated: its
//     principal is recorded (and set as FrameworkInfo.principal when the
//     framework left it empty; one that names another principal is
//     refused, as Mesos). Every later call for it must carry the same
//     credential: a call without one gets 401 and a call as another
//     principal 400, as in Mesos with authentication required. The stream
//     id alone is not enough, so that whoever learns it (it is in logs and
//     proxies) cannot act for a framework that may run tasks as root.
//   - A framework's principal cannot change when it subscribes again (Mesos:
//     "Changing framework's principal is not allowed."), except that a
//     framework that was not authenticated may become so. An unauthenticated
//     framework cannot claim, in FrameworkInfo.principal, a principal this
//     master has a credential for.
//   - Root: a framework whose user resolves to uid 0 ("root", any user with
//     uid 0 here, or none: the agent's own user) is refused at SUBSCRIBE
//     unless it is authenticated or Config.RootSubmissions is set (Mesos'
//     --root_submissions, which checks the name "root" only), with Mesos'
//     ERROR event. Each launch tells the agent whether the framework may
//     run anything as root (agentproto.Command.RootAllowed); the agent, which
//     knows which uid a task would really run as (a task's or executor's
//     CommandInfo.user can name root when the framework's user does not),
//     refuses the others with TASK_ERROR.

// FrameworkAuthRealm is the realm of the master's WWW-Authenticate
// challenge to frameworks: Mesos' (DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM).
const FrameworkAuthRealm = "mesos-master-scheduler"

// maxCredentialsFile bounds what ReadCredentials reads.
const maxCredentialsFile = 1 << 20

// Credentials maps a principal to its secret.
type Credentials map[string]string

// ReadCredentials reads a credentials file in Mesos' JSON format,
// {"credentials": [{"principal": "...", "secret": "..."}]}; path may be
// given as file:///path, as Mesos accepts. The file must be a regular file
// that only its owner can read or write (group and others have no access),
// and hold at least one credential; a principal may not contain ':' (HTTP
// basic authentication could not carry it) and appears once.
func ReadCredentials(path string) (Credentials, error) {
	path = strings.TrimPrefix(path, "file://")
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials file %s: not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("credentials file %s: mode %#o lets other users read or change it; make it 0600", path, m)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if len(b) > maxCredentialsFile {
		return nil, fmt.Errorf("credentials file %s: longer than %d bytes", path, maxCredentialsFile)
	}
	var doc struct {
		Credentials []struct {
			Principal *string `json:"principal"`
			Secret    *string `json:"secret"`
		} `json:"credentials"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("credentials file %s: data after the JSON object", path)
	}
	if len(doc.Credentials) == 0 {
		return nil, fmt.Errorf("credentials file %s: no credentials (want {\"credentials\": [{\"principal\": ..., \"secret\": ...}]})", path)
	}
	creds := Credentials{}
	for i, c := range doc.Credentials {
		switch {
		case c.Principal == nil || *c.Principal == "":
			return nil, fmt.Errorf("credentials file %s: credential %d has no principal", path, i+1)
		case strings.Contains(*c.Principal, ":"):
			return nil, fmt.Errorf("credentials file %s: principal %q contains ':'", path, *c.Principal)
		case c.Secret == nil || *c.Secret == "":
			return nil, fmt.Errorf("credentials file %s: principal %q has no secret", path, *c.Principal)
		}
		if _, dup := creds[*c.Principal]; dup {
			return nil, fmt.Errorf("credentials file %s: principal %q appears twice", path, *c.Principal)
		}
		creds[*c.Principal] = *c.Secret
	}
	return creds, nil
}

// authenticateFramework returns the principal a scheduler API request
// authenticated as ("" for none). It answers 401 itself, and returns false,
// for a request whose Authorization header matches no credential, and for
// one without the header when every framework must authenticate.
func (m *Master) authenticateFramework(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.Header.Get("Authorization") == "" {
		if !m.cfg.AuthenticateHTTPFrameworks {
			return "", true
		}
		unauthorized(w, "this master requires frameworks to authenticate (--authenticate-http-frameworks): send HTTP basic authentication with a principal of its --credentials")
		return "", false
	}
	name, secret, ok := r.BasicAuth()
	if !ok {
		unauthorized(w, "framework authentication failed: the Authorization header is not HTTP basic authentication")
		return "", false
	}
	want, known := m.cfg.Credentials[name]
	// Compare against something of the same kind when the principal is
	// unknown, so that timing tells nothing of which principals exist.
	if !known {
		want = "\x00unknown principal"
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || !known {
		m.cfg.Logger.Warn("refused a framework request with a wrong credential", "principal", name, "remote", r.RemoteAddr)
		unauthorized(w, "framework authentication failed: wrong principal or secret")
		return "", false
	}
	return name, true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+FrameworkAuthRealm+`"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

// checkSubscribePrincipal applies the rules of FrameworkInfo.principal to a
// SUBSCRIBE authenticated as principal (or not, ""), setting it when the
// framework authenticated without naming it. It answers the request itself
// and returns false when the subscription is refused.
func (m *Master) checkSubscribePrincipal(w http.ResponseWriter, info *mesos.FrameworkInfo, principal string) bool {
	claimed := info.GetPrincipal()
	switch {
	case principal != "" && info.Principal == nil:
		info.Principal = proto.String(principal)
	case principal != "" && claimed != principal:
		http.Error(w, fmt.Sprintf("Failed to validate scheduler::Call: Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", principal, claimed), http.StatusBadRequest)
		return false
	case principal == "" && claimed != "":
		if _, ok := m.cfg.Credentials[claimed]; ok {
			unauthorized(w, fmt.Sprintf("framework_info.principal '%s' has a credential on this master: authenticate as it (HTTP basic authentication)", claimed))
			return false
		}
	}
	return true
}

// subscribeRefusal is a SUBSCRIBE refused after validation, which Mesos
// answers with an ERROR event on the new stream rather than an HTTP error.
type subscribeRefusal struct{ msg string }

func (e *subscribeRefusal) Error() string { return e.msg }

// writeSubscribeRefusal answers a refused SUBSCRIBE as Mesos does: 200
// with a stream id and a stream of one ERROR event, then its end.
func writeSubscribeRefusal(w http.ResponseWriter, media, streamID, msg string) {
	b, err := encode(media, &scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: msg}})
	if err != nil {
		http.Error(w, msg, http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", media)
	w.Header().Set("Mesos-Stream-Id", streamID)
	w.WriteHeader(http.StatusOK)
	// Flushed first, the response is a stream (chunked, no length), which
	// clients read as RecordIO.
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	_ = recordio.NewWriter(w).WriteFrame(b)
	_ = rc.Flush()
}

// admitFrameworkLocked checks a subscription of info, authenticated as
// principal (or not, ""), against the framework it fails over (fw, nil for
// a new one): a framework's principal may not change, and a framework
// whose user resolves to uid 0 needs authentication or root_submissions.
func (m *Master) admitFrameworkLocked(fw *framework, info mesos.FrameworkInfo, principal string) error {
	if fw != nil {
		if old := m.frameworkPrincipalLocked(fw); old != "" && old != principal {
			m.cfg.Logger.Warn("refused a subscription that changes the framework's principal",
				"framework", fw.id, "principal", old, "new_principal", principal)
			return &subscribeRefusal{"Changing framework's principal is not allowed."}
		}
	}
	if principal == "" && !m.cfg.RootSubmissions {
		if root, shown := resolvesToRoot(info.User); root {
			m.cfg.Logger.Warn("refused an unauthenticated framework that would run as root", "name", info.Name, "user", info.User)
			return &subscribeRefusal{fmt.Sprintf("User %s is not allowed to run frameworks without --root_submissions set: %s", shown, agentproto.RootRefusal)}
		}
	}
	return nil
}

// frameworkPrincipalLocked is the principal fw authenticated as. A framework
// the master knows only from its agents (after a restart) keeps the
// principal of its FrameworkInfo when this master has a credential for it,
// since an unauthenticated framework cannot claim such a principal.
func (m *Master) frameworkPrincipalLocked(fw *framework) string {
	if fw.recovered {
		if p := fw.info.GetPrincipal(); p != "" {
			if _, ok := m.cfg.Credentials[p]; ok {
				return p
			}
		}
		return ""
	}
	return fw.principal
}

// rootAllowedLocked tells whether fw may run tasks as uid 0.
func (m *Master) rootAllowedLocked(fw *framework) bool {
	return m.cfg.RootSubmissions || fw.principal != ""
}

// resolvesToRoot tells whether a framework user runs as uid 0 on this host:
// root, no user (the agent's own, root), or a user whose uid is 0. It
// returns the user as messages show it.
func resolvesToRoot(name string) (bool, string) {
	switch name {
	case "":
		return true, "'' (the agent's own user, root)"
	case "root":
		return true, "'root'"
	}
	if u, err := user.Lookup(name); err == nil && u.Uid == "0" {
		return true, fmt.Sprintf("'%s' (uid 0)", name)
	}
	return false, "'" + name + "'"
}

// checkCallPrincipal answers a non-SUBSCRIBE call that does not carry the
// credential its framework authenticated with: 401 without one, 400 as
// another principal (Mesos' message). It returns false when it answered.
// Calls for frameworks it does not know go on, for Handle to answer.
func (m *Master) checkCallPrincipal(w http.ResponseWriter, fwID, principal string) bool {
	m.mu.Lock()
	fw := m.frameworks[fwID]
	var want string
	if fw != nil {
		want = fw.principal
	}
	m.mu.Unlock()
	switch {
	case fw == nil || want == principal:
		return true
	case principal == "":
		unauthorized(w, fmt.Sprintf("framework %s authenticated as '%s': every call for it needs that credential", fwID, want))
	default:
		http.Error(w, fmt.Sprintf("Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", principal, want), http.StatusBadRequest)
	}
	return false
}

// errNoCredentials is why a master cannot require authentication.
var errNoCredentials = errors.New("--authenticate-http-frameworks needs --credentials: no framework could authenticate")

// ValidateAuthConfig checks the framework authentication settings of cfg.
func ValidateAuthConfig(cfg Config) error {
	if cfg.AuthenticateHTTPFrameworks && len(cfg.Credentials) == 0 {
		return errNoCredentials
	}
	return nil
}
