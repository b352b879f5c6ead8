// Package connector is omniroute's daemon: it joins the Salesforce client and stream, the
// mapping and the routing engine. It makes no routing decision: those belong to the routing
// package. The Connector type documents the loop.
//
// What it holds today:
//
//   - config.go: Config, read from OMNIROUTE_* variables with envconfig; Validate reports every
//     problem at once, each naming its variable; Secret values never print.
//   - org.go: the token source and REST client built from Config, the org metadata read
//     (ReadOrg) and the mapping's check against it (CheckOrg), shared with `omniroute mapping`.
//   - reload.go: the mapping Reloader (checksum poll on one ticker, SIGHUP, POST /-/reload):
//     read, parse, validate, check against the org, compile, then hand the newest
//     routing.Table to the router through Updates; a failed step keeps the previous mapping.
//   - http.go: the one HTTP server: open /metrics, /healthz (loops' heartbeats) and /readyz
//     (named conditions), and the admin API behind OMNIROUTE_ADMIN_TOKEN; JSON errors.
//   - translate.go: pure translation of PSR and AgentWork change events and PSR rows into
//     routing Events (Translate, Names.Work), with what the router knows passed in (Known) and
//     what must be read first passed back (Change); omniroute's own changeOrigin is recognised
//     (IsOwn). Presence events are not translated yet.
//   - checkpoint.go: the durable replay checkpoint store.
//   - connector.go: New and Run, the oklog/run group of the HTTP server, the reloader and the
//     core, which logs in, reads the org and checks the mapping at start-up.
//
// Not built yet: the stream subscription, translation of presence events, reconcile, the router that
// drives routing.Engine, the AgentWork writer, presence sync and the agent gateway. Until they
// exist /readyz stays false ("stream not subscribed", "reconcile not applied").
//
// What it never does: decide routing; log, return or expose a secret (tokens, client secret,
// password, admin token); let two goroutines share the engine. Metrics are registered by each
// part with promauto.With on a registerer the daemon has already prefixed with omniroute_.
package connector
