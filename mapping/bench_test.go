package mapping_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/omniroute/omniroute/mapping"
)

// bigMapping is a mapping with n plans of 5 queues each, 20 channels and the seed-003 presence.
func bigMapping(n int) []byte {
	var b strings.Builder
	b.WriteString("plans:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: plan-%d\n    queues: [Q%d_a, Q%d_b, Q%d_c, Q%d_d, Q%d_e]\n", i, i, i, i, i, i)
		fmt.Fprintf(&b, "    requiredSkills:\n      - {skill: English, minLevel: 5}\n      - {skill: S%d, minLevel: 2}\n", i%50)
		fmt.Fprintf(&b, "    relaxation:\n      - {after: 2m, skill: English, minLevel: 3}\n")
		if i+1 < n {
			fmt.Fprintf(&b, "    overflow: {plan: plan-%d, after: 5m}\n", i+1)
		}
		b.WriteString("    offerTimeout: 30s\n    wrapUpTimeout: 1m\n")
	}
	b.WriteString("channels:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  - {name: C%d, class: semi-live, weight: 2}\n", i)
	}
	b.WriteString(`capacity:
  default: standard
  profiles:
    - {name: standard, total: 10, perClass: {live: 10, semi-live: 6}}
presence:
  fromSalesforce:
    On_a_call: Away
    Away_from_desk: Away/Break
  toSalesforce:
    Ready: Ready_for_cases
    ReadyOutbound: Away_from_desk
    Busy: On_a_call
    WrapUp: Taking_notes
    Away: Away_from_desk
    ExtendedAway: Away_from_desk
    LoggedOut: Offline
`)
	return []byte(b.String())
}

// BenchmarkParse measures Parse (decode and validate) of a mapping with 10, 100 and 1000 plans.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		data := bigMapping(n)
		b.Run(fmt.Sprintf("plans=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mapping.Parse(data, "big.yaml"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPresence measures one state -> status and one status -> state lookup, and the
// revert decision.
func BenchmarkPresence(b *testing.B) {
	cfg, err := mapping.Parse(bigMapping(1), "p.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p := &cfg.Presence
	b.ReportAllocs()
	for b.Loop() {
		if p.StatusForState(mapping.State{Major: mapping.Away, Minor: "Lunch"}) == "" ||
			p.StateForStatus("Ready_for_chats").Major != mapping.Ready ||
			p.PostWorkStatus(mapping.State{Major: mapping.Ready}, "Ready_for_chats") == "" {
			b.Fatal("unexpected mapping")
		}
	}
}
