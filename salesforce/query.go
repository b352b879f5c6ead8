package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// queryPage is one page of a SOQL result.
type queryPage struct {
	TotalSize      int               `json:"totalSize"`
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

// Query runs a SOQL query and yields its records one by one as raw JSON
// objects (with their "attributes"). Pages are read ahead by one: while the
// caller consumes a page, the next is requested, at nextRecordsUrl exactly as
// Salesforce returned it, so decoding and applying overlap the next round
// trip; no more than one page is held beyond the one being consumed.
// Stopping the range early abandons the query locator (and cancels the page
// being read ahead). An error ends the iteration after being yielded once.
func (c *Client) Query(ctx context.Context, soql string) iter.Seq2[json.RawMessage, error] {
	return c.query(ctx, "query", soql)
}

// QueryAll is Query over deleted and archived records too (queryAll).
func (c *Client) QueryAll(ctx context.Context, soql string) iter.Seq2[json.RawMessage, error] {
	return c.query(ctx, "queryAll", soql)
}

// pageResult is a page read ahead, or why it could not be.
type pageResult struct {
	page queryPage
	err  error
}

func (c *Client) query(ctx context.Context, resource, soql string) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		r := request{
			op: "query", method: http.MethodGet, path: c.dataPath("/" + resource + "/"),
			query: url.Values{"q": {soql}}, safe: true,
		}
		if n := c.opts.QueryBatchSize; n > 0 {
			r.header = http.Header{"Sforce-Query-Options": {"batchSize=" + strconv.Itoa(n)}}
		}
		var p queryPage
		if err := c.do(ctx, r, decodeJSON("query", &p)); err != nil {
			yield(nil, fmt.Errorf("query page 1: %w", err))
			return
		}
		for page := 1; ; page++ {
			var next func() (queryPage, error)
			abandon := func() {}
			if !p.Done && p.NextRecordsURL != "" {
				path, err := relativePath(p.NextRecordsURL)
				if err != nil {
					yield(nil, fmt.Errorf("query page %d: %w", page+1, err))
					return
				}
				r = request{op: "query_more", method: http.MethodGet, path: path, safe: true, header: r.header}
				next, abandon = c.readAhead(ctx, r)
			}
			for _, rec := range p.Records {
				if !yield(rec, nil) {
					abandon()
					return
				}
			}
			if next == nil {
				return
			}
			var err error
			if p, err = next(); err != nil {
				yield(nil, fmt.Errorf("query page %d: %w", page+1, err))
				return
			}
		}
	}
}

// readAhead requests the page r in the background. next waits for it; abandon cancels it
// and waits for the request to end. One of the two must be called.
func (c *Client) readAhead(ctx context.Context, r request) (next func() (queryPage, error), abandon func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan pageResult, 1)
	go func() {
		var p queryPage
		err := c.do(ctx, r, decodeJSON("query", &p))
		ch <- pageResult{p, err}
	}()
	next = func() (queryPage, error) {
		res := <-ch
		cancel()
		return res.page, res.err
	}
	abandon = func() {
		cancel()
		<-ch
	}
	return next, abandon
}

// relativePath accepts nextRecordsUrl as Salesforce sends it (a path on
// the instance) and refuses anything that would leave the instance.
func relativePath(next string) (string, error) {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") {
		return "", fmt.Errorf("follow nextRecordsUrl %q: want a path on the instance", next)
	}
	return next, nil
}

// QueryAs runs Query and decodes each record into a T.
func QueryAs[T any](ctx context.Context, c *Client, soql string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for raw, err := range c.Query(ctx, soql) {
			var v T
			if err != nil {
				yield(v, err)
				return
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				yield(v, fmt.Errorf("decode query record: %w", err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}
