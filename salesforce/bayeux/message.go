package bayeux

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Meta channels of the Bayeux protocol.
const (
	chHandshake  = "/meta/handshake"
	chConnect    = "/meta/connect"
	chSubscribe  = "/meta/subscribe"
	chDisconnect = "/meta/disconnect"
)

// message is one Bayeux message as sent or received. Fields a server may
// send in several shapes (id, subscription) are decoded leniently.
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
	Data                     json.RawMessage `json:"data,omitempty"`
}

// msgID is a Bayeux message id. The spec says string; a number is accepted
// and kept as its decimal text.
type msgID string

func (id *msgID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = msgID(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decode message id: %w", err)
	}
	*id = msgID(n.String())
	return nil
}

// advice is the server's reconnect advice. Numbers are decoded as float64
// so a server sending 110000.0 is understood.
type advice struct {
	Reconnect       string   `json:"reconnect,omitempty"`
	Interval        *float64 `json:"interval,omitempty"`
	Timeout         *float64 `json:"timeout,omitempty"`
	MultipleClients bool     `json:"multiple-clients,omitempty"`
}

// subscriptionString returns the reply's subscription when it is a single
// string, or "".
func (m *message) subscriptionString() string {
	if len(m.Subscription) == 0 || m.Subscription[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(m.Subscription, &s) != nil {
		return ""
	}
	return s
}

// isMeta reports whether the message is on a /meta/ channel.
func (m *message) isMeta() bool { return strings.HasPrefix(m.Channel, "/meta/") }

// errMalformed is wrapped by every response decoding error.
var errMalformed = errors.New("malformed bayeux response")

// replayIDOf returns data.event.replayId, or 0 when it is absent or not an
// integer (a quoted integer is accepted). It scans the bytes instead of
// decoding them: the replay id is read for every event, and a full decode
// here would cost as much as decoding the whole response again. data has
// already been validated as JSON by decodeResponse; the scanner still
// checks every bound, so any input is safe. Keys match exactly, and the
// first occurrence of a key wins.
func replayIDOf(data []byte) int64 {
	ev := objectField(data, skipSpace(data, 0), "event")
	if ev < 0 {
		return 0
	}
	id := objectField(data, ev, "replayId")
	if id < 0 {
		return 0
	}
	return parseIntValue(data, id)
}

// objectField returns the index of the value of key in the object starting
// at data[start], or -1.
func objectField(data []byte, start int, key string) int {
	if start < 0 || start >= len(data) || data[start] != '{' {
		return -1
	}
	i := start + 1
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return -1 // '}' (not found) or malformed
		}
		end := skipString(data, i)
		if end < 0 {
			return -1
		}
		name := data[i+1 : end-1]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return -1
		}
		v := skipSpace(data, i+1)
		if v >= len(data) {
			return -1
		}
		if string(name) == key {
			return v
		}
		i = skipSpace(data, skipValue(data, v))
		if i < 0 || i >= len(data) || data[i] != ',' {
			return -1
		}
		i++
	}
}

func skipSpace(data []byte, i int) int {
	for i >= 0 && i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just after the string starting at data[i]
// (a '"'), or -1.
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just after the value starting at data[i], or
// -1.
func skipValue(data []byte, i int) int {
	if i < 0 || i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end := skipString(data, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// parseIntValue parses the integer (or quoted integer) at data[i]; 0 when
// it is anything else.
func parseIntValue(data []byte, i int) int64 {
	end := skipValue(data, i)
	if end < 0 {
		return 0
	}
	v := data[i:end]
	if len(v) >= 2 && v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	id, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// handshakeExt is what the client reads from a handshake reply's ext.
type handshakeExt struct {
	Replay        bool `json:"replay"`
	PayloadFormat bool `json:"payload.format"`
	Sfdc          *struct {
		FailureReason string `json:"failureReason"`
	} `json:"sfdc"`
}

// decodeExt decodes a handshake reply's ext leniently: anything that does
// not fit yields the zero value.
func decodeExt(raw json.RawMessage) handshakeExt {
	var e handshakeExt
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &e) // lenient: a foreign ext shape is not an error
	}
	return e
}
