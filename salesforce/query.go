package salesforce

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cenkalti/backoff/v4"
)

// queryPage is the header of one page of a SOQL result (its records are decoded apart).
type queryPage struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl"`
}

// Query runs a SOQL query and yields its records one by one as raw JSON
// objects (with their "attributes"). Pages are read ahead by one: as soon as
// a page's body is in and its nextRecordsUrl known (Salesforce writes it
// before the records), the next page is requested, at nextRecordsUrl exactly
// as Salesforce returned it, so decoding and applying a page overlap the next
// round trip; no more than one page is held beyond the one being consumed.
// Stopping the range early abandons the query locator (and cancels the page
// being read ahead). An error ends the iteration after being yielded once.
func (c *Client) Query(ctx context.Context, soql string) iter.Seq2[json.RawMessage, error] {
	return queryRecords[json.RawMessage](ctx, c, "query", soql)
}

// QueryAll is Query over deleted and archived records too (queryAll).
func (c *Client) QueryAll(ctx context.Context, soql string) iter.Seq2[json.RawMessage, error] {
	return queryRecords[json.RawMessage](ctx, c, "queryAll", soql)
}

// QueryAs is Query with each record decoded into a T (each page in one pass). A record that
// does not decode into a T is skipped, logged with its sObject and Id, and counted
// (salesforce_query_records_skipped_total); the others, on its page and after, still arrive.
func QueryAs[T any](ctx context.Context, c *Client, soql string) iter.Seq2[T, error] {
	return queryRecords[T](ctx, c, "query", soql)
}

