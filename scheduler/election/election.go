// Package election elects the leading scheduler in ZooKeeper, as Aurora's
// schedulers do with Curator's LeaderSelector (reference §8.6): every
// candidate creates an EPHEMERAL_SEQUENTIAL lock node under the group path
// (named like Curator's, "_c_<uuid>-lock-<seq>", with the candidate's
// hostname as data); the lowest sequence leads, and each other candidate
// watches the node just before its own. The leader then advertises itself
// with a ServerSet member_<seq> node (package announcer), which is what
// Aurora clients look for. Leadership ends with the ZooKeeper session: a
// scheduler that loses it must stop, as Aurora's does.
package election

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/go-zookeeper/zk"
)

// Leadership is held until Lost is closed.
type Leadership struct {
	conn *zk.Conn
	node string
	lost chan struct{}
}

// Lost is closed when the session that holds the leadership is gone.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Resign gives the leadership up.
func (l *Leadership) Resign() {
	l.conn.Delete(l.node, -1)
	l.conn.Close()
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// sequence is a lock node's sequence number (its last 10 digits).
func sequence(name string) string {
	if len(name) < 10 {
		return ""
	}
	return name[len(name)-10:]
}

// Option configures Elect.
type Option func(*options)

type options struct {
	reclaim bool
}

// Reclaim says that participant is this candidate's advertised host:port
// and that the caller holds it (listens on it), so that no other live
// process can be that candidate: what an earlier process of the same
// candidate left under the group path with a ZooKeeper session that has
// not expired yet (a restart after a crash) is deleted before the
// election, so that it proceeds at once instead of waiting for the old
// session to expire. That is its lock node (data participant) and its
// ServerSet member (service endpoint participant).
func Reclaim() Option { return func(o *options) { o.reclaim = true } }

// Elect joins the election under groupPath and returns once this candidate
// leads, or with ctx's error. servers is host:port,...; participant is the
// lock node's data.
func Elect(ctx context.Context, servers []string, groupPath, participant string, sessionTimeout time.Duration, logger *slog.Logger, opts ...Option) (*Leadership, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	conn, events, err := zk.Connect(servers, sessionTimeout, zk.WithLogInfo(false), zklog.Option(logger, slog.LevelWarn))
	if err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	l := &Leadership{conn: conn, lost: make(chan struct{})}
	fail := func(err error) (*Leadership, error) {
		conn.Close()
		return nil, fmt.Errorf("election: %w", err)
	}
	// The session is established when the first create succeeds; make the
	// group path (persistent) first.
	if err := ensurePath(ctx, conn, groupPath); err != nil {
		return fail(err)
	}
	if o.reclaim {
		if err := reclaim(conn, groupPath, participant, logger); err != nil {
			return fail(err)
		}
	}
	prefix := "_c_" + newID() + "-lock-"
	l.node, err = conn.Create(path.Join(groupPath, prefix), []byte(participant), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		return fail(err)
	}
	mine := path.Base(l.node)
	for {
		kids, _, err := conn.Children(groupPath)
		if err != nil {
			return fail(err)
		}
		var locks []string
		for _, k := range kids {
			if strings.Contains(k, "-lock-") {
				locks = append(locks, k)
			}
		}
		sort.Slice(locks, func(i, j int) bool { return sequence(locks[i]) < sequence(locks[j]) })
		idx := -1
		for i, k := range locks {
			if k == mine {
				idx = i
			}
		}
		if idx < 0 {
			return fail(errors.New("our candidate node vanished (session expired?)"))
		}
		if idx == 0 {
			logger.Info("elected leader", "node", l.node)
			go l.watchSession(events)
			return l, nil
		}
		prev := path.Join(groupPath, locks[idx-1])
		logger.Info("waiting for the leader to go", "ahead", prev)
		ok, _, ch, err := conn.ExistsW(prev)
		if err != nil {
			return fail(err)
		}
		if !ok {
			continue
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-ch:
		}
	}
}

// watchSession closes lost when the session expires or the connection is
// closed for good.
func (l *Leadership) watchSession(events <-chan zk.Event) {
	defer close(l.lost)
	for ev := range events {
		if ev.State == zk.StateExpired {
			return
		}
	}
}

func ensurePath(ctx context.Context, conn *zk.Conn, p string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		for {
			_, err := conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll))
			if err == nil || errors.Is(err, zk.ErrNodeExists) {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, zk.ErrConnectionClosed) && !errors.Is(err, zk.ErrNoServer) {
				return fmt.Errorf("create %s: %w", cur, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// reclaim deletes the lock nodes and ServerSet members under groupPath that
// name self (host:port) and belong to a session other than conn's: an
// earlier process's of this candidate (see Reclaim).
func reclaim(conn *zk.Conn, groupPath, self string, logger *slog.Logger) error {
	kids, _, err := conn.Children(groupPath)
	if err != nil {
		return fmt.Errorf("list %s: %w", groupPath, err)
	}
	for _, k := range kids {
		lock, member := strings.Contains(k, "-lock-"), strings.HasPrefix(k, "member_")
		if !lock && !member {
			continue
		}
		p := path.Join(groupPath, k)
		data, stat, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", p, err)
		}
		if stat.EphemeralOwner == 0 || stat.EphemeralOwner == conn.SessionID() {
			continue
		}
		ours := lock && string(data) == self
		if member {
			m, err := serverset.Parse(data)
			ours = err == nil && m.ServiceEndpoint.Host != "" &&
				net.JoinHostPort(m.ServiceEndpoint.Host, strconv.Itoa(m.ServiceEndpoint.Port)) == self
		}
		if !ours {
			continue
		}
		// Only as read: a node whose data changed since is left alone.
		if err := conn.Delete(p, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("delete %s, left by an earlier process of %s: %w", p, self, err)
		}
		logger.Info("deleted a node left by an earlier process of this scheduler", "node", p,
			"session", fmt.Sprintf("0x%x", stat.EphemeralOwner))
	}
	return nil
}
