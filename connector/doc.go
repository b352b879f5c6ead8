// Package connector is where omniroute's daemon joins the Salesforce client and stream, the
// routing engine and the mapping. It makes no routing decisions: those belong to the routing
// package.
//
// Today it holds the mapping Reloader (reload.go): a checksum poll, a SIGHUP trigger and an
// authenticated POST /-/reload, each running read, parse, validate, compile, then an atomic swap,
// and keeping the previous mapping when any step fails. The event loop, the AgentWork writer,
// presence sync, the agent websocket gateway and the admin, health and metrics HTTP server are
// not built yet.
package connector
