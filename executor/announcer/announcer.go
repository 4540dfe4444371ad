package announcer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/go-zookeeper/zk"
)

// Defaults for Config's zero values.
const (
	// DefaultSessionTimeout is kazoo's default session timeout, which
	// Aurora's announcer uses.
	DefaultSessionTimeout = 10 * time.Second
	// DefaultConnectTimeout is what Aurora derives from the default
	// HealthCheckConfig: initial_interval_secs + max_consecutive_failures ×
	// interval_secs = 15 + 0 × 10 seconds.
	DefaultConnectTimeout = 15 * time.Second
)

// Retry pacing after a failed registration attempt, and how long Stop lets
// the background goroutine finish an operation in flight.
const (
	minRetry  = 100 * time.Millisecond
	maxRetry  = 5 * time.Second
	stopGrace = 3 * time.Second
)

// ErrTimeout is returned (wrapped) by Start when no ZooKeeper session could
// be established, or the member could not be registered, within
// Config.ConnectTimeout. The executor reports it as TASK_FAILED "Creating
// Announcer Serverset timed out."
var ErrTimeout = errors.New("timed out")

// Credential is an authentication to add to the ZooKeeper session (Aurora's
// --announcer-zookeeper-auth-config "auth" entries), e.g. scheme "digest"
// with credential "user:password".
type Credential struct {
	Scheme     string
	Credential []byte
}

// Config configures Start.
type Config struct {
	// Servers is the ensemble, "host:port" each (":2181" is assumed when
	// the port is missing); entries may also be comma-separated lists.
	Servers []string
	// Path is the serverset path: ServerSetPath(base, role, env, job), or
	// a job's custom zk_path. Redundant slashes are ignored.
	Path string
	// Member is the member znode's data, normally serverset.Marshal's output.
	Member []byte
	// SessionTimeout requested from ZooKeeper (DefaultSessionTimeout if zero).
	SessionTimeout time.Duration
	// ConnectTimeout bounds Start: the connection and the first
	// registration (DefaultConnectTimeout if zero).
	ConnectTimeout time.Duration
	// ACL of the member and of the ancestors Start creates; world:anyone
	// with all permissions if empty.
	ACL []zk.ACL
	// Auth is added to the session before anything is created.
	Auth []Credential
	// Logger receives the announcer's messages (and go-zookeeper's, at
	// debug level). Nil discards them.
	Logger *slog.Logger
}

// Announcer keeps one ServerSet member registered. Its methods are safe for
// concurrent use.
type Announcer struct {
	cfg    Config
	logger *slog.Logger
	conn   *zk.Conn
	hosts  *hostProvider

	kick     chan struct{} // session state changed; capacity 1
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when run returns
	stopOnce sync.Once

	mu     sync.Mutex
	path   string    // current member, "" while unregistered
	lostAt time.Time // when the member was lost, zero while registered

	// Owned by Start, then by run, then by Stop once run has returned.
	owner     int64           // session that owns path
	watch     <-chan zk.Event // exists/data watch on path, nil when not armed
	ambiguous int64           // session in which a create's outcome is unknown
}

