// Package client is the library behind the `aurora` and `aurora_admin`
// commands: clusters.json, finding the leading scheduler (through the
// ZooKeeper ServerSet or scheduler_uri), job keys and instance specs, and
// calling the scheduler's API. Failures carry Aurora's client exit codes
// (§3.2 of the reference), so that scripts see the same codes.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/shiro"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/go-zookeeper/zk"
)

// Aurora's client exit codes.
const (
	ExitOK                   = 0
	ExitInvalidConfiguration = 3
	ExitCommandFailure       = 4
	ExitInvalidCommand       = 5
	ExitInvalidParameter     = 6
	ExitNetworkError         = 7
	ExitTimeout              = 9
	ExitAPIError             = 10
	ExitUnknownError         = 20
	ExitAuthError            = 30
	ExitInterrupted          = 130
)

// Error is a failure with the exit code the client must end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Cluster is one clusters.json entry.
type Cluster struct {
	Name              string `json:"name"`
	ZK                string `json:"zk,omitempty"`
	ZKPort            int    `json:"zk_port,omitempty"`
	SchedulerZKPath   string `json:"scheduler_zk_path,omitempty"`
	SchedulerURI      string `json:"scheduler_uri,omitempty"`
	ProxyURL          string `json:"proxy_url,omitempty"`
	AuthMechanism     string `json:"auth_mechanism,omitempty"`
	SlaveRoot         string `json:"slave_root,omitempty"`
	SlaveRunDirectory string `json:"slave_run_directory,omitempty"`
	// BasicAuthFile, an aurorabox extension that `aurorabox up` writes, is
	// a Shiro INI file (the scheduler's --shiro-ini) whose first [users]
	// entry is sent as HTTP basic credentials. Without it, or when it
	// cannot be read, credentials come from ~/.netrc as in Aurora.
	BasicAuthFile string `json:"basic_auth_file,omitempty"`
}

// LoadClusters reads clusters.json from the appliance's data dir (what
// `aurorabox up` writes), $AURORA_CONFIG_ROOT (default /etc/aurora), then
// ~/.aurora, and merges them (later entries of the same name win). A file
// is a JSON list of clusters or an object of them.
func LoadClusters() (map[string]Cluster, error) { return LoadClustersFrom("") }

// LoadClustersFrom is LoadClusters with the appliance's data dir given
// (applianceDir; "" looks it up as LoadClusters does).
func LoadClustersFrom(applianceDir string) (map[string]Cluster, error) {
	root := os.Getenv("AURORA_CONFIG_ROOT")
	if root == "" {
		root = "/etc/aurora"
	}
	// The running appliance's clusters.json comes first, so that a user's
	// own files override it: $AURORABOX_DATA_DIR, else ~/.aurorabox.
	var dirs []string
	home, herr := os.UserHomeDir()
	if applianceDir == "" {
		applianceDir = os.Getenv("AURORABOX_DATA_DIR")
	}
	if applianceDir != "" {
		dirs = append(dirs, applianceDir)
	} else if herr == nil {
		dirs = append(dirs, filepath.Join(home, ".aurorabox"))
	}
	dirs = append(dirs, root)
	if herr == nil {
		dirs = append(dirs, filepath.Join(home, ".aurora"))
	}
	out := map[string]Cluster{}
	for _, d := range dirs {
		p := filepath.Join(d, "clusters.json")
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, Errorf(ExitInvalidConfiguration, "%s: %v", p, err)
		}
		var list []Cluster
		if err := json.Unmarshal(b, &list); err != nil {
			var byName map[string]Cluster
			if err2 := json.Unmarshal(b, &byName); err2 != nil {
				return nil, Errorf(ExitInvalidConfiguration, "%s: not a list or object of clusters: %v", p, err)
			}
			for _, c := range byName {
				list = append(list, c)
			}
		}
		for _, c := range list {
			if c.Name != "" {
				out[c.Name] = c
			}
		}
	}
	return out, nil
}

// Client talks to one cluster's scheduler.
type Client struct {
	Cluster Cluster
	HTTP    *http.Client
	// User and Password, when set, are sent as HTTP basic credentials:
	// from the cluster's basic_auth_file, else ~/.netrc (as Aurora).
	User, Password string
	// credSource is where User came from; credProblem why the cluster's
	// basic_auth_file could not be used. Both explain a 401.
	credSource  string
	credProblem error
	// BypassLeaderRedirect sends Aurora's Bypass-Leader-Redirect header.
	BypassLeaderRedirect bool
	// RetryFor bounds Call's retries of transient errors (see Call).
	RetryFor time.Duration
	leader   string
}

