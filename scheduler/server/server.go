// Package server runs the Aurora scheduler as a process (`aurorabox
// scheduler`): it serves the API and UI at once (a standby redirects to
// the leader), takes part in leader election in ZooKeeper, finds the Mesos
// master (directly or through ZooKeeper), restores a backup if asked, runs
// the scheduler once it leads, and, once the scheduler has registered with
// Mesos (Aurora's ACTIVE), advertises it as a ServerSet member where
// clients look for it. Run returns when its context ends, the HTTP server
// fails, the advertisement fails, or leadership is lost (as Aurora does,
// the process then exits so that another scheduler can lead).
//
// The command only parses flags into Options; everything the process does
// is here.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesoszk"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/zklog"
	"github.com/aurorabox/aurorabox/executor/announcer"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/election"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/go-zookeeper/zk"
)

// Options configure the process. Config is the scheduler's own
// configuration; Run fills in its ListenAddr, Hostname, MasterURL,
// LeaderFinder and Advertise.
type Options struct {
	Config scheduler.Config
	// Listener is where the API and UI are served; its address (or
	// Hostname, when set) and port are what the scheduler advertises.
	Listener net.Listener
	Hostname string
	// MasterURL is http://host:port, or zk://host:port,.../path to find
	// the leading master through ZooKeeper.
	MasterURL string
	// ZooKeeper (host:port,...) enables leader election and the ServerSet
	// advertisement under ServersetPath; empty runs a lone leader.
	ZooKeeper     string
	ServersetPath string
	// Restore replaces the store with this backup before starting.
	Restore string
	// Serve serves a handler on the listener until ctx ends (the caller's
	// HTTP server settings).
	Serve  func(ctx context.Context, ln net.Listener, h http.Handler) error
	Logger *slog.Logger
}

// ErrLostLeadership is Run's error when the ZooKeeper session that held
// the leadership expired.
var ErrLostLeadership = errors.New("lost leadership (ZooKeeper session expired)")

// Run runs the scheduler process until ctx ends (nil) or it fails.
func Run(ctx context.Context, o Options) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(o.Listener.Addr().String())
	if err != nil {
		return err
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = host
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Serve at once; the handler becomes the scheduler's once it leads.
	var handler atomic.Pointer[http.Handler]
	setHandler := func(h http.Handler) { handler.Store(&h) }
	setHandler(scheduler.StandbyHandler(nil, func() (string, bool) { return "", false }))
	errc := make(chan error, 1)
	go func() {
		errc <- o.Serve(ctx, o.Listener, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	}()
	sc := o.Config
	var lost <-chan struct{}
	if o.ZooKeeper != "" {
		servers := strings.Split(o.ZooKeeper, ",")
		// This scheduler's own addresses: a ServerSet member naming one
		// is its previous process's, never a leader to redirect to.
		self := []string{net.JoinHostPort(hostname, port), o.Listener.Addr().String()}
		finder, closeFinder := leaderFinder(servers, o.ServersetPath, self, logger)
		defer closeFinder()
		sc.LeaderFinder = finder
		setHandler(scheduler.StandbyHandler(self, sc.LeaderFinder))
		// We hold the listener, so nothing else serves our host:port:
		// what a previous process of ours left in the election is
		// reclaimed, and the election proceeds without waiting for its
		// session to expire.
		l, err := election.Elect(ctx, servers, o.ServersetPath, net.JoinHostPort(hostname, port), 10*time.Second, logger, election.Reclaim())
		if err != nil {
			return err
		}
		defer l.Resign()
		lost = l.Lost()
	}
	masterURL := o.MasterURL
	if strings.HasPrefix(masterURL, "zk://") {
		if masterURL, err = detectMaster(ctx, masterURL, logger); err != nil {
			return err
		}
	}
	if o.Restore != "" {
		if err := storage.Restore(o.Restore, filepath.Join(sc.DataDir, "scheduler.db")); err != nil {
			return fmt.Errorf("--restore: %w", err)
		}
		logger.Warn("store restored from a backup", "backup", o.Restore)
	}
	sc.ListenAddr, sc.Hostname, sc.MasterURL, sc.Logger = o.Listener.Addr().String(), hostname, masterURL, logger
	if sc.FrameworkCredential != nil {
		logger.Info("connecting to the Mesos master with authentication", "principal", sc.FrameworkCredential.Principal)
	}
	advertErr := make(chan error, 1)
	if o.ZooKeeper != "" {
		// The leader advertises itself where clients look (§8.6) once it
		// has registered with Mesos, as Aurora does on becoming ACTIVE.
		p, _ := net.LookupPort("tcp", port)
		ep := serverset.Endpoint{Host: hostname, Port: p}
		member := serverset.Marshal(serverset.Member{ServiceEndpoint: ep,
			AdditionalEndpoints: map[string]serverset.Endpoint{"http": ep}, Status: serverset.Alive})
		advertised := make(chan *announcer.Announcer, 1)
		sc.Advertise = func(ctx context.Context) error {
			a, err := announcer.Start(ctx, announcer.Config{Servers: strings.Split(o.ZooKeeper, ","), Path: o.ServersetPath,
				Member: member, Logger: logger})
			if err != nil {
				advertErr <- err
				return err
			}
			advertised <- a
			return nil
		}
		defer func() {
			cancel()
			select {
			case a := <-advertised:
				a.Stop()
			default:
			}
		}()
	}
	s, err := scheduler.New(sc)
	if err != nil {
		return err
	}
	runDone := make(chan struct{})
	defer func() {
		// The store closes only once Run has joined everything that uses
		// it (its loops, timers and API requests).
		cancel()
		<-runDone
		s.Close()
	}()
	setHandler(s.Handler())
	go func() {
		defer close(runDone)
		s.Run(ctx)
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	case err := <-advertErr:
		return fmt.Errorf("advertise: %w", err)
	case <-lost:
		// Another scheduler may lead now: stop at once, as Aurora does.
		return ErrLostLeadership
	}
}

// leaderFinder returns the leading scheduler's host:port from the
// ServerSet under path, for a standby's redirects, leaving out members
// that name one of self (this scheduler's previous process's), and a
// function that closes its ZooKeeper session.
func leaderFinder(servers []string, path string, self []string, logger *slog.Logger) (func() (string, bool), func()) {
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false), zklog.Option(logger, slog.LevelWarn))
	if err != nil {
		return func() (string, bool) { return "", false }, func() {}
	}
	return func() (string, bool) {
		nodes, err := serverset.Nodes(conn, path)
		if err != nil {
			return "", false
		}
		for _, n := range nodes {
			if m, err := serverset.Parse(n.Data); err == nil && m.ServiceEndpoint.Host != "" {
				addr := net.JoinHostPort(m.ServiceEndpoint.Host, strconv.Itoa(m.ServiceEndpoint.Port))
				if !slices.Contains(self, addr) {
					return addr, true
				}
			}
		}
		return "", false
	}, conn.Close
}

// detectMaster finds the leading master under a zk:// URL, waiting for one
// for up to a minute.
func detectMaster(ctx context.Context, zkURL string, logger *slog.Logger) (string, error) {
	u, err := mesoszk.ParseURL(zkURL)
	if err != nil {
		return "", fmt.Errorf("--master: %w", err)
	}
	conn, _, err := mesoszk.Connect(u, 10*time.Second, logger)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := mesoszk.Leader(conn, u.Path)
		if err == nil {
			return mesoszk.LeaderURL(info), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("no Mesos master under %s: %w", zkURL, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
