package bayeux

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/omniroute/omniroute/salesforce/internal/jsonscan"
)

// decodeResponse decodes a response body: a JSON array of message objects.
// A single object is accepted as a one-message array (some servers send it).
// Every message must name its channel.
//
// It first tries decodeFast, a single validating pass whose Data, Ext and
// Subscription alias body (the caller hands over a body it never reuses).
// decodeFast only accepts the plain shape servers send; on anything else
// (malformed input, escaped or case-folded keys, duplicate keys, values of
// an unexpected type) it gives up and decodeStd, the encoding/json decoder,
// decides, so the result and every error are encoding/json's.
func decodeResponse(body []byte) ([]message, error) {
	body = bytes.TrimSpace(body)
	if msgs, ok := decodeFast(body); ok {
		return msgs, nil
	}
	return decodeStd(body)
}

// decodeStd decodes body with encoding/json: one validation pass, one
// decoding pass and a copy of each raw member.
func decodeStd(body []byte) ([]message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", errMalformed)
	}
	var msgs []message
	switch body[0] {
	case '[':
		if err := json.Unmarshal(body, &msgs); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
	case '{':
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		msgs = []message{m}
	default:
		return nil, fmt.Errorf("%w: body is not a JSON array (starts with %q)", errMalformed, body[0])
	}
	for i := range msgs {
		if msgs[i].Channel == "" {
			return nil, fmt.Errorf("%w: message %d has no channel", errMalformed, i)
		}
	}
	return msgs, nil
}

// maxFastDepth is the deepest nesting decodeFast validates itself; deeper
// input goes to encoding/json (whose own limit is 10,000).
const maxFastDepth = 512

// fastDecoder is decodeFast's cursor over a trimmed body.
type fastDecoder struct {
	b []byte
	i int
}

// decodeFast decodes body (already trimmed) in one validating pass, or
// reports false when encoding/json must decide. It accepts exactly what
// json.Unmarshal accepts into []message, restricted to: message objects
// whose keys are unescaped, spelled as in the struct tags and not repeated,
// whose string values are unescaped valid UTF-8, and whose typed members
// hold their type or null. Within that subset the result equals
// decodeStd's, except that raw members alias body instead of copying it.
func decodeFast(body []byte) ([]message, bool) {
	d := fastDecoder{b: body}
	if len(body) == 0 {
		return nil, false
	}
	var msgs []message
	switch body[0] {
	case '{':
		msgs = make([]message, 1)
		if !d.message(&msgs[0]) {
			return nil, false
		}
	case '[':
		d.i++
		d.ws()
		// About one message per 512 bytes: events are larger, so this
		// rarely grows, and it stays well under the body's own size.
		msgs = make([]message, 0, 2+len(body)/512)
		if d.peek() == ']' {
			d.i++
			break
		}
		for {
			msgs = append(msgs, message{})
			if !d.message(&msgs[len(msgs)-1]) {
				return nil, false
			}
			d.ws()
			c := d.peek()
			d.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return nil, false
			}
			d.ws()
		}
	default:
		return nil, false
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, false
	}
	for i := range msgs {
		if msgs[i].Channel == "" {
			return nil, false
		}
	}
	return msgs, true
}

