package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aurorabox/aurorabox/limits"
)

// TestCallRefusesOversizeRequest: a request the scheduler would refuse
// for its size is not sent.
func TestCallRefusesOversizeRequest(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c, err := New(map[string]Cluster{"c": {Name: "c", SchedulerURI: srv.URL}}, "c")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(context.Background(), "createJob", map[string]any{"description": strings.Repeat("x", limits.APIRequestBytes)})
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != ExitInvalidConfiguration || !strings.Contains(err.Error(), strconv.Itoa(limits.APIRequestBytes)) {
		t.Fatalf("err = %v; want an invalid-configuration error naming the %d-byte limit", err, limits.APIRequestBytes)
	}
	if hits.Load() != 0 {
		t.Fatalf("the request was sent")
	}
}
