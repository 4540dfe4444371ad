package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultHTTPTimeout is Aurora's HttpSignaler.TIMEOUT_SECS, used when no
// timeout is given and AURORA_HTTP_SIGNALER_TIMEOUT_SECS is unset.
const DefaultHTTPTimeout = time.Second

// maxBody bounds how much of a response body is read.
const maxBody = 1 << 20

// failureReasonLength is Aurora's HttpSignaler.FAILURE_REASON_LENGTH: the
// bodies quoted in a mismatch reason are shortened to fit it.
const failureReasonLength = 10

// httpClient is shared by all probes: no proxy (the target is localhost),
// no connection reuse (each attempt is a fresh connection, as urllib's).
var httpClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
	},
}

// HTTPProbe performs one HTTP health check, as Aurora's HttpSignaler:
// GET http://localhost:<port><endpoint> within timeout.
//
//   - A response with a status outside 2xx (after redirects) counts as an
//     empty body with that status, as urllib's HTTPError does; so with the
//     default expected response "ok" an error status fails on the body.
//   - The body is stripped and lower-cased and must equal expectedResponse
//     lower-cased (empty expectedResponse: any body). Failure reason:
//     `Response differs from expected response (expected "ok", got "bad")`,
//     both quoted strings shortened to 10 characters ("abcdefg...").
//   - Then expectedCode, unless 0, must equal the status. Failure reason:
//     "Response code differs from expected response (expected 200, got 201)".
//   - A request that gets no response fails with "Failed to signal <url>:
//     <error>", where a timeout reads "Error within timeout".
//
// timeout bounds the whole request including reading the body (Aurora's is
// per socket operation). A non-positive timeout means
// AURORA_HTTP_SIGNALER_TIMEOUT_SECS if set, else DefaultHTTPTimeout.
func HTTPProbe(ctx context.Context, port int, endpoint, expectedResponse string, expectedCode int, timeout time.Duration) (ok bool, reason string) {
	url := fmt.Sprintf("http://localhost:%d%s", port, endpoint)
	body, code, problem := httpGet(ctx, url, httpTimeout(timeout))
	if problem != "" {
		return false, fmt.Sprintf("Failed to signal %s: %s", url, problem)
	}
	body = strings.ToLower(strings.TrimSpace(body))
	if expectedResponse != "" && body != strings.ToLower(expectedResponse) {
		return false, fmt.Sprintf("Response differs from expected response (expected \"%s\", got \"%s\")",
			shorten(expectedResponse), shorten(body))
	}
	if expectedCode != 0 && code != expectedCode {
		return false, fmt.Sprintf("Response code differs from expected response (expected %d, got %d)",
			expectedCode, code)
	}
	return true, ""
}

// httpGet returns the body ("" for a non-2xx status) and the status code,
// or why there is no response.
func httpGet(ctx context.Context, url string, timeout time.Duration) (body string, code int, problem string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, "Unexpected error: " + err.Error()
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", 0, queryProblem(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", resp.StatusCode, ""
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", 0, queryProblem(ctx, err)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), resp.StatusCode, ""
}

// queryProblem words a failed request the way HttpSignaler.query does where
// that is meaningful: a timeout as "Error within timeout", anything else by
// its cause (without Go's `Get "url": ` wrapper, the URL is in the reason).
func queryProblem(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return "Error within timeout"
	}
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// shorten is HttpSignaler's shorten: strings of 10 or more characters are
// cut to 7 followed by "...".
func shorten(s string) string {
	if utf8.RuneCountInString(s) < failureReasonLength {
		return s
	}
	r := []rune(s)
	return string(r[:failureReasonLength-3]) + "..."
}

// httpTimeout resolves a non-positive timeout as HttpSignaler does.
func httpTimeout(t time.Duration) time.Duration {
	if t > 0 {
		return t
	}
	if env := os.Getenv("AURORA_HTTP_SIGNALER_TIMEOUT_SECS"); env != "" {
		if s, err := strconv.ParseFloat(env, 64); err == nil && s > 0 {
			return time.Duration(s * float64(time.Second))
		}
	}
	return DefaultHTTPTimeout
}
