package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchSubscriber is a long-polling CometD client that counts PSR CREATE events.
type benchSubscriber struct {
	url      string
	token    string
	http     *http.Client
	clientID string
}

func (s *benchSubscriber) post(msgs ...map[string]any) ([]map[string]any, error) {
	for _, m := range msgs {
		if s.clientID != "" {
			m["clientId"] = s.clientID
		}
	}
	b, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, s.url+"/cometd/62.0", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", body, err)
	}
	return out, nil
}

func (s *benchSubscriber) start(channel string) error {
	out, err := s.post(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}, "ext": map[string]any{"replay": true}})
	if err != nil {
		return err
	}
	id, _ := out[0]["clientId"].(string)
	if id == "" {
		return errors.New("handshake failed")
	}
	s.clientID = id
	if _, err := s.post(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"}); err != nil {
		return err
	}
	out, err = s.post(map[string]any{"channel": "/meta/subscribe", "subscription": channel, "ext": map[string]any{"replay": map[string]any{channel: -1}}})
	if err != nil {
		return err
	}
	if out[0]["successful"] != true {
		return fmt.Errorf("subscribe: %v", out[0])
	}
	return nil
}

// run connects until want CREATE events arrived and reports the count on done.
func (s *benchSubscriber) run(want int, done chan<- error) {
	got := 0
	for got < want {
		out, err := s.post(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
		if err != nil {
			done <- err
			return
		}
		for _, m := range out {
			ch, _ := m["channel"].(string)
			if strings.HasPrefix(ch, "/meta/") {
				if m["successful"] != true {
					done <- fmt.Errorf("connect: %v", m)
					return
				}
				continue
			}
			if header(m)["changeType"] == "CREATE" {
				got++
			}
		}
	}
	done <- nil
}

// BenchmarkWorkToPSREventOverCometD measures work items per second from creation to the PSR
// CREATE change event delivered to a long-polling CometD subscriber on loopback. via=go calls
// CreateWork; via=control-api posts to /emulator/v1/work over HTTP from 4 concurrent senders
// (keep-alive connections), as a load generator would.
func BenchmarkWorkToPSREventOverCometD(b *testing.B) {
	for _, via := range []string{"go", "control-api"} {
		b.Run("via="+via, func(b *testing.B) { benchWorkToEvent(b, via) })
	}
}

func benchWorkToEvent(b *testing.B, via string) {
	em, err := New(Options{Seed: DemoSeed(), ControlToken: testControlToken, MaxEvents: 2_000_000})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	defer em.Close()
	tok, err := em.IssueToken(DemoUsername)
	if err != nil {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	sub := &benchSubscriber{url: srv.URL, token: tok, http: &http.Client{Jar: jar, Timeout: time.Minute}}
	if err := sub.start("/data/PendingServiceRoutingChangeEvent"); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	queues := []string{"Support_EN", "Support_DE", "Billing"}
	channels := []string{"Chat", "Messaging", "Case", "Phone"}
	ctl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	create := func(i int) error {
		req := WorkRequest{Channel: channels[i%4], Queue: queues[i%3], Subject: "bench"}
		if via == "go" {
			_, err := em.CreateWork(req)
			return err
		}
		body, _ := json.Marshal(req)
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/emulator/v1/work", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testControlToken)
		resp, err := ctl.Do(r)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("create work: status %d", resp.StatusCode)
		}
		return nil
	}
	b.ResetTimer()
	start := time.Now()
	go sub.run(b.N, done)
	senders := 1
	if via != "go" {
		senders = 4
	}
	errc := make(chan error, senders)
	for w := range senders {
		go func() {
			for i := w; i < b.N; i += senders {
				if err := create(i); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range senders {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
}
