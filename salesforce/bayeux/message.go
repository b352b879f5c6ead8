package bayeux

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Meta channels of the Bayeux protocol.
const (
	chHandshake  = "/meta/handshake"
	chConnect    = "/meta/connect"
	chSubscribe  = "/meta/subscribe"
	chDisconnect = "/meta/disconnect"
)

// message is one Bayeux message as sent or received. Fields a server may send in several shapes
// (id, subscription, ext) are decoded leniently.
type message struct {
	Channel                  string          `json:"channel"`
	ID                       msgID           `json:"id,omitempty"`
	ClientID                 string          `json:"clientId,omitempty"`
	Version                  string          `json:"version,omitempty"`
	MinimumVersion           string          `json:"minimumVersion,omitempty"`
	SupportedConnectionTypes []string        `json:"supportedConnectionTypes,omitempty"`
	ConnectionType           string          `json:"connectionType,omitempty"`
	Subscription             json.RawMessage `json:"subscription,omitempty"`
	Successful               bool            `json:"successful,omitempty"`
	Error                    string          `json:"error,omitempty"`
	Advice                   *advice         `json:"advice,omitempty"`
	Ext                      json.RawMessage `json:"ext,omitempty"`
	Data                     *EventData      `json:"data,omitempty"`

	// bad is why a received message did not decode into this type; raw is then its data
	// member as sent.
	bad error
	raw json.RawMessage
}

// EventData is an event's data member as Salesforce sends it, decoded in the same pass as the
// response that carried it: CDC and platform events carry payload, PushTopic events sobject,
// and both carry event.replayId. Record fields stay raw JSON values, owned by the EventData.
type EventData struct {
	Schema  string                     `json:"schema,omitempty"`
	Payload map[string]json.RawMessage `json:"payload,omitempty"`
	Sobject map[string]json.RawMessage `json:"sobject,omitempty"`
	Event   struct {
		// ReplayID is an integer; a quoted integer is accepted.
		ReplayID json.Number `json:"replayId,omitempty"`
		// Type is the PushTopic operation: created, updated, deleted or undeleted.
		Type string `json:"type,omitempty"`
		// CreatedDate is the PushTopic event time.
		CreatedDate string `json:"createdDate,omitempty"`
	} `json:"event"`
}

// msgID is a Bayeux message id. The spec says string; a number is accepted and kept as its
// decimal text.
type msgID string

func (id *msgID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil { // a string, or null
		*id = msgID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decode message id: %w", err)
	}
	*id = msgID(n)
	return nil
}

// advice is the server's reconnect advice. Numbers are decoded as float64 so a server sending
// 110000.0 is understood.
type advice struct {
	Reconnect       string   `json:"reconnect,omitempty"`
	Interval        *float64 `json:"interval,omitempty"`
	Timeout         *float64 `json:"timeout,omitempty"`
	MultipleClients bool     `json:"multiple-clients,omitempty"`
}

// subscriptionString returns the reply's subscription when it is a single string, or "".
func (m *message) subscriptionString() string {
	var s string
	if json.Unmarshal(m.Subscription, &s) != nil {
		return ""
	}
	return s
}

// isMeta reports whether the message is on a /meta/ channel.
func (m *message) isMeta() bool { return strings.HasPrefix(m.Channel, "/meta/") }

// replayID returns the event's replay id, or 0 when it has none.
func (d *EventData) replayID() (int64, error) {
	if d.Event.ReplayID == "" {
		return 0, nil
	}
	id, err := d.Event.ReplayID.Int64()
	if err != nil {
		return 0, fmt.Errorf("event.replayId %s is not an integer", d.Event.ReplayID)
	}
	return id, nil
}

// errMalformed is wrapped by every response decoding error.
var errMalformed = errors.New("malformed bayeux response")

// decodeResponse decodes a response body with encoding/json: a JSON array of messages (a single
// object is accepted as a one-message array; some servers send it), each naming its channel.
// A message whose members do not have their types (an event whose data is not an object, a
// replay id that is not a number) does not take the others with it: the body is then decoded
// again message by message, and that one keeps its channel and raw data, and says why it is bad.
func decodeResponse(body []byte) ([]message, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		body = bytes.Join([][]byte{[]byte("["), body, []byte("]")}, nil)
	}
	var msgs []message
	err := json.Unmarshal(body, &msgs)
	if _, syntax := errors.AsType[*json.SyntaxError](err); err != nil && !syntax {
		msgs, err = decodeEach(body)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	for i := range msgs {
		if msgs[i].Channel == "" {
			return nil, fmt.Errorf("%w: message %d has no channel", errMalformed, i)
		}
	}
	return msgs, nil
}

func decodeEach(body []byte) ([]message, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, err
	}
	msgs := make([]message, len(raws))
	for i, raw := range raws {
		err := json.Unmarshal(raw, &msgs[i])
		if err == nil {
			continue
		}
		var head struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(raw, &head) != nil {
			return nil, err
		}
		msgs[i] = message{Channel: head.Channel, raw: head.Data, bad: err}
	}
	return msgs, nil
}

// handshakeExt is what the client reads from a reply's ext.
type handshakeExt struct {
	Replay bool `json:"replay"`
	Sfdc   *struct {
		FailureReason string `json:"failureReason"`
	} `json:"sfdc"`
}

// decodeExt decodes a reply's ext leniently: anything that does not fit yields the zero value.
func decodeExt(raw json.RawMessage) handshakeExt {
	var e handshakeExt
	_ = json.Unmarshal(raw, &e) // lenient: a foreign ext shape is not an error
	return e
}
