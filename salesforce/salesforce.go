package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/salesforce/internal/retry"
)

// DefaultAPIVersion is the REST and Streaming API version used when
// Options.APIVersion is empty. AgentWorkChangeEvent needs 63.0 or later.
const DefaultAPIVersion = "63.0"

// Options configures a Client.
type Options struct {
	// Tokens supplies access tokens and the instance URL. Required.
	Tokens *TokenSource
	// HTTPClient carries every request. Default http.DefaultClient. Share
	// one client (and transport) between the token source, the REST client
	// and the stream.
	HTTPClient *http.Client
	// APIVersion, e.g. "63.0". Default DefaultAPIVersion.
	APIVersion string
	// CallOptionsClient, when set, is sent as Sforce-Call-Options:
	// client=<value> so change events caused by our own writes carry it in
	// changeOrigin.
	CallOptionsClient string
	// QueryBatchSize, when set (200 to 2000), asks for that many records
	// per query page (Sforce-Query-Options: batchSize).
	QueryBatchSize int
	// MaxRetries bounds how often a retryable request is sent again.
	// Default 5; negative means never.
	MaxRetries int
	// RequestTimeout bounds one HTTP attempt, body included, so a stuck
	// connection cannot hold a call forever when the caller's context has
	// no deadline. Default 2 minutes.
	RequestTimeout time.Duration
	// MaxRetryWait is the longest Retry-After the client honours; a longer
	// one makes the error final. Default 2 minutes.
	MaxRetryWait time.Duration
	// Registerer receives the salesforce_* metrics. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs retries (never tokens or bodies). Nil discards.
	Logger *slog.Logger
}

// Client is a Salesforce REST API client. It is safe for concurrent use.
//
// Every call takes a context and goes through one retry loop: a 401 (or
// INVALID_SESSION_ID) invalidates the token and sends the request once more
// with a fresh one; errors classify marks retryable are sent again with
// exponential backoff, waiting at least as long as Retry-After says; other
// errors are returned at once as *APIError. Requests that create records
// (POST) are retried only when Salesforce cannot have applied them: 429,
// 503, UNABLE_TO_LOCK_ROW and REQUEST_LIMIT_EXCEEDED, or a connection that
// could not be opened; a 500 or a network error after connecting leaves
// the outcome unknown and is returned to the caller, who knows how to look
// for the record.
type Client struct {
	opts    Options
	http    *http.Client
	tokens  *TokenSource
	metrics *clientMetrics
	log     *slog.Logger

	limitMu sync.Mutex
	limit   APIUsage
}

// APIUsage is the org's API allocation as last reported by Sforce-Limit-Info.
type APIUsage struct {
	Used, Max int64
	// Seen is false until a response carried the header.
	Seen bool
}

