// Package emulator is an in-memory Salesforce org for tests, the demo and CI: Salesforce for
// omniroute, served over real HTTP.
//
// It serves the OAuth token endpoint (JWT bearer, client credentials and password grants),
// REST under /services/data/vNN.N/ (versions, SOQL query with nextRecordsUrl paging, sObject
// create/read/update/delete, describe, sObject Collections, limits, Sforce-Limit-Info and the
// daily API allocation), the Streaming API over CometD at /cometd/NN.N (package streaming) with
// Change Data Capture channels, the ExternalRoutingChannel__chn custom channel and PushTopics,
// and the Omni-Channel external-routing behaviour: PendingServiceRouting created for work owned
// by an External Routing queue, AgentWork insert checks, accept, decline, push timeout, agent
// offline, close, transfers and UserServicePresence rows. A control API under /emulator/v1/
// (and the matching Go methods) creates work, moves agents' presence, answers work as the
// agent would, injects faults and reports counters. docs/emulator.md documents the control API
// and every behaviour the emulator chose where Salesforce is silent.
//
// The emulator never imports omniroute's client, connector, routing or mapping packages: it is
// Salesforce, not us. It never logs tokens, passwords or the client secret, and it keeps all
// state in memory (nothing survives Close).
package emulator
