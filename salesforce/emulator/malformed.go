package emulator

import (
	"encoding/json"
	"fmt"
)

// Malformed event data for InjectMalformedEvent. Each is valid JSON (the Bayeux response stays
// well formed) that a change-event consumer cannot decode, and each carries its replay id.
const (
	// MalformedNoHeader is a CDC-shaped event whose payload has no ChangeEventHeader.
	MalformedNoHeader = `{"schema":"emulator-malformed","payload":{"Unexpected":true},"event":{"replayId":%d}}`
	// MalformedPayloadType is an event whose payload is not an object.
	MalformedPayloadType = `{"schema":"emulator-malformed","payload":"not an object","event":{"replayId":%d}}`
)

// InjectMalformedEvent publishes on channel, to its subscribers and into its retention like any
// event, one event whose data is format (MalformedNoHeader, MalformedPayloadType, or any JSON
// with one %d for the replay id). It returns the replay id. This is a fault: Salesforce sends
// well-formed events, but a client must hand over, never drop, one it cannot decode.
func (e *Emulator) InjectMalformedEvent(channel, format string) (int64, error) {
	if !json.Valid(fmt.Appendf(nil, format, 1)) {
		return 0, fmt.Errorf("inject malformed event: the data is not JSON: %w", ErrInvalid)
	}
	return e.stream.Publish([]string{channel}, func(id int64) json.RawMessage {
		return fmt.Appendf(nil, format, id)
	}), nil
}
