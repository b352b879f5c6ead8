// Package mapping is the model of omniroute's admin-facing YAML file: Salesforce queues to
// interaction plans, service channels to interaction classes and capacity weights, capacity
// profiles, and the two-way presence-status <-> agent-state tables of seed 003.
//
// Parse decodes a file strictly (unknown keys, duplicate keys, wrong types and bad durations are
// errors) and validates it, reporting every problem at once as "file:line:col: yaml.path:
// message". ValidateOrg checks a Config against org metadata.
//
// The presence tables of seed 003 are pure functions of the mapping, each the one
// implementation of its rule: StatusForState (state -> status, with the minor -> major
// fallback), StateForStatus (status -> state: Offline is LoggedOut, an unlisted status Ready)
// and PostWorkStatus (revert to last status, and its exception when the post-call state is not
// Ready). Who applies them is not here: the routing engine owns the agent's state and the
// login, logout and Offline rules (routing.Engine, CommandSetState.Presence); the connector
// owns everything with a clock or I/O, echo suppression included (connector/presence.go).
//
// The package never does I/O, never reads the clock, the environment or the network: callers
// read files (cmd/omniroute, connector) and pass time in. It imports nothing from this module.
package mapping
