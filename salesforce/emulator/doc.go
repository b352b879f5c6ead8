// Package emulator is an in-memory Salesforce org for tests, the demo and CI: Salesforce for
// omniroute, served over real HTTP.
//
// It serves the OAuth token endpoint (JWT bearer, client credentials and password grants), the
// identity URL and /services/oauth2/userinfo,
// REST under /services/data/vNN.N/ (versions, SOQL query with nextRecordsUrl paging, sObject
// create/read/update/delete, describe, sObject Collections, limits, Sforce-Limit-Info and the
// daily API allocation, queryAll with deleted rows), the Streaming API over CometD at
// /cometd/NN.N (package streaming) with Change Data Capture channels, the
// ExternalRoutingChannel__chn custom channel (filtered and auto-enriched, single-record events)
// and PushTopics,
// and the Omni-Channel external-routing behaviour: PendingServiceRouting created for work owned
// by an External Routing queue, AgentWork insert checks, accept, decline, push timeout, agent
// offline, close, transfers and UserServicePresence rows with their capacity figures. A control
// API under /emulator/v1/ (and the matching Go methods) creates work, routes it natively,
// transfers it, changes owners, moves agents' presence, answers work as the agent would, ends it
// as the customer, adds noise updates, injects faults (org and gateway HTTP failures, bodies
// cut mid-way, latency), and reports counters and the full history of Omni-Channel rows. docs/emulator.md documents the control API
// and every behaviour the emulator chose where Salesforce is silent.
//
// The emulator never imports omniroute's client, connector, routing or mapping packages: it is
// Salesforce, not us. It never logs tokens, passwords or the client secret, and it keeps all
// state in memory (nothing survives Close).
package emulator