// peek returns the byte at the cursor, or 0 at the end.
func (d *fastDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// ws skips JSON white space.
func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// Field bits, to refuse repeated keys.
const (
	fChannel = 1 << iota
	fID
	fClientID
	fVersion
	fMinimumVersion
	fSupportedConnectionTypes
	fConnectionType
	fSubscription
	fSuccessful
	fError
	fAdvice
	fExt
	fData
)

var messageKeys = []string{
	"channel", "id", "clientId", "version", "minimumVersion", "supportedConnectionTypes",
	"connectionType", "subscription", "successful", "error", "advice", "ext", "data",
}

var adviceKeys = []string{"reconnect", "interval", "timeout", "multiple-clients"}

// foldsToAny reports whether encoding/json would match key to one of names
// (it matches case-insensitively when no name matches exactly).
func foldsToAny(key []byte, names []string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// object decodes the object at the cursor, handing each member's key to field with the cursor
// on its value. field decodes the value and returns the key's bit (0 for keys that may repeat,
// such as unknown ones it skipped); a known key seen twice fails, as it would take the last
// value under encoding/json.
func (d *fastDecoder) object(field func(key []byte) (bit uint32, ok bool)) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return true
	}
	var seen uint32
	for {
		key, ok := d.plainString()
		if !ok {
			return false
		}
		d.ws()
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// message decodes one message object at the cursor.
func (d *fastDecoder) message(m *message) bool {
	return d.object(func(key []byte) (bit uint32, ok bool) {
		switch string(key) {
		case "channel":
			return fChannel, d.stringField(&m.Channel)
		case "id":
			start := d.i
			if !d.skipValue(0) {
				return fID, false
			}
			return fID, m.ID.UnmarshalJSON(d.b[start:d.i]) == nil
		case "clientId":
			return fClientID, d.stringField(&m.ClientID)
		case "version":
			return fVersion, d.stringField(&m.Version)
		case "minimumVersion":
			return fMinimumVersion, d.stringField(&m.MinimumVersion)
		case "supportedConnectionTypes":
			return fSupportedConnectionTypes, d.stringList(&m.SupportedConnectionTypes)
		case "connectionType":
			return fConnectionType, d.stringField(&m.ConnectionType)
		case "subscription":
			return fSubscription, d.raw(&m.Subscription)
		case "successful":
			return fSuccessful, d.boolField(&m.Successful)
		case "error":
			return fError, d.stringField(&m.Error)
		case "advice":
			return fAdvice, d.advice(&m.Advice)
		case "ext":
			return fExt, d.raw(&m.Ext)
		case "data":
			return fData, d.raw(&m.Data)
		default:
			return 0, !foldsToAny(key, messageKeys) && d.skipValue(0)
		}
	})
}

// advice decodes an advice object (or null) at the cursor.
func (d *fastDecoder) advice(dst **advice) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	a := &advice{}
	*dst = a
	return d.object(func(key []byte) (bit uint32, ok bool) {
		switch string(key) {
		case "reconnect":
			return 1, d.stringField(&a.Reconnect)
		case "interval":
			return 2, d.floatField(&a.Interval)
		case "timeout":
			return 4, d.floatField(&a.Timeout)
		case "multiple-clients":
			return 8, d.boolField(&a.MultipleClients)
		default:
			return 0, !foldsToAny(key, adviceKeys) && d.skipValue(0)
		}
	})
}

// plainString reads a string without escapes or control characters whose
// content is valid UTF-8 (so encoding/json would leave it as is), and
// returns its content.
func (d *fastDecoder) plainString() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// stringField decodes a plain string or null (which leaves dst alone, as
// encoding/json does).
func (d *fastDecoder) stringField(dst *string) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	s, ok := d.plainString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// stringList decodes an array of plain strings, or null.
func (d *fastDecoder) stringList(dst *[]string) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	d.ws()
	list := []string{}
	if d.peek() == ']' {
		d.i++
		*dst = list
		return true
	}
	for {
		s, ok := d.plainString()
		if !ok {
			return false
		}
		list = append(list, string(s))
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			*dst = list
			return true
		default:
			return false
		}
	}
}

// boolField decodes true, false or null (which leaves dst alone).
func (d *fastDecoder) boolField(dst *bool) bool {
	switch d.peek() {
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return false
}

// floatField decodes a number, or null (which sets dst to nil).
func (d *fastDecoder) floatField(dst **float64) bool {
	if d.peek() == 'n' {
		*dst = nil
		return d.literal("null")
	}
	start := d.i
	if !d.number() {
		return false
	}
	f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
	if err != nil {
		return false
	}
	*dst = &f
	return true
}

// raw validates the value at the cursor and stores it, aliasing the body.
// Its capacity ends with it, so an append cannot write into the body.
func (d *fastDecoder) raw(dst *json.RawMessage) bool {
	start := d.i
	if !d.skipValue(0) {
		return false
	}
	*dst = d.b[start:d.i:d.i]
	return true
}

// literal consumes lit (true, false or null).
func (d *fastDecoder) literal(lit string) bool {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// skipValue validates and skips the JSON value at the cursor.
func (d *fastDecoder) skipValue(depth int) bool {
	switch c := d.peek(); {
	case c == '"':
		return d.skipString()
	case c == '{':
		if depth >= maxFastDepth {
			return false
		}
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			if !d.skipString() {
				return false
			}
			d.ws()
			if d.peek() != ':' {
				return false
			}
			d.i++
			d.ws()
			if !d.skipValue(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
				d.ws()
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		if depth >= maxFastDepth {
			return false
		}
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skipValue(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
				d.ws()
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return false
}

// skipString validates and skips a string: no control characters, only
// JSON escapes. Like encoding/json's validator, it does not check UTF-8.
func (d *fastDecoder) skipString() bool {
	if d.peek() != '"' {
		return false
	}
	b := d.b
	for j := d.i + 1; j < len(b); j++ {
		c := b[j]
		if !stringSpecial[c] {
			continue
		}
		switch {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(b) {
				return false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return false
				}
				for _, h := range b[j+1 : j+5] {
					if !jsonscan.IsHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

// stringSpecial marks the bytes skipString must look at: the quote, the
// backslash and the control characters.
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// number validates and skips a JSON number.
func (d *fastDecoder) number() bool {
	end, ok := jsonscan.NumberEnd(d.b, d.i)
	if ok {
		d.i = end
	}
	return ok
}
