// Package connector runs omniroute: it wires the Salesforce client and stream, the routing
// engine and the mapping together, and serves the admin, health and metrics HTTP endpoints.
//
// reload.go holds the mapping Reloader: checksum poll, SIGHUP trigger and POST /-/reload, each
// running read, parse, validate, compile, then an atomic swap, and keeping the previous mapping
// when any step fails.
//
// The connector makes no routing decisions: those belong to the routing package.
package connector
