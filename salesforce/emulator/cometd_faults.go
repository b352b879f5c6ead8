package emulator

import (
	"fmt"
	"net/http"

	"github.com/omniroute/omniroute/salesforce/emulator/streaming"
)

// Streaming allocations the emulator reports and enforces (Enterprise Edition, facts §4.6).
const (
	// DefaultMaxStreamingClients is DurableStreamingApiConcurrentClients: handshakes beyond it
	// are refused with "403::Organization concurrent user limit exceeded".
	DefaultMaxStreamingClients = 1000
	// reportedDailyDeliveries is DailyDeliveredPlatformEvents.Max in /limits while no
	// allocation is enforced (Options.DailyDeliveredEvents 0).
	reportedDailyDeliveries = 25_000
)

// StreamingFault is one injected CometD failure shaped as Salesforce sends it:
//   - {Kind: "too-busy", Op: "handshake"|"connect"|"subscribe", Count: n}: the next n
//     requests of Op get "503::Server is too busy. Please try your request again later." in
//     ext.sfdc.failureReason (handshake: error "403::Handshake denied"; connect: the session
//     ends, advice reconnect "none");
//   - {Kind: "concurrent-clients", Count: n}: the next n handshakes are refused with
//     failureReason "403::Organization concurrent user limit exceeded";
//   - {Kind: "daily-limit"}: the delivery allocation is used up until ResetDailyDeliveries or
//     ClearFaults: every /meta/connect gets "403::Organization total events daily limit
//     exceeded" with a server-sent /meta/disconnect.
type StreamingFault = streaming.Fault

// InjectStreamingFault arms one CometD fault (see StreamingFault).
func (e *Emulator) InjectStreamingFault(f StreamingFault) error {
	if err := e.stream.InjectFault(f); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

// StreamingLimits are the org's streaming allocations. A nil field is left as it is.
type StreamingLimits struct {
	// DailyDeliveredEvents is the rolling-24-h DailyDeliveredPlatformEvents allocation; 0
	// counts deliveries without enforcing them.
	DailyDeliveredEvents *int64 `json:"dailyDeliveredEvents,omitempty"`
	// MaxClients is DurableStreamingApiConcurrentClients; 0 removes the limit.
	MaxClients *int `json:"maxClients,omitempty"`
}

// SetStreamingLimits changes the streaming allocations at run time.
func (e *Emulator) SetStreamingLimits(l StreamingLimits) error {
	if l.DailyDeliveredEvents != nil {
		if err := e.stream.SetDeliveryLimit(*l.DailyDeliveredEvents); err != nil {
			return fmt.Errorf("%w: %w", err, ErrInvalid)
		}
	}
	if l.MaxClients != nil {
		if err := e.stream.SetMaxClients(*l.MaxClients); err != nil {
			return fmt.Errorf("%w: %w", err, ErrInvalid)
		}
	}
	return nil
}

// ResetDailyDeliveries forgets the counted deliveries and a "daily-limit" fault, as if a day
// had passed.
func (e *Emulator) ResetDailyDeliveries() { e.stream.ResetDeliveries() }

// streamingLimitPairs returns /limits' DailyDeliveredPlatformEvents and
// DurableStreamingApiConcurrentClients as {Max, Remaining}.
func (e *Emulator) streamingLimitPairs() (delivered, clients object) {
	used, limit, exhausted := e.stream.Deliveries()
	if limit == 0 {
		limit = reportedDailyDeliveries
	}
	remaining := max(limit-used, 0)
	if exhausted {
		remaining = 0
	}
	n, maxClients := e.stream.ClientUsage()
	if maxClients == 0 {
		maxClients = max(DefaultMaxStreamingClients, n)
	}
	return object{{"Max", limit}, {"Remaining", remaining}},
		object{{"Max", maxClients}, {"Remaining", max(maxClients-n, 0)}}
}

// applyStreamingAllocations sets the streaming server's allocations from the options:
// MaxStreamingClients 0 is DefaultMaxStreamingClients and negative is no limit;
// DailyDeliveredEvents <= 0 counts without enforcing.
func (e *Emulator) applyStreamingAllocations() {
	maxClients := e.opts.MaxStreamingClients
	switch {
	case maxClients == 0:
		maxClients = DefaultMaxStreamingClients
	case maxClients < 0:
		maxClients = 0
	}
	_ = e.stream.SetMaxClients(maxClients)                             // >= 0: cannot fail
	_ = e.stream.SetDeliveryLimit(max(e.opts.DailyDeliveredEvents, 0)) // >= 0: cannot fail
}

// handleStreamingControl registers the streaming fault endpoints of the control API.
func (e *Emulator) handleStreamingControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /emulator/v1/streaming/faults", okAction(e.InjectStreamingFault))
	mux.HandleFunc("POST /emulator/v1/streaming/limits", okAction(e.SetStreamingLimits))
	mux.HandleFunc("POST /emulator/v1/streaming/limits/reset", func(w http.ResponseWriter, _ *http.Request) {
		e.ResetDailyDeliveries()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET /emulator/v1/streaming/limits", func(w http.ResponseWriter, _ *http.Request) {
		used, limit, exhausted := e.stream.Deliveries()
		n, maxClients := e.stream.ClientUsage()
		writeJSON(w, http.StatusOK, map[string]any{
			"dailyDeliveredEvents": limit, "delivered": used, "exhausted": exhausted,
			"maxClients": maxClients, "clients": n,
		})
	})
}
