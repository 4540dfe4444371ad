package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesoszk"
	"github.com/aurorabox/aurorabox/executor/announcer"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/election"
	"github.com/spf13/cobra"
)

func schedulerCommand() *cobra.Command {
	var listen, masterURL, zkServers, dataDir, hostname, serversetPath, announcerEnsemble, shiroINI string
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the Aurora scheduler (started by up)",
		Long: `Runs the Aurora-compatible scheduler, a Mesos framework named Aurora. With --zk it takes
part in leader election under --serverset-path and, once leading, advertises itself there as a
ServerSet member_ node, where Aurora clients look for it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if listen == "" {
				listen = cfg.Addr(cfg.Scheduler.Port)
			}
			if masterURL == "" {
				masterURL = "http://" + cfg.Addr(cfg.Master.Port)
			}
			if dataDir == "" {
				dataDir = cfg.Path("scheduler")
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			logger := newLogger()
			host, port, err := net.SplitHostPort(listen)
			if err != nil {
				return &exitError{2, fmt.Errorf("scheduler: --listen: %w", err)}
			}
			if hostname == "" {
				hostname = host
			}
			var lost <-chan struct{}
			if zkServers != "" {
				servers := strings.Split(zkServers, ",")
				l, err := election.Elect(ctx, servers, serversetPath, hostname, 10*time.Second, logger)
				if err != nil {
					return &exitError{1, fmt.Errorf("scheduler: %w", err)}
				}
				defer l.Resign()
				lost = l.Lost()
			}
			if strings.HasPrefix(masterURL, "zk://") {
				if masterURL, err = detectMaster(ctx, masterURL); err != nil {
					return &exitError{1, fmt.Errorf("scheduler: %w", err)}
				}
			}
			var users map[string]string
			if shiroINI != "" {
				if users, err = readUsers(shiroINI); err != nil {
					return &exitError{2, fmt.Errorf("scheduler: --shiro-ini: %w", err)}
				}
			}
			var flags []string
			if announcerEnsemble != "" {
				flags = append(flags, "--announcer-ensemble", announcerEnsemble)
			}
			s, err := scheduler.New(scheduler.Config{
				Cluster: cfg.Cluster, ListenAddr: listen, Hostname: hostname, MasterURL: masterURL, DataDir: dataDir,
				ExecutorPath: exe, ExecutorFlags: flags, Logger: logger, BasicAuth: users,
			})
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			defer s.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if zkServers != "" {
				// The leader advertises itself where clients look (§8.6).
				p, _ := net.LookupPort("tcp", port)
				ep := fmt.Sprintf(`{"host": %q, "port": %d}`, hostname, p)
				member := fmt.Sprintf(`{"serviceEndpoint": %s, "additionalEndpoints": {"http": %s}, "status": "ALIVE"}`, ep, ep)
				a, err := announcer.Start(ctx, announcer.Config{Servers: strings.Split(zkServers, ","), Path: serversetPath,
					Member: []byte(member), Logger: logger})
				if err != nil {
					return &exitError{1, fmt.Errorf("scheduler: advertise: %w", err)}
				}
				defer a.Stop()
			}
			errc := make(chan error, 1)
			go func() { errc <- s.Serve(ctx, ln) }()
			go s.Run(ctx)
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return &exitError{1, fmt.Errorf("scheduler: %w", err)}
			case <-lost:
				// Another scheduler may lead now: stop at once, as Aurora does.
				return &exitError{1, errors.New("scheduler: lost leadership (ZooKeeper session expired)")}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "API and UI address (default: bind and scheduler.port)")
	f.StringVar(&masterURL, "master", "", "Mesos master: http://host:port or zk://host:port/mesos (default: http://bind:master.port)")
	f.StringVar(&zkServers, "zk", "", "ZooKeeper ensemble (host:port,...) for leader election; empty: no election")
	f.StringVar(&serversetPath, "serverset-path", appliance.SchedulerZKPath, "ZooKeeper path of the election and the ServerSet")
	f.StringVar(&dataDir, "data-dir", "", "the scheduler's store and backups (default: <data-dir>/scheduler)")
	f.StringVar(&hostname, "hostname", "", "host to advertise (default: the listen host)")
	f.StringVar(&shiroINI, "shiro-ini", "", "require HTTP basic auth for mutating API calls, users from this file's [users] section (as Aurora's -shiro_ini)")
	f.StringVar(&announcerEnsemble, "announcer-ensemble", "", "ZooKeeper ensemble passed to executors for task announcements")
	return cmd
}

// detectMaster finds the leading master under a zk:// URL, waiting for one
// for up to a minute.
func detectMaster(ctx context.Context, zkURL string) (string, error) {
	u, err := mesoszk.ParseURL(zkURL)
	if err != nil {
		return "", fmt.Errorf("--master: %w", err)
	}
	conn, _, err := mesoszk.Connect(u, 10*time.Second)
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

// readUsers reads the [users] section of a Shiro INI file, as Aurora's
// -shiro_ini: lines `name = password[, role...]`. Roles are not used yet:
// every listed user may call every RPC.
func readUsers(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
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
		name, rest, ok := strings.Cut(line, "=")
		pass, _, _ := strings.Cut(rest, ",")
		name, pass = strings.TrimSpace(name), strings.TrimSpace(pass)
		if !ok || name == "" || pass == "" {
			return nil, fmt.Errorf("%s:%d: want `name = password[, roles]` in [users]", path, i+1)
		}
		users[name] = pass
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users in a [users] section", path)
	}
	return users, nil
}
