package bayeux

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error is a Bayeux error a server returned in a meta reply, parsed from
// its "code:args:message" form. On a handshake, Salesforce puts the real
// cause in ext.sfdc.failureReason and "403::Handshake denied" in error; the
// failure reason, when present, is what Code and Message hold, and Raw keeps
// the error field as sent.
type Error struct {
	Op      string   // handshake, connect, subscribe or disconnect
	Channel string   // the subscription, for subscribe
	Code    string   // "403"; "" when the server's text has no code
	Message string   // "Unknown client"
	Args    []string // the error's arguments, e.g. faye's client id
	Raw     string   // the error field as the server sent it
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bayeux ")
	b.WriteString(e.Op)
	if e.Channel != "" {
		b.WriteString(" ")
		b.WriteString(e.Channel)
	}
	b.WriteString(" refused: ")
	if e.Code != "" {
		b.WriteString(e.Code)
		b.WriteString(" ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// newError builds an Error from a meta reply's error string and, when not
// empty, the Salesforce failure reason that overrides it.
func newError(op, channel, raw, failureReason string) *Error {
	text := raw
	if failureReason != "" {
		text = failureReason
	}
	code, args, msg := ParseError(text)
	e := &Error{Op: op, Channel: channel, Message: msg, Args: args, Raw: raw}
	if code != 0 {
		e.Code = strconv.Itoa(code)
	}
	if e.Message == "" && raw == "" && failureReason == "" {
		e.Message = "unsuccessful reply without an error"
	}
	return e
}

// ParseError splits a Bayeux error string of the form
// "code:arg1,arg2:message" ("403::Unknown client", "401:abc:Unknown
// client"). The message may itself contain colons. A string that does not
// start with a three-digit code and two colons returns code 0, no args and
// the whole string as the message.
func ParseError(s string) (code int, args []string, msg string) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || len(parts[0]) != 3 {
		return 0, nil, s
	}
	c, err := strconv.Atoi(parts[0])
	if err != nil || c < 100 {
		return 0, nil, s
	}
	if parts[1] != "" {
		args = strings.Split(parts[1], ",")
	}
	return c, args, parts[2]
}

// ReplayError is the error of a ReplayRefused delivery: the server refused to
// subscribe Channel from ReplayID, because the id is outside the retention
// window or otherwise unknown.
type ReplayError struct {
	Channel  string
	ReplayID int64
	Message  string // the server's text
}

// Error implements error.
func (e *ReplayError) Error() string {
	return fmt.Sprintf("replay id %d refused on %s: %s", e.ReplayID, e.Channel, e.Message)
}

// class is what the client does about a failure.
type class int

const (
	classOther         class = iota // follow advice; fatal on handshake and subscribe
	classUnknownClient              // re-handshake, re-subscribe
	classAuth                       // Unauthorized, then re-handshake
	classLimit                      // back off
	classInvalidReplay              // resubscribe by policy, then ReplayRefused
)

// classify sorts a server error into what the client must do about it
// (salesforce-facts.md §5.4, §5.5).
func classify(e *Error) class {
	msg := strings.ToLower(e.Message)
	switch {
	case strings.HasSuffix(strings.TrimSpace(msg), "unknown client"),
		strings.Contains(msg, "client has not completed handshake"),
		// The session's BAYEUX_BROWSER cookie went missing: a new
		// handshake sets a new one.
		strings.Contains(msg, "has established a session, but no"):
		return classUnknownClient
	case strings.Contains(msg, "replayid") && strings.Contains(msg, "invalid"):
		return classInvalidReplay
	case e.Code == "401":
		return classAuth
	case e.Code == "503",
		strings.Contains(msg, "limit") && strings.Contains(msg, "exceeded"),
		strings.Contains(msg, "too busy"),
		strings.Contains(msg, "try your request again later"):
		return classLimit
	case e.Code == "403" && strings.EqualFold(strings.TrimSpace(e.Message), "handshake denied"):
		// Denied without a failure reason: EMP-Connector treats any 403 on
		// the handshake as an authentication failure.
		return classAuth
	}
	return classOther
}

// HTTPError is a non-200 answer to a Bayeux POST.
type HTTPError struct {
	Op     string
	Status int
	// RetryAfter is the server's Retry-After, if any (honoured on 429 and 503).
	RetryAfter time.Duration
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("bayeux %s: http status %d", e.Op, e.Status)
}
