package streaming

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func FuzzDecodeMessages(f *testing.F) {
	for _, seed := range []string{
		`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"}]`,
		`{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0}}`,
		`[{"channel":"/meta/subscribe","clientId":"a","subscription":["/data/X","/topic/Y"],"ext":{"replay":{"/data/X":-2,"/topic/Y":"12"}}}]`,
		`[1,"x",null,{"channel":5}]`, `[]`, `{}`, ``, `[{"id":{"nested":[1,2]}}]`,
		`[{"channel":"/meta/subscribe","subscription":"/data/X","ext":{"replay":{"/data/X":1e400}}}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := decodeMessages(body)
		if err != nil {
			return
		}
		if len(msgs) == 0 {
			t.Fatal("decodeMessages returned no messages and no error")
		}
		for i := range msgs {
			m := &msgs[i]
			subs, _ := m.subscriptions()
			rx := m.replay()
			for _, ch := range subs {
				if raw, ok := rx.values[ch]; ok {
					parseReplayValue(raw)
				}
			}
			rep := newReply(m)
			if _, err := json.Marshal(&rep); err != nil {
				t.Fatalf("reply for decoded message does not marshal: %v", err)
			}
		}
	})
}

// FuzzServeHTTP drives the handler in process (no network) with arbitrary bodies, a known
// clientId substituted for "CID", and the cookie of its browser. It must never panic and must
// always answer JSON (or a plain HTTP error status).
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []string{
		`[{"channel":"/meta/connect","clientId":"CID","connectionType":"long-polling"}]`,
		`[{"channel":"/meta/subscribe","clientId":"CID","subscription":"/data/X","ext":{"replay":{"/data/X":-2}}},{"channel":"/meta/connect","clientId":"CID","connectionType":"long-polling"}]`,
		`[{"channel":"/meta/unsubscribe","clientId":"CID","subscription":["/data/X"]},{"channel":"/meta/disconnect","clientId":"CID"}]`,
		`[{"channel":"/meta/handshake","supportedConnectionTypes":["websocket"]}]`,
		`[{"channel":"/data/X","data":{}}]`, `nope`, `[{"channel":"/meta/subscribe","clientId":"CID","subscription":"/topic/T","ext":{"replay":{"/topic/T":"1"}}}]`,
	} {
		f.Add([]byte(seed), "Bearer good")
	}
	srv := New(Options{
		AdviceTimeout: time.Millisecond,
		Authenticate:  func(tok string) (string, bool) { return "005", tok == "good" },
	})
	defer srv.Close()
	hs := httptest.NewRecorder()
	srv.ServeHTTP(hs, authedPost(`[{"channel":"/meta/handshake","version":"1.0"}]`, "good", nil))
	var reps []map[string]any
	if err := json.Unmarshal(hs.Body.Bytes(), &reps); err != nil || len(reps) != 1 {
		f.Fatalf("handshake: %s", hs.Body.Bytes())
	}
	cid, _ := reps[0]["clientId"].(string)
	cookies := hs.Result().Cookies()
	for range 3 {
		srv.Publish([]string{"/data/X", "/topic/T"}, func(id int64) json.RawMessage {
			return json.RawMessage(`{"event":{"replayId":` + formatID(id) + `}}`)
		})
	}

	f.Fuzz(func(t *testing.T, body []byte, authz string) {
		body = bytes.ReplaceAll(body, []byte("CID"), []byte(cid))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, authedPost(string(body), authz, cookies))
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("status %d with invalid JSON body %q", rec.Code, rec.Body.Bytes())
			}
		case http.StatusRequestEntityTooLarge, http.StatusRequestTimeout:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
	})
}

func authedPost(body, authz string, cookies []*http.Cookie) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/cometd/66.0", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return req
}