// Start connects to ZooKeeper, registers cfg.Member under cfg.Path and keeps
// it registered until Stop. It returns once the member exists; ctx bounds
// only that (cancelling it later does not stop the announcer). It fails
// with an error wrapping ErrTimeout after cfg.ConnectTimeout, with ctx's
// error when ctx ends first, and at once when ZooKeeper refuses the
// registration for good (e.g. zk.ErrNoAuth, zk.ErrNoChildrenForEphemerals,
// zk.ErrInvalidPath, zk.ErrAuthFailed).
func Start(ctx context.Context, cfg Config) (*Announcer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Announcer{
		cfg:    cfg,
		logger: cfg.Logger.With("serverset", cfg.Path),
		hosts:  &hostProvider{DNSHostProvider: zk.NewDNSHostProvider()},
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithHostProvider(a.hosts),
		zklog.Option(a.logger, slog.LevelDebug),
		zk.WithEventCallback(a.onEvent))
	if err != nil {
		return nil, fmt.Errorf("announcer: connect to %s: %w", strings.Join(cfg.Servers, ","), err)
	}
	a.conn = conn
	// go-zookeeper's Close waits up to a second for an unconnected
	// session; Start's caller should not.
	fail := func(err error) (*Announcer, error) {
		go conn.Close()
		return nil, err
	}

	deadline := time.NewTimer(cfg.ConnectTimeout)
	defer deadline.Stop()
	timedOut := func(what string) error {
		return fmt.Errorf("announcer: %s %s within %v: %w", what, strings.Join(cfg.Servers, ","), cfg.ConnectTimeout, ErrTimeout)
	}
	for conn.State() != zk.StateHasSession {
		select {
		case <-a.kick:
		case <-deadline.C:
			return fail(timedOut("no ZooKeeper session with"))
		case <-ctx.Done():
			return fail(fmt.Errorf("announcer: connecting to ZooKeeper: %w", context.Cause(ctx)))
		}
	}
	for _, c := range cfg.Auth {
		if err := conn.AddAuth(c.Scheme, c.Credential); err != nil {
			return fail(fmt.Errorf("announcer: add %s auth: %w", c.Scheme, err))
		}
	}

	retry := minRetry
	for {
		err := a.ensure()
		if err == nil && a.path != "" {
			break
		}
		var wait <-chan time.Time
		if err != nil {
			if permanent(err) {
				return fail(fmt.Errorf("announcer: register in %s: %w", cfg.Path, err))
			}
			a.logger.Warn("registration failed; retrying", "err", err, "retry_in", retry)
			wait = time.After(retry)
			retry = min(2*retry, maxRetry)
		}
		// err == nil without a member: no session right now; the
		// session callback kicks when there is one again.
		select {
		case <-a.kick:
		case <-wait:
		case <-deadline.C:
			return fail(timedOut(fmt.Sprintf("could not register in %s on", cfg.Path)))
		case <-ctx.Done():
			return fail(fmt.Errorf("announcer: registering in %s: %w", cfg.Path, context.Cause(ctx)))
		}
	}
	go a.run()
	return a, nil
}

func (c Config) withDefaults() (Config, error) {
	var servers []string
	for _, s := range c.Servers {
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				servers = append(servers, part)
			}
		}
	}
	if len(servers) == 0 {
		return c, errors.New("announcer: no ZooKeeper servers")
	}
	c.Servers = servers
	if strings.TrimSpace(c.Path) == "" {
		return c, errors.New("announcer: no serverset path")
	}
	c.Path = "/" + strings.Join(strings.FieldsFunc(c.Path, func(r rune) bool { return r == '/' }), "/")
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if len(c.ACL) == 0 {
		c.ACL = zk.WorldACL(zk.PermAll)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Path is the current member znode (e.g. /aurora/role/env/job/member_0000000003),
// or "" while the announcer is between members or stopped.
func (a *Announcer) Path() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.path
}

// DisconnectedTime is how long the announcer has been without a member (0
// while registered), like Aurora's announcer disconnected_time metric.
func (a *Announcer) DisconnectedTime() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lostAt.IsZero() {
		return 0
	}
	return time.Since(a.lostAt)
}

// Stop deletes the member and closes the ZooKeeper session (which removes
// the member too, should the delete not get through). It returns when the
// background goroutine has ended. Calling it again does nothing.
func (a *Announcer) Stop() {
	a.stopOnce.Do(func() {
		close(a.stop)
		select {
		case <-a.done:
		case <-time.After(stopGrace):
			a.logger.Warn("announcer still busy; closing the session anyway")
		}
		a.conn.Close()
		<-a.done
		a.mu.Lock()
		a.path = ""
		a.mu.Unlock()
		a.logger.Info("left serverset")
	})
}

// onEvent is go-zookeeper's event callback. It runs on the client's own
// goroutines and must not block.
func (a *Announcer) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	switch ev.State {
	case zk.StateExpired:
		// Reconnect (with a new session) without go-zookeeper's one
		// second pause: the old member is gone.
		a.hosts.reset()
		a.logger.Warn("ZooKeeper session expired", "server", ev.Server)
	case zk.StateHasSession:
		a.logger.Debug("ZooKeeper session established", "server", ev.Server)
	case zk.StateDisconnected:
		a.logger.Debug("disconnected from ZooKeeper", "server", ev.Server)
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// run keeps the member registered until Stop.
func (a *Announcer) run() {
	defer close(a.done)
	retry := minRetry
	var timer *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-a.stop:
			a.leave()
			return
		case <-a.kick:
		case ev := <-a.watch:
			a.watch = nil
			a.onWatch(ev)
		case <-retryC:
			retryC = nil
		}
		select {
		case <-a.stop:
			a.leave()
			return
		default:
		}
		err := a.ensure()
		if err == nil {
			retry = minRetry
			if timer != nil {
				timer.Stop()
			}
			retryC = nil
			continue
		}
		select {
		case <-a.stop:
			// Stop closed the session under an operation in flight.
			a.leave()
			return
		default:
		}
		a.logger.Warn("registration failed; retrying", "err", err, "retry_in", retry)
		if timer == nil {
			timer = time.NewTimer(retry)
		} else {
			timer.Reset(retry)
		}
		retryC = timer.C
		retry = min(2*retry, maxRetry)
	}
}