// Count runs a SOQL query, typically SELECT COUNT(), and returns its totalSize: how many
// records match (one request; meant for COUNT(), whose page has no records). A response
// without a totalSize of 0 or more is an error, not a count.
func (c *Client) Count(ctx context.Context, soql string) (int, error) {
	r := request{
		op: "query", method: http.MethodGet, path: c.dataPath("/query/"),
		query: url.Values{"q": {soql}}, safe: true,
	}
	var n int
	err := c.do(ctx, r, func(body []byte) error {
		var h struct {
			TotalSize *int `json:"totalSize"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			return backoff.Permanent(fmt.Errorf("decode query response: %w", err))
		}
		if h.TotalSize == nil || *h.TotalSize < 0 {
			return backoff.Permanent(errors.New("decode query response: no totalSize of 0 or more"))
		}
		n = *h.TotalSize
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// QueryPageSize is how many records a full query page holds: QueryBatchSize when set, else
// Salesforce's default of 2,000.
func (c *Client) QueryPageSize() int {
	return cmp.Or(c.opts.QueryBatchSize, 2000)
}

// pageOf is one page of a query result, decoded.
type pageOf[T any] struct {
	records []T
	// next delivers the next page, requested once the caller has finished the page before
	// this one (never more than one page ahead); nil after the last page.
	next <-chan pageOf[T]
	// finished is closed by the caller once it has consumed these records: the page after
	// next may then be requested.
	finished chan struct{}
	err      error
}

func queryRecords[T any](ctx context.Context, c *Client, resource, soql string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		r := request{
			op: "query", method: http.MethodGet, path: c.dataPath("/" + resource + "/"),
			query: url.Values{"q": {soql}}, safe: true,
		}
		if n := c.opts.QueryBatchSize; n > 0 {
			r.header = http.Header{"Sforce-Query-Options": {"batchSize=" + strconv.Itoa(n)}}
		}
		ctx, cancel := context.WithCancel(ctx)
		begun := make(chan struct{})
		close(begun)
		ch := fetchPage[T](ctx, c, r, begun)
		defer func() {
			// Abandoned or failed: cancel the page read ahead and wait for its request.
			cancel()
			for ch != nil {
				ch = (<-ch).next
			}
		}()
		for page := 1; ch != nil; page++ {
			p := <-ch
			ch = p.next
			if p.err != nil {
				var zero T
				yield(zero, fmt.Errorf("query page %d: %w", page, p.err))
				return
			}
			for _, rec := range p.records {
				if !yield(rec, nil) {
					return
				}
			}
			close(p.finished)
		}
	}
}

// fetchPage requests the page r in the background and delivers it on the returned channel
// (exactly one value). Once the body is in, and the caller has finished the page before
// (prev closed), it requests the next page at nextRecordsUrl (Salesforce writes it before
// the records), then decodes this page's records while that request travels.
func fetchPage[T any](ctx context.Context, c *Client, r request, prev <-chan struct{}) <-chan pageOf[T] {
	ch := make(chan pageOf[T], 1)
	go func() {
		out := pageOf[T]{finished: make(chan struct{})}
		err := c.do(ctx, r, func(body []byte) error {
			h, err := pageHeader(body)
			if err != nil {
				return backoff.Permanent(fmt.Errorf("decode query response: %w", err))
			}
			var next request
			if !h.Done && h.NextRecordsURL != "" {
				path, err := relativePath(h.NextRecordsURL)
				if err != nil {
					return backoff.Permanent(err)
				}
				next = request{op: "query_more", method: http.MethodGet, path: path, safe: true, header: r.header}
			}
			start := func() {
				if next.path != "" && out.next == nil {
					out.next = fetchPage[T](ctx, c, next, out.finished)
				}
			}
			select {
			case <-prev:
				start() // the caller has finished the page before this one: the next is one ahead
			default:
			}
			recs, err := decodeRecords[T](c, body)
			if err != nil {
				return backoff.Permanent(fmt.Errorf("decode query response: %w", err))
			}
			out.records = recs
			if next.path != "" && out.next == nil {
				select {
				case <-prev:
					start()
				case <-ctx.Done():
					return backoff.Permanent(ctx.Err())
				}
			}
			return nil
		})
		out.err = err
		ch <- out
	}()
	return ch
}

// decodeRecords decodes a page's records into their type, the whole page in one pass. When
// that fails, it decodes them one by one and skips (logs with its Id, and counts) each record
// that does not decode: one bad record costs only itself, never its page or its query. An
// error means the page itself is not a query result.
func decodeRecords[T any](c *Client, body []byte) ([]T, error) {
	var page struct {
		Records []T `json:"records"`
	}
	if json.Unmarshal(body, &page) == nil {
		return page.Records, nil
	}
	var raw struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	recs := make([]T, 0, len(raw.Records))
	for _, r := range raw.Records {
		var v T
		if err := json.Unmarshal(r, &v); err != nil {
			var id struct {
				Attributes struct {
					Type string `json:"type"`
				} `json:"attributes"`
				ID string `json:"Id"`
			}
			_ = json.Unmarshal(r, &id)
			sobject := cmp.Or(id.Attributes.Type, "unknown")
			c.metrics.skipped.WithLabelValues(sobject).Inc()
			c.log.Warn("query record skipped: it does not decode", "sobject", sobject, "id", id.ID, "err", err)
			continue
		}
		recs = append(recs, v)
	}
	return recs, nil
}

// pageHeader reads a query page's done and nextRecordsUrl without decoding its records when
// they come after them, as Salesforce writes them.
func pageHeader(body []byte) (queryPage, error) {
	var h queryPage
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return h, fmt.Errorf("a query page is a JSON object: %w", errors.Join(err, errors.New("not an object")))
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return h, err
		}
		switch t {
		case "done":
			err = dec.Decode(&h.Done)
		case "nextRecordsUrl":
			err = dec.Decode(&h.NextRecordsURL)
		case "totalSize":
			err = dec.Decode(&h.TotalSize)
		case "records":
			if h.NextRecordsURL != "" || h.Done {
				return h, nil // the rest is records
			}
			var skip json.RawMessage
			err = dec.Decode(&skip)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return h, err
		}
	}
	return h, nil
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
