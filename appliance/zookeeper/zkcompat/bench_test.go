package zkcompat

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// BenchmarkZK measures small getData, setData and create throughput with 1
// and 16 concurrent clients (one session each), against both targets in the
// same run: BenchmarkZK/<target>/<op>/c<clients>. Besides ns/op it reports
// ops/s.
func BenchmarkZK(b *testing.B) {
	for _, st := range targets() {
		b.Run(st.name, func(b *testing.B) {
			tg := st.start(b)
			const maxClients = 16
			conns := make([]*zk.Conn, maxClients)
			for i := range conns {
				conns[i], _ = connect(b, tg.Addr, 30*time.Second)
			}
			c := conns[0]
			small := []byte(strings.Repeat("x", 64))
			for _, p := range []string{"/bench", "/bench/get", "/bench/set", "/bench/create"} {
				if _, err := c.Create(p, small, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
					b.Fatal(err)
				}
			}
			for i := range conns {
				if _, err := c.Create(fmt.Sprintf("/bench/set/%d", i), small, 0, zk.WorldACL(zk.PermAll)); err != nil {
					b.Fatal(err)
				}
			}
			var runs atomic.Int64
			ops := []struct {
				name string
				prep func() string // per benchmark invocation
				do   func(c *zk.Conn, client int, n int64, dir string) error
			}{
				{"get", nil, func(c *zk.Conn, _ int, _ int64, _ string) error {
					_, _, err := c.Get("/bench/get")
					return err
				}},
				{"set", nil, func(c *zk.Conn, client int, _ int64, _ string) error {
					_, err := c.Set(fmt.Sprintf("/bench/set/%d", client), small, -1)
					return err
				}},
				{"create", func() string {
					dir := fmt.Sprintf("/bench/create/r%d", runs.Add(1))
					if _, err := c.Create(dir, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
						b.Fatal(err)
					}
					return dir
				}, func(c *zk.Conn, _ int, n int64, dir string) error {
					_, err := c.Create(fmt.Sprintf("%s/n%d", dir, n), small, 0, zk.WorldACL(zk.PermAll))
					return err
				}},
			}
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) {
					for _, clients := range []int{1, maxClients} {
						b.Run(fmt.Sprintf("c%d", clients), func(b *testing.B) {
							dir := ""
							if op.prep != nil {
								dir = op.prep()
							}
							var (
								next     atomic.Int64
								wg       sync.WaitGroup
								errOnce  sync.Once
								firstErr error
							)
							b.ResetTimer()
							for i := 0; i < clients; i++ {
								wg.Add(1)
								go func(i int) {
									defer wg.Done()
									for {
										n := next.Add(1)
										if n > int64(b.N) {
											return
										}
										if err := op.do(conns[i], i, n, dir); err != nil {
											errOnce.Do(func() { firstErr = err })
											return
										}
									}
								}(i)
							}
							wg.Wait()
							b.StopTimer()
							if firstErr != nil {
								b.Fatalf("%s: %v", op.name, firstErr)
							}
							b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
						})
					}
				})
			}
		})
	}
}

// startupSample starts a server as its own process, measures the time from
// process start to the first imok, lets it idle and reads its VmRSS.
func startupSample(tb testing.TB, name string, dir string) (time.Duration, int64) {
	tb.Helper()
	var (
		tg   *Target
		stop func()
		err  error
	)
	switch name {
	case "real":
		tg, stop, err = launchReal(needReal(tb), dir, 0)
	case "ours":
		tg, stop, err = launchOursProcess(dir, "")
	}
	if err != nil {
		if name == "ours" {
			tb.Skip(err)
		}
		tb.Fatal(err)
	}
	defer stop()
	imok := tg.TimeToImok()
	// One client session, then idle.
	c, _ := connect(tb, tg.Addr, 10*time.Second)
	c.Close()
	time.Sleep(500 * time.Millisecond)
	rss, err := vmRSS(tg.PID)
	if err != nil {
		tb.Fatal(err)
	}
	return imok, rss
}

// TestStartupFootprint starts both servers, each as its own process, and
// checks that each answers imok and that ours idles in less memory than
// Apache ZooKeeper's JVM (about a tenth here: see BenchmarkStartup). It
// logs the time to imok but asserts nothing about time.
func TestStartupFootprint(t *testing.T) {
	rss := map[string]int64{}
	for _, name := range []string{"real", "ours"} {
		t.Run(name, func(t *testing.T) {
			imok, r := startupSample(t, name, t.TempDir())
			if r <= 0 {
				t.Fatalf("%s: no resident memory measured (%d KiB)", name, r)
			}
			rss[name] = r
			t.Logf("%s: time from process start to imok %v, idle VmRSS %d KiB (%.1f MiB)",
				name, imok.Round(time.Millisecond), r, float64(r)/1024)
		})
	}
	if real, ours := rss["real"], rss["ours"]; real > 0 && ours > 0 && ours >= real {
		t.Errorf("idle RSS: ours %d KiB, Apache ZooKeeper %d KiB: ours should be the smaller", ours, real)
	}
}

// BenchmarkStartup reports ms-to-imok and idle RSS (KiB) per server start.
func BenchmarkStartup(b *testing.B) {
	for _, name := range []string{"real", "ours"} {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			var rss int64
			for i := 0; i < b.N; i++ {
				imok, r := startupSample(b, name, b.TempDir())
				total += imok
				if r > rss {
					rss = r
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-imok")
			b.ReportMetric(float64(rss), "idle-RSS-KiB")
		})
	}
}