func (a *Announcer) onWatch(ev zk.Event) {
	switch ev.Type {
	case zk.EventNodeDeleted:
		a.lose("member deleted by another client")
	case zk.EventNotWatching:
		// The session ended (expired, or the client is closing).
		if errors.Is(ev.Err, zk.ErrSessionExpired) {
			a.lose("session expired")
		}
	default:
		// E.g. a data change: the watch is consumed; ensure re-arms it.
		a.logger.Debug("member znode event", "type", ev.Type.String(), "path", ev.Path)
	}
}

// lose forgets the member.
func (a *Announcer) lose(why string) {
	a.mu.Lock()
	p := a.path
	a.path = ""
	if a.lostAt.IsZero() {
		a.lostAt = time.Now()
	}
	a.mu.Unlock()
	a.watch = nil
	if p != "" {
		a.logger.Info("lost serverset membership", "member", p, "reason", why)
	}
}

// ensure makes sure a member owned by the current session exists and is
// watched. It returns nil when that holds, and also when there is no
// session to register in (a session event will trigger it again).
func (a *Announcer) ensure() error {
	for range 3 {
		if a.conn.State() != zk.StateHasSession {
			return nil
		}
		sid := a.conn.SessionID()
		if a.path != "" && a.owner != sid {
			a.lose("session changed")
		}
		if a.path != "" && a.watch != nil {
			return nil
		}
		if a.path == "" {
			p, err := a.join(sid)
			if err != nil {
				return err
			}
			a.owner = sid
			a.mu.Lock()
			lost := a.lostAt
			a.path, a.lostAt = p, time.Time{}
			a.mu.Unlock()
			if lost.IsZero() {
				a.logger.Info("joined serverset", "member", p)
			} else {
				a.logger.Info("rejoined serverset", "member", p, "unregistered_for", time.Since(lost).Round(time.Millisecond))
			}
		}
		ok, stat, ch, err := a.conn.ExistsW(a.path)
		if err != nil {
			return fmt.Errorf("watch %s: %w", a.path, err)
		}
		if !ok {
			a.lose("member deleted before it could be watched")
			continue
		}
		a.owner, a.watch = stat.EphemeralOwner, ch
		return nil
	}
	return errors.New("member keeps disappearing")
}

// join creates a member in session sid and returns its path.
func (a *Announcer) join(sid int64) (string, error) {
	if a.ambiguous == sid {
		p, err := a.adopt(sid)
		if err != nil {
			return "", err
		}
		a.ambiguous = 0
		if p != "" {
			return p, nil
		}
	}
	if err := a.reclaim(sid); err != nil {
		return "", err
	}
	prefix := strings.TrimSuffix(a.cfg.Path, "/") + "/" + serverset.MemberPrefix
	p, err := a.conn.Create(prefix, a.cfg.Member, zk.FlagEphemeralSequential, a.cfg.ACL)
	if errors.Is(err, zk.ErrNoNode) {
		if err = a.makePath(); err != nil {
			return "", err
		}
		p, err = a.conn.Create(prefix, a.cfg.Member, zk.FlagEphemeralSequential, a.cfg.ACL)
	}
	if err != nil {
		if errors.Is(err, zk.ErrConnectionClosed) {
			// The create may have happened; look before creating again.
			a.ambiguous = sid
		}
		return "", fmt.Errorf("create %s: %w", prefix, err)
	}
	return p, nil
}

// adopt looks for members session sid created with our data (by a create
// whose answer was lost), keeps the first and deletes the others. It
// returns "" when there is none.
func (a *Announcer) adopt(sid int64) (string, error) {
	nodes, err := a.members()
	if err != nil {
		return "", err
	}
	var keep string
	for _, n := range nodes {
		if n.Stat.EphemeralOwner != sid || !bytes.Equal(n.Data, a.cfg.Member) {
			continue
		}
		if keep == "" {
			keep = n.Path
			continue
		}
		if err := a.conn.Delete(n.Path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return "", fmt.Errorf("delete duplicate member %s: %w", n.Path, err)
		}
		a.logger.Info("deleted duplicate member", "member", n.Path)
	}
	if keep != "" {
		a.logger.Info("adopted member created before a connection loss", "member", keep)
	}
	return keep, nil
}