// New returns a client for the named cluster.
func New(clusters map[string]Cluster, name string) (*Client, error) {
	c, ok := clusters[name]
	if !ok {
		var names []string
		for n := range clusters {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, Errorf(ExitInvalidParameter, "Unknown cluster: %s (known: %s)", name, strings.Join(names, ", "))
	}
	cl := &Client{Cluster: c, HTTP: &http.Client{Timeout: 60 * time.Second, CheckRedirect: checkRedirect}}
	cl.findCredentials()
	return cl, nil
}

// checkRedirect follows up to 10 redirects, as net/http does, and names a
// loop errRedirectLoop so that Call can retry it.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after 10 redirects (at %s): %w", req.URL.Host, errRedirectLoop)
	}
	return nil
}

// findCredentials sets User and Password from the cluster's
// basic_auth_file, else from ~/.netrc for the scheduler's host.
func (c *Client) findCredentials() {
	if f := c.Cluster.BasicAuthFile; f != "" {
		users, err := shiro.ReadFile(f)
		if err == nil {
			c.User, c.Password, c.credSource = users[0].Name, users[0].Password, f
			return
		}
		c.credProblem = fmt.Errorf("the cluster's credential file could not be read: %w", err)
	}
	if u, p := netrc(hostOf(c.Cluster)); u != "" {
		c.User, c.Password, c.credSource = u, p, "~/.netrc"
	}
}

// authError is the ExitAuthError of an RPC the scheduler refused (HTTP
// 401/403, or AUTH_FAILED), saying which credentials were sent and how to
// provide them.
func (c *Client) authError(method, base, why string) error {
	msg := fmt.Sprintf("Authentication failed for %s at %s (%s)", method, base, why)
	switch {
	case c.User != "":
		msg += fmt.Sprintf(": the scheduler refused user %s from %s", c.User, c.credSource)
	case c.credProblem != nil:
		msg += fmt.Sprintf(": no credentials sent; %v. Run the client as the user who started the appliance, or put `machine %s login USER password PASSWORD` in ~/.netrc", c.credProblem, hostOf(c.Cluster))
	default:
		msg += fmt.Sprintf(": no credentials for cluster %s; put `machine %s login USER password PASSWORD` in ~/.netrc", c.Cluster.Name, hostOf(c.Cluster))
	}
	return Errorf(ExitAuthError, "%s", msg)
}

func hostOf(c Cluster) string {
	if c.SchedulerURI != "" {
		if i := strings.Index(c.SchedulerURI, "://"); i >= 0 {
			h := c.SchedulerURI[i+3:]
			h, _, _ = strings.Cut(h, "/")
			host, _, err := net.SplitHostPort(h)
			if err == nil {
				return host
			}
			return h
		}
	}
	return c.ZK
}

// netrc finds credentials for host in ~/.netrc, as Aurora's client does
// for basic auth.
func netrc(host string) (string, string) {
	home, err := os.UserHomeDir()
	if err != nil || host == "" {
		return "", ""
	}
	b, err := os.ReadFile(filepath.Join(home, ".netrc"))
	if err != nil {
		return "", ""
	}
	f := strings.Fields(string(b))
	var machine, login, password string
	for i := 0; i+1 < len(f); i += 2 {
		switch f[i] {
		case "machine":
			if machine == host && login != "" {
				return login, password
			}
			machine, login, password = f[i+1], "", ""
		case "default":
			machine, login, password = host, "", ""
			i--
		case "login":
			login = f[i+1]
		case "password":
			password = f[i+1]
		}
	}
	if machine == host {
		return login, password
	}
	return "", ""
}

// Leader is the leading scheduler's base URL: the first member_ of the
// cluster's ServerSet (its https endpoint if any, else http), or
// scheduler_uri.
func (c *Client) Leader(ctx context.Context) (string, error) {
	if c.leader != "" {
		return c.leader, nil
	}
	if c.Cluster.ZK != "" && c.Cluster.SchedulerZKPath != "" {
		port := c.Cluster.ZKPort
		if port == 0 {
			port = 2181
		}
		var servers []string
		for _, h := range strings.Split(c.Cluster.ZK, ",") {
			servers = append(servers, net.JoinHostPort(strings.TrimSpace(h), strconv.Itoa(port)))
		}
		if u, err := serverSetLeader(servers, c.Cluster.SchedulerZKPath); err == nil {
			c.leader = u
			return u, nil
		} else if c.Cluster.SchedulerURI == "" {
			return "", Errorf(ExitNetworkError, "no scheduler found in ZooKeeper %s under %s: %w", strings.Join(servers, ","), c.Cluster.SchedulerZKPath, err)
		}
	}
	if c.Cluster.SchedulerURI == "" {
		return "", Errorf(ExitInvalidConfiguration, "cluster %s has neither zk/scheduler_zk_path nor scheduler_uri", c.Cluster.Name)
	}
	c.leader = strings.TrimRight(c.Cluster.SchedulerURI, "/")
	return c.leader, nil
}

