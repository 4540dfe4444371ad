package zkcompat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper"
)

// oursConfig is the configuration both the in-process and the subprocess
// server use; it mirrors the zoo.cfg given to the real server.
func oursConfig(addr, dir string, logger *slog.Logger) zookeeper.Config {
	return zookeeper.Config{
		ListenAddr:        addr,
		DataDir:           dir,
		TickTime:          tickTime,
		MinSessionTimeout: minSessionTimeout,
		MaxSessionTimeout: maxSessionTimeout,
		Logger:            logger,
	}
}

// startOurs runs our server on 127.0.0.1:0 with a temporary data dir, in
// this process unless AURORABOX_ZKCOMPAT_OURS=subprocess.
func startOurs(tb testing.TB) *Target {
	tb.Helper()
	if os.Getenv(oursModeEnv) == "subprocess" {
		return startOursProcess(tb)
	}
	dir := tb.TempDir()
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tg := &Target{Name: "ours", DataDir: filepath.Join(dir, "data"), logPath: logPath}
	tg.Started = time.Now()
	stop := runOursInProcess(tb, tg, logger, "127.0.0.1:0")
	tb.Cleanup(func() { stop(tb); logf.Close() })
	tg.restart = func(tb testing.TB) {
		// In-process the best we can do is a graceful Close; run with
		// AURORABOX_ZKCOMPAT_OURS=subprocess for a SIGKILL restart.
		stop(tb)
		tg.Started = time.Now()
		stop = runOursInProcess(tb, tg, logger, tg.Addr)
	}
	return tg
}

// runOursInProcess starts a server for tg on addr (tg.Addr is set from the
// listener) and waits for imok. The returned func stops it.
func runOursInProcess(tb testing.TB, tg *Target, logger *slog.Logger, addr string) func(testing.TB) {
	tb.Helper()
	srv, err := zookeeper.New(oursConfig(addr, tg.DataDir, logger))
	if err != nil {
		tb.Fatalf("zookeeper.New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tg.Addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func(tb testing.TB) {
		if stopped {
			return
		}
		stopped = true
		cancel()
		_ = srv.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			tb.Errorf("ours: Serve did not return within 10s of Close")
		}
	}
	if err := waitImok(tg.Addr, served); err != nil {
		stop(tb)
		tb.Fatalf("our ZooKeeper did not become ready: %v\n%s", err, tailFile(tg.logPath, 40))
	}
	tg.Ready = time.Now()
	if a := srv.Addr(); a == nil || a.String() != tg.Addr {
		tb.Errorf("ours: Addr() = %v, want %s", a, tg.Addr)
	}
	return stop
}

// startOursProcess runs our server as a separate process: the test binary
// re-executes itself (see TestMain) so that startup time and RSS can be
// measured like the JVM's.
func startOursProcess(tb testing.TB) *Target {
	tb.Helper()
	dir := tb.TempDir()
	tg, stop, err := launchOursProcess(dir, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stop() })
	tg.restart = func(tb testing.TB) {
		_ = syscall.Kill(tg.PID, syscall.SIGKILL) // crash, like the real server's restart
		stop()
		ntg, nstop, err := launchOursProcess(dir, tg.Addr)
		if err != nil {
			stop = func() {}
			tb.Fatalf("restart: %v", err)
		}
		stop = nstop
		tg.PID, tg.Started, tg.Ready = ntg.PID, ntg.Started, ntg.Ready
	}
	return tg
}

// launchOursProcess starts the re-executed test binary as our server with
// its files under dir and returns once it answers imok.
func launchOursProcess(dir, addr string) (*Target, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	if addr == "" {
		port, err := freePortErr()
		if err != nil {
			return nil, nil, err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	tg := &Target{Name: "ours", Addr: addr, DataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "server.log")}
	logf, err := os.OpenFile(tg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1", serveAddrEnv+"="+tg.Addr, serveDirEnv+"="+tg.DataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	tg.Started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	tg.PID = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() { stopProcess(cmd, exited) }
	if err := waitImok(tg.Addr, exited); err != nil {
		stop()
		return nil, nil, fmt.Errorf("our ZooKeeper (subprocess) did not become ready: %v\n%s", err, tailFile(tg.logPath, 40))
	}
	tg.Ready = time.Now()
	return tg, stop, nil
}

// serveOursMain is the body of the re-executed server process.
func serveOursMain(addr, dir string) error {
	if addr == "" || dir == "" {
		return errors.New(serveAddrEnv + " and " + serveDirEnv + " must be set")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := zookeeper.New(oursConfig(addr, dir, logger))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = srv.ListenAndServe(ctx)
	_ = srv.Close()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// stopProcess asks a process to terminate and kills it if it does not.
func stopProcess(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}
