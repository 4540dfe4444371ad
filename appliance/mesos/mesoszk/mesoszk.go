// Package mesoszk is Mesos master detection through ZooKeeper: the master
// side keeps an ephemeral-sequential `json.info_<seq>` znode with its
// MasterInfo JSON under a path such as /mesos, and the client side reads
// the lowest-numbered one, which is the leader. It is the layout real Mesos
// uses, so `zk://host:port/mesos` URLs work for our scheduler against a real
// Mesos cluster, and for real tools against our master.
package mesoszk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/go-zookeeper/zk"
)

// Prefix is the name prefix of the MasterInfo znodes.
const Prefix = "json.info_"

// URL is a parsed zk://[user:pass@]host:port,.../path.
type URL struct {
	Servers []string
	Path    string
	Auth    string // "user:pass" for digest auth, or ""
}

// ParseURL parses a zk:// URL.
func ParseURL(s string) (URL, error) {
	rest, ok := strings.CutPrefix(s, "zk://")
	if !ok {
		return URL{}, fmt.Errorf("%q: not a zk:// URL", s)
	}
	var u URL
	if at := strings.LastIndexByte(strings.SplitN(rest, "/", 2)[0], '@'); at >= 0 {
		auth, err := url.PathUnescape(rest[:at])
		if err != nil {
			return URL{}, fmt.Errorf("%q: %w", s, err)
		}
		u.Auth, rest = auth, rest[at+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	u.Path = "/" + strings.TrimSuffix(path, "/")
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if !strings.Contains(h, ":") {
			h += ":2181"
		}
		u.Servers = append(u.Servers, h)
	}
	if len(u.Servers) == 0 {
		return URL{}, fmt.Errorf("%q: no ZooKeeper servers", s)
	}
	if u.Path == "/" {
		return URL{}, fmt.Errorf("%q: no znode path (e.g. zk://host:2181/mesos)", s)
	}
	return u, nil
}

// Connect opens a session with u's servers and authenticates if u has
// credentials. The client's own log lines go to logger (nil: nowhere).
func Connect(u URL, timeout time.Duration, logger *slog.Logger) (*zk.Conn, <-chan zk.Event, error) {
	c, ev, err := zk.Connect(u.Servers, timeout, zklog.Option(logger, slog.LevelWarn), zk.WithLogInfo(false))
	if err != nil {
		return nil, nil, err
	}
	if u.Auth != "" {
		if err := c.AddAuth("digest", []byte(u.Auth)); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, ev, nil
}

// ensurePath creates path and its parents as persistent nodes.
func ensurePath(c *zk.Conn, path string) error {
	p := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		p += "/" + part
		_, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil
}

// Register keeps an ephemeral-sequential json.info_ znode with info's JSON
// under u.Path until ctx ends, re-creating it when a session expires. It
// returns after the first registration (or its failure) and keeps working
// in the background; the returned channel is closed when it has stopped.
func Register(ctx context.Context, u URL, info *mesos.MasterInfo, logger *slog.Logger) (<-chan struct{}, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	c, events, err := Connect(u, 10*time.Second, logger)
	if err != nil {
		return nil, err
	}
	register := func() (string, error) {
		if err := ensurePath(c, u.Path); err != nil {
			return "", err
		}
		return c.Create(u.Path+"/"+Prefix, data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	}
	node, err := register()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("register master in ZooKeeper %s%s: %w", strings.Join(u.Servers, ","), u.Path, err)
	}
	logger.Info("registered in ZooKeeper", "znode", node)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		expired := false
		for {
			select {
			case <-ctx.Done():
				// Deleting now lets clients see the master go at once
				// instead of after the session timeout.
				_ = c.Delete(node, -1)
				return
			case ev := <-events:
				switch ev.State {
				case zk.StateExpired:
					expired = true
				case zk.StateHasSession:
					if !expired {
						continue
					}
					expired = false
					n, err := register()
					if err != nil {
						logger.Error("re-registering in ZooKeeper failed", "err", err)
						continue
					}
					node = n
					logger.Info("re-registered in ZooKeeper after session expiry", "znode", node)
				}
			}
		}
	}()
	return done, nil
}

// Leader reads the current leading master's info: the json.info_ child
// of u.Path with the lowest sequence number.
func Leader(c *zk.Conn, path string) (*mesos.MasterInfo, error) {
	kids, _, err := c.Children(path)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	var infos []string
	for _, k := range kids {
		if strings.HasPrefix(k, Prefix) {
			infos = append(infos, k)
		}
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("no master registered under %s", path)
	}
	// Sequence suffixes are fixed width, so names sort by number.
	sort.Strings(infos)
	data, _, err := c.Get(path + "/" + infos[0])
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", path, infos[0], err)
	}
	var info mesos.MasterInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s/%s: bad MasterInfo JSON: %w", path, infos[0], err)
	}
	return &info, nil
}

// LeaderURL is the leader's HTTP endpoint, http://host:port.
func LeaderURL(info *mesos.MasterInfo) string {
	host := info.GetHostname()
	port := int32(info.GetPort())
	if a := info.GetAddress(); a != nil {
		if a.GetIP() != "" {
			host = a.GetIP()
		} else if a.GetHostname() != "" {
			host = a.GetHostname()
		}
		port = a.Port
	}
	return fmt.Sprintf("http://%s:%d", host, port)
}