func serverSetLeader(servers []string, path string) (string, error) {
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false), zklog.Option(slog.Default(), slog.LevelDebug))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	nodes, err := serverset.Nodes(conn, path)
	if errors.Is(err, zk.ErrNoNode) {
		return "", fmt.Errorf("%w under %s (no such path)", errNoMember, path)
	}
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		m, err := serverset.Parse(n.Data)
		if err != nil {
			continue
		}
		if e, ok := m.AdditionalEndpoints["https"]; ok {
			return "https://" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), nil
		}
		e, ok := m.AdditionalEndpoints["http"]
		if !ok {
			e = m.ServiceEndpoint
		}
		return "http://" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), nil
	}
	return "", fmt.Errorf("%w under %s", errNoMember, path)
}

// errNoMember is an empty ServerSet: no scheduler leads, or the leader has
// not advertised itself yet.
var errNoMember = errors.New("no member_ node")

// Retry pacing of Call through a leader change (Aurora's client retries
// transport errors too, re-resolving the leader each time).
const (
	// DefaultRetryFor bounds how long Call keeps retrying transient
	// errors: long enough for a leader's ZooKeeper session to expire
	// (10 s) and the next one to be elected and advertised.
	DefaultRetryFor = 30 * time.Second
	minRetryWait    = 100 * time.Millisecond
	maxRetryWait    = 2 * time.Second
)

// Call invokes an RPC with named parameters and returns its Response. A
// response that is not OK is returned with an *Error carrying
// ExitAPIError (or ExitAuthError) and the scheduler's messages.
//
// Errors that say no scheduler handled the request (a refused connection,
// HTTP 502, 503 or 504 without an API response, a redirect loop) are
// transient: while the schedulers elect a leader, a standby answers 503
// and the ServerSet may still name the old one. Call retries them with
// backoff, looking the leader up again each time, for up to RetryFor
// (DefaultRetryFor when zero, none when negative) or until ctx ends.
func (c *Client) Call(ctx context.Context, method string, params any) (*api.Response, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, Errorf(ExitUnknownError, "%s: %v", method, err)
	}
	if len(body) > limits.APIRequestBytes {
		return nil, Errorf(ExitInvalidConfiguration, "%s: the request is %d bytes, more than the %d bytes the scheduler accepts", method, len(body), limits.APIRequestBytes)
	}
	retryFor := c.RetryFor
	if retryFor == 0 {
		retryFor = DefaultRetryFor
	}
	deadline := time.Now().Add(retryFor)
	wait := minRetryWait
	for {
		r, transient, err := c.call(ctx, method, body)
		if !transient || time.Now().Add(wait).After(deadline) {
			return r, err
		}
		c.leader = "" // the leader may have changed: look again
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, err
		case <-t.C:
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// call makes one attempt at an RPC; transient reports an error no
// scheduler acted on, which Call retries.
func (c *Client) call(ctx context.Context, method string, body []byte) (_ *api.Response, transient bool, _ error) {
	base, err := c.Leader(ctx)
	if err != nil {
		// No scheduler in the ServerSet yet: the leader may be
		// advertising itself.
		return nil, errors.Is(err, errNoMember), err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/"+method, bytes.NewReader(body))
	if err != nil {
		return nil, false, Errorf(ExitInvalidConfiguration, "%s: %v", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	if c.BypassLeaderRedirect {
		req.Header.Set("Bypass-Leader-Redirect", "true")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, notHandled(err), Errorf(ExitNetworkError, "Unable to connect to the scheduler at %s: %v", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		why := fmt.Sprintf("HTTP %d", resp.StatusCode)
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var r api.Response
		if json.Unmarshal(data, &r) == nil && len(r.Details) > 0 {
			why += ": " + messages(&r)
		}
		return nil, false, c.authError(method, base, why)
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, limits.APIResponseBytes))
	var r api.Response
	if err := json.Unmarshal(data, &r); err != nil {
		busy := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		return nil, busy, Errorf(ExitNetworkError, "%s at %s: HTTP %d, not an API response: %.200s", method, base, resp.StatusCode, data)
	}
	if r.ResponseCode == api.AuthFailed {
		return &r, false, c.authError(method, base, messages(&r))
	}
	if r.ResponseCode != api.OK && r.ResponseCode != api.Warning {
		return &r, false, Errorf(ExitAPIError, "%s", messages(&r))
	}
	return &r, false, nil
}

// errRedirectLoop is what CheckRedirect returns for a redirect loop (a
// standby naming a scheduler that redirects back).
var errRedirectLoop = errors.New("redirect loop")

// notHandled reports a failed request that reached no scheduler's API: the
// connection was refused (nothing listens: a scheduler restarting) or the
// redirects went round in circles (standbys naming a stale leader).
func notHandled(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, errRedirectLoop) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func messages(r *api.Response) string {
	var ms []string
	for _, d := range r.Details {
		ms = append(ms, d.Message)
	}
	if len(ms) == 0 {
		return string(r.ResponseCode)
	}
	return strings.Join(ms, "; ")
}
