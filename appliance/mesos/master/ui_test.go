package master_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// The web page lists agents, frameworks and tasks, links each task to its
// sandbox on the agent, and escapes names that look like markup.
func TestWebPage(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework(`<script>alert("x")</script>`))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-ui", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.ack(s.next(scheduler.Event_UPDATE).Update.Status)

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{"agent1.local", "sleep-ui", "TASK_RUNNING", "rack: r1",
		`href="http://127.0.0.1:5051/files/sandbox?executor_id=sleep-ui&amp;framework_id=` + s.fwID + `"`,
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("framework name rendered as markup")
	}
	if resp, err := http.Get(srv.URL + "/no/such/page"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown path: %v %v", resp.StatusCode, err)
	}
}