// New checks opts and returns a Client. It makes no request.
func New(opts Options) (*Client, error) {
	if opts.Tokens == nil {
		return nil, errors.New("check client options: a token source is required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.APIVersion == "" {
		opts.APIVersion = DefaultAPIVersion
	}
	opts.APIVersion = strings.TrimPrefix(opts.APIVersion, "v")
	if _, err := strconv.ParseFloat(opts.APIVersion, 64); err != nil || !strings.Contains(opts.APIVersion, ".") {
		return nil, fmt.Errorf("check client options: api version %q: want a version like 63.0", opts.APIVersion)
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 5
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Minute
	}
	if opts.MaxRetryWait == 0 {
		opts.MaxRetryWait = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newClientMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return &Client{opts: opts, http: opts.HTTPClient, tokens: opts.Tokens, metrics: m, log: opts.Logger.With("component", "salesforce")}, nil
}

// APIVersion returns the version the client speaks, e.g. "63.0".
func (c *Client) APIVersion() string { return c.opts.APIVersion }

// Tokens returns the client's token source.
func (c *Client) Tokens() *TokenSource { return c.tokens }

// APIUsage returns the org's API usage from the last Sforce-Limit-Info header.
func (c *Client) APIUsage() APIUsage {
	c.limitMu.Lock()
	defer c.limitMu.Unlock()
	return c.limit
}

// request is one logical REST call.
type request struct {
	op     string // bounded metric label: query, create, update, ...
	method string
	// path is relative to the instance URL, e.g. /services/data/v63.0/...
	path  string
	query url.Values
	body  []byte
	// safe: the request may be repeated after an unknown outcome.
	safe bool
	// header holds extra request headers.
	header http.Header
}

// dataPath returns the REST path for a resource under /services/data/vXX.X.
func (c *Client) dataPath(resource string) string {
	return "/services/data/v" + c.opts.APIVersion + resource
}

// do runs r through the retry loop and, on a 2xx, calls handle with the whole response body.
// Reading the body is part of the attempt: a body cut partway is a network error, retried
// like one.
func (c *Client) do(ctx context.Context, r request, handle func([]byte) error) error {
	eb := retry.Backoff(250*time.Millisecond, 30*time.Second)
	eb.MaxElapsedTime = 5 * time.Minute
	b := &retryAfterBackOff{BackOff: eb}
	var sched backoff.BackOff = b
	if c.opts.MaxRetries > 0 {
		sched = backoff.WithMaxRetries(sched, uint64(c.opts.MaxRetries))
	} else {
		sched = &backoff.StopBackOff{}
	}
	sched = backoff.WithContext(sched, ctx)

	refreshed := false
	op := func() error {
		err := c.attempt(ctx, r, &refreshed, handle)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return backoff.Permanent(err)
		}
		var ae *APIError
		if errors.As(err, &ae) {
			if !ae.Retryable || (!r.safe && !retryableUnapplied(ae)) {
				return backoff.Permanent(err)
			}
			if ae.RetryAfter > c.opts.MaxRetryWait {
				return backoff.Permanent(err)
			}
			b.after = ae.RetryAfter
			return err
		}
		var te *TokenError
		if errors.As(err, &te) {
			if te.Status >= 500 || te.Status == http.StatusTooManyRequests {
				return err // the token endpoint is having trouble; try again
			}
			return backoff.Permanent(err)
		}
		var ns *notSentError
		if errors.As(err, &ns) {
			return err // no token yet, so the request never left: safe to repeat
		}
		// Transport error: the request may or may not have arrived,
		// unless no connection could be made.
		if !r.safe && !neverConnected(err) {
			return backoff.Permanent(err)
		}
		return err
	}
	notify := func(err error, wait time.Duration) {
		reason := "network"
		var ae *APIError
		var te *TokenError
		if errors.As(err, &te) {
			reason = "token"
		}
		if errors.As(err, &ae) {
			reason = strconv.Itoa(ae.Status)
			if ae.Code == CodeUnableToLockRow || ae.Code == CodeRequestLimitExceeded {
				reason = ae.Code
			}
		}
		c.metrics.retries.WithLabelValues(r.op, reason).Inc()
		c.log.Warn("salesforce request will be retried", "operation", r.op, "reason", reason, "wait", wait, "err", err)
	}
	return backoff.RetryNotify(op, sched, notify)
}

// notSentError is a failure before the request was sent (getting a token
// failed on the network).
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// neverConnected reports whether err is a failure to open the connection
// (refused, unreachable, DNS), so the request was certainly not sent.
func neverConnected(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	return (errors.As(err, &oe) && oe.Op == "dial") || errors.As(err, &de)
}

// retryableUnapplied reports whether Salesforce certainly did not apply a
// request that failed with ae, so that even a create may be sent again.
func retryableUnapplied(ae *APIError) bool {
	return ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable ||
		ae.Code == CodeUnableToLockRow || ae.Code == CodeRequestLimitExceeded
}

// attempt sends r once, or twice when the first answer is a 401 and no
// refresh has happened yet in this call.
func (c *Client) attempt(ctx context.Context, r request, refreshed *bool, handle func([]byte) error) error {
	for {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			var te *TokenError
			if errors.As(err, &te) {
				return err
			}
			return &notSentError{err}
		}
		actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		resp, err := c.send(actx, tok, r) //nolint:bodyclose // drainClose closes it on both paths below
		if err != nil {
			cancel()
			return err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			body, err := io.ReadAll(resp.Body)
			drainClose(resp.Body)
			cancel()
			if err != nil {
				return fmt.Errorf("salesforce %s: read response: %w", r.op, err)
			}
			return handle(body)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		drainClose(resp.Body)
		cancel()
		ae := classify(resp.StatusCode, resp.Header, body, c.limitExhausted())
		if (ae.Status == http.StatusUnauthorized || ae.Code == CodeInvalidSessionID) && !*refreshed {
			*refreshed = true
			c.tokens.Invalidate(tok)
			c.metrics.retries.WithLabelValues(r.op, "session").Inc()
			continue
		}
		return ae
	}
}

// send makes one HTTP request and records its metrics and limit header.
func (c *Client) send(ctx context.Context, tok Token, r request) (*http.Response, error) {
	u := tok.InstanceURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, backoff.Permanent(fmt.Errorf("build %s request: %w", r.op, err))
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.opts.CallOptionsClient != "" {
		req.Header.Set("Sforce-Call-Options", "client="+c.opts.CallOptionsClient)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	c.metrics.duration.WithLabelValues(r.op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.requests.WithLabelValues(r.op, "error").Inc()
		return nil, fmt.Errorf("salesforce %s: %w", r.op, redactURLError(err))
	}
	c.metrics.requests.WithLabelValues(r.op, strconv.Itoa(resp.StatusCode)).Inc()
	c.recordLimit(resp.Header.Get("Sforce-Limit-Info"))
	return resp, nil
}

// redactURLError drops the query string from a *url.Error: a SOQL query
// can name record ids, and nothing that belongs to a request belongs in an
// error chain that reaches logs.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}

// recordLimit parses "api-usage=10018/100000" (other comma-separated
// entries, such as per-app-api-usage, are ignored).
func (c *Client) recordLimit(h string) {
	used, max, ok := parseLimitInfo(h)
	if !ok {
		return
	}
	c.limitMu.Lock()
	c.limit = APIUsage{Used: used, Max: max, Seen: true}
	c.limitMu.Unlock()
	c.metrics.apiUsed.Set(float64(used))
	c.metrics.apiLimit.Set(float64(max))
}

func parseLimitInfo(h string) (used, max int64, ok bool) {
	for part := range strings.SplitSeq(h, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || k != "api-usage" {
			continue
		}
		a, b, found := strings.Cut(v, "/")
		if !found {
			return 0, 0, false
		}
		u, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		m, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if err1 != nil || err2 != nil || u < 0 || m < 0 {
			return 0, 0, false
		}
		return u, m, true
	}
	return 0, 0, false
}

func (c *Client) limitExhausted() bool {
	c.limitMu.Lock()
	defer c.limitMu.Unlock()
	return c.limit.Seen && c.limit.Max > 0 && c.limit.Used >= c.limit.Max
}

// retryAfterBackOff waits at least the last Retry-After.
type retryAfterBackOff struct {
	backoff.BackOff
	after time.Duration
}

func (b *retryAfterBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if d == backoff.Stop {
		return d
	}
	if b.after > d {
		d = b.after
	}
	b.after = 0
	return d
}

func (b *retryAfterBackOff) Reset() {
	b.BackOff.Reset()
	b.after = 0
}

// decodeJSON returns a handle func that decodes the body into v. A body that does not decode
// will not decode better if fetched again: the error is final.
func decodeJSON(op string, v any) func([]byte) error {
	return func(body []byte) error {
		if err := json.Unmarshal(body, v); err != nil {
			return backoff.Permanent(fmt.Errorf("decode %s response: %w", op, err))
		}
		return nil
	}
}

func ignoreBody([]byte) error { return nil }
