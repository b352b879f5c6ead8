package streaming

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Meta channels the server answers.
const (
	channelHandshake   = "/meta/handshake"
	channelConnect     = "/meta/connect"
	channelSubscribe   = "/meta/subscribe"
	channelUnsubscribe = "/meta/unsubscribe"
	channelDisconnect  = "/meta/disconnect"

	connectionLongPolling = "long-polling"
)

// message is one decoded Bayeux request message. Fields the server does not use are ignored.
type message struct {
	Channel                  string          `json:"channel"`
	ClientID                 string          `json:"clientId"`
	ID                       json.RawMessage `json:"id"`
	Version                  string          `json:"version"`
	SupportedConnectionTypes []string        `json:"supportedConnectionTypes"`
	ConnectionType           string          `json:"connectionType"`
	Subscription             json.RawMessage `json:"subscription"`
	Advice                   *requestAdvice  `json:"advice"`
	Ext                      json.RawMessage `json:"ext"`
	Data                     json.RawMessage `json:"data"`

	// malformed is set when the element was JSON but not a usable message object.
	malformed bool
}

type requestAdvice struct {
	Timeout *float64 `json:"timeout"`
}

var errNotBatch = errors.New("decode bayeux request: body is not a JSON object or array of objects")

// decodeMessages parses a request body: a JSON array of Bayeux messages, or (as CometD servers
// also accept) a single message object. The body as a whole must be valid JSON of one of those
// two shapes and hold at least one element; each element that is not a well-typed message
// object comes back with malformed set, so that it gets its own error reply while the other
// messages of the batch are still served.
func decodeMessages(body []byte) ([]message, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errNotBatch
	}
	var raws []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errNotBatch
		}
	case '{':
		if !json.Valid(trimmed) {
			return nil, errNotBatch
		}
		raws = []json.RawMessage{trimmed}
	default:
		return nil, errNotBatch
	}
	if len(raws) == 0 {
		return nil, errNotBatch
	}
	msgs := make([]message, len(raws))
	for i, raw := range raws {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			msgs[i].malformed = true
			continue
		}
		if err := json.Unmarshal(raw, &msgs[i]); err != nil {
			// Keep what can be salvaged for the reply (channel and id), if anything.
			var head struct {
				Channel json.RawMessage `json:"channel"`
				ID      json.RawMessage `json:"id"`
			}
			msgs[i] = message{malformed: true}
			if json.Unmarshal(raw, &head) == nil {
				var ch string
				if json.Unmarshal(head.Channel, &ch) == nil {
					msgs[i].Channel = ch
				}
				msgs[i].ID = head.ID
			}
		}
	}
	return msgs, nil
}

// subscriptions returns the message's subscription as a list: Bayeux allows a string or an
// array of strings. ok is false when the field has another shape.
func (m *message) subscriptions() (subs []string, ok bool) {
	raw := bytes.TrimSpace(m.Subscription)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &subs); err != nil {
			return nil, false
		}
		return subs, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []string{s}, true
}

// replayExt is the subscribe message's replay extension.
type replayExt struct {
	present bool                       // ext.replay is an object
	values  map[string]json.RawMessage // channel -> replay value as sent
}

func (m *message) replay() replayExt {
	if len(m.Ext) == 0 {
		return replayExt{}
	}
	var ext struct {
		Replay json.RawMessage `json:"replay"`
	}
	if json.Unmarshal(m.Ext, &ext) != nil {
		return replayExt{}
	}
	var values map[string]json.RawMessage
	raw := bytes.TrimSpace(ext.Replay)
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &values) != nil {
		return replayExt{}
	}
	return replayExt{present: true, values: values}
}

// parseReplayValue reads a replay value: a JSON integer (an integral float such as 42.0 too).
// ok is false for anything else, a string holding a number included: Salesforce documents
// replay ids as numbers (EMP-Connector and jsforce send longs), and whether a real org takes
// a string is unconfirmed, so the stricter choice refuses it. text is the value as shown in
// the error (a string's content, without its quotes).
func parseReplayValue(raw json.RawMessage) (id int64, text string, ok bool) {
	raw = bytes.TrimSpace(raw)
	text = string(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return 0, s, false
	}
	id, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// Accept integral floats such as 42.0 that some JSON encoders produce.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, text, false
		}
		id = int64(f)
	}
	return id, text, true
}

// reply is one response message. Fields are written in this order; empty ones are left out.
type reply struct {
	Ext                      json.RawMessage `json:"ext,omitempty"`
	Advice                   *advice         `json:"advice,omitempty"`
	MinimumVersion           string          `json:"minimumVersion,omitempty"`
	ClientID                 string          `json:"clientId,omitempty"`
	SupportedConnectionTypes []string        `json:"supportedConnectionTypes,omitempty"`
	Channel                  string          `json:"channel,omitempty"`
	ID                       json.RawMessage `json:"id,omitempty"`
	Subscription             json.RawMessage `json:"subscription,omitempty"`
	Version                  string          `json:"version,omitempty"`
	Error                    string          `json:"error,omitempty"`
	Successful               bool            `json:"successful"`
}

// advice is the server's advice. Fields left nil are not written.
type advice struct {
	Interval        *int64 `json:"interval,omitempty"`
	MultipleClients bool   `json:"multiple-clients,omitempty"`
	Timeout         *int64 `json:"timeout,omitempty"`
	Reconnect       string `json:"reconnect,omitempty"`
}

func newReply(m *message) reply {
	return reply{Channel: m.Channel, ID: m.ID}
}
