package master_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// benchCluster is a master with n fake agents and the frameworks named.
func benchCluster(b *testing.B, agents int, names ...string) []*sched {
	_, srv := startMaster(b, master.Config{})
	var fws []*sched
	for _, name := range names {
		fws = append(fws, subscribe(b, srv.URL, "json", framework(name)))
	}
	for i := 1; i <= agents; i++ {
		sub := agentSubscribe()
		sub.Info.Hostname = fmt.Sprintf("agent%d.local", i)
		startAgentWith(b, srv.URL, sub)
	}
	return fws
}

// BenchmarkOffers3Frameworks10Agents: three frameworks over ten agents
// each decline every offer they get (refuse_seconds=0), so the master
// re-offers it at once by DRF; one op is one offer received. Reports
// offers/s.
func BenchmarkOffers3Frameworks10Agents(b *testing.B) {
	fws := benchCluster(b, 10, "f1", "f2", "f3")
	var received atomic.Int64
	per := make([]atomic.Int64, len(fws))
	target := int64(b.N)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, len(fws))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, s := range fws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var ev *scheduler.Event
				select {
				case ev = <-s.events:
				case <-ctx.Done():
					return
				}
				if ev == nil {
					errs <- fmt.Errorf("%s: stream closed", s.fwID)
					return
				}
				if ev.Type != scheduler.Event_OFFERS {
					continue
				}
				n := int64(len(ev.Offers.Offers))
				per[i].Add(n)
				if received.Add(n) >= target {
					cancel()
					return
				}
				ids := make([]mesos.OfferID, 0, n)
				for _, o := range ev.Offers.Offers {
					ids = append(ids, o.ID)
				}
				resp, err := s.caller.Call(ctx, calls.Decline(ids...).With(calls.RefuseSeconds(0), calls.Framework(s.fwID)))
				if resp != nil {
					resp.Close()
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		b.Fatal(err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d offers of %d in 5 minutes", received.Load(), target)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "offers/s")
	if b.N >= 30 {
		for i := range per {
			if per[i].Load() == 0 {
				b.Fatalf("%s got no offer of %d", fws[i].fwID, received.Load())
			}
		}
	}
}

// BenchmarkDeclineToOtherFrameworkOffer: two frameworks share one agent;
// the one holding its offer declines it (refuse_seconds=0) and the time
// until the other framework's OFFERS event arrives is one op (DRF gives
// it to the framework chosen fewer times, so they alternate). Reports the
// median as well as the mean (ns/op).
func BenchmarkDeclineToOtherFrameworkOffer(b *testing.B) {
	fws := benchCluster(b, 1, "f1", "f2")
	holder, other := fws[0], fws[1]
	offer := holder.offer()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		holder.mustCall(calls.Decline(offer.ID).With(calls.RefuseSeconds(0)))
		offer = other.offer()
		lat = append(lat, time.Since(start))
		holder, other = other, holder
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns/offer")
}