// members reads the ServerSet's member_ nodes in name order; a node that
// goes while they are read is left out, and so is a missing ServerSet.
func (a *Announcer) members() ([]serverset.Node, error) {
	nodes, err := serverset.Nodes(a.conn, a.cfg.Path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return nodes, err
}

// reclaim deletes the stale members of other sessions, left by a process
// that announced before us and whose session has not expired yet (an
// executor killed before it could leave, the same task's executor before a
// restart, an ended task of the same instance):
//
//   - a member naming our service endpoint (host and port): a port is held
//     by one process of a host at a time, so whoever announced it is gone;
//   - a member of our shard on our host whose service endpoint refuses
//     connections: nothing serves that instance there any more.
//
// Either would send clients to an instance that is not there, or count it
// twice. A live member deleted by mistake is re-created by its announcer,
// which watches it.
func (a *Announcer) reclaim(sid int64) error {
	ours, err := serverset.Parse(a.cfg.Member)
	if err != nil || ours.ServiceEndpoint.Host == "" || ours.ServiceEndpoint.Port == 0 {
		return nil
	}
	nodes, err := a.members()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		p, data, stat := n.Path, n.Data, n.Stat
		if stat.EphemeralOwner == sid || stat.EphemeralOwner == 0 {
			continue
		}
		m, err := serverset.Parse(data)
		if err != nil || m.ServiceEndpoint.Host != ours.ServiceEndpoint.Host {
			continue
		}
		sameEndpoint := m.ServiceEndpoint.Port == ours.ServiceEndpoint.Port
		if !sameEndpoint && !(sameShard(m, ours) && refused(m.ServiceEndpoint)) {
			continue
		}
		if err := a.conn.Delete(p, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("delete stale member %s: %w", p, err)
		}
		a.logger.Info("deleted a stale member", "member", p, "same_endpoint", sameEndpoint,
			"endpoint", net.JoinHostPort(m.ServiceEndpoint.Host, strconv.Itoa(m.ServiceEndpoint.Port)),
			"session", fmt.Sprintf("0x%x", stat.EphemeralOwner))
	}
	return nil
}

func sameShard(a, b serverset.Member) bool {
	return a.Shard != nil && b.Shard != nil && *a.Shard == *b.Shard
}

// refused reports whether a connection to e is refused: nothing listens
// there (on our own host). Any other outcome (a timeout, a name that does
// not resolve) says nothing.
func refused(e serverset.Endpoint) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// makePath creates the serverset path and its missing ancestors,
// persistent, with the configured ACL. Nodes that exist are left alone
// (whatever their ACL).
func (a *Announcer) makePath() error {
	p := ""
	for part := range strings.SplitSeq(strings.TrimPrefix(a.cfg.Path, "/"), "/") {
		if part == "" {
			continue
		}
		p += "/" + part
		ok, _, err := a.conn.Exists(p)
		if err != nil {
			return fmt.Errorf("exists %s: %w", p, err)
		}
		if ok {
			continue
		}
		if _, err := a.conn.Create(p, nil, zk.FlagPersistent, a.cfg.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil
}

// leave deletes the member on Stop, if there is a session to do it with.
func (a *Announcer) leave() {
	if a.path == "" || a.conn.State() != zk.StateHasSession {
		return
	}
	if err := a.conn.Delete(a.path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		a.logger.Warn("could not delete member; closing the session removes it", "member", a.path, "err", err)
		return
	}
	a.logger.Debug("deleted member", "member", a.path)
}

// permanent reports errors that retrying will not cure.
func permanent(err error) bool {
	for _, e := range []error{zk.ErrNoAuth, zk.ErrInvalidACL, zk.ErrBadArguments, zk.ErrInvalidPath,
		zk.ErrNoChildrenForEphemerals, zk.ErrAuthFailed, zk.ErrInvalidFlags} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// hostProvider is go-zookeeper's DNSHostProvider except for when the
// client pauses: go-zookeeper sleeps a second before every attempt once it
// has tried each server since its last session, which with one server
// means before every reconnection. This sleeps only after a whole round of
// failed attempts, and never right after a session expired.
type hostProvider struct {
	*zk.DNSHostProvider
	mu    sync.Mutex
	tried int // attempts since the last session or pause
}

func (p *hostProvider) Next() (string, bool) {
	server, _ := p.DNSHostProvider.Next()
	p.mu.Lock()
	defer p.mu.Unlock()
	pause := p.tried >= p.DNSHostProvider.Len()
	if pause {
		p.tried = 0
	}
	p.tried++
	return server, pause
}

func (p *hostProvider) Connected() {
	p.DNSHostProvider.Connected()
	p.reset()
}

func (p *hostProvider) reset() {
	p.mu.Lock()
	p.tried = 0
	p.mu.Unlock()
}
