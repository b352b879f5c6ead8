package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// AgentWork statuses (salesforce-facts.md 2.2).
const (
	StatusAssigned              = "Assigned"
	StatusOpened                = "Opened"
	StatusDeclined              = "Declined"
	StatusDeclinedOnPushTimeout = "DeclinedOnPushTimeout"
	StatusUnavailable           = "Unavailable"
	StatusClosed                = "Closed"
	StatusCanceled              = "Canceled"
	StatusTransferred           = "Transferred"
)

// WorkRequest creates a work item owned by an external-routing queue.
type WorkRequest struct {
	// Channel is the ServiceChannel DeveloperName; it decides the work item type.
	Channel string `json:"channel"`
	// Queue is the queue (Group) DeveloperName.
	Queue string `json:"queue"`
	// Subject is stored on Case.Subject (other work item types have no subject field).
	Subject string `json:"subject"`
	// PreferredUser is a username; it becomes PendingServiceRouting.PreferredUserId.
	PreferredUser string `json:"preferredUser"`
	// PreferredUserRequired sets IsPreferredUserRequired (and leaves PushTimeout unset).
	PreferredUserRequired bool `json:"preferredUserRequired"`
	// Skills become SkillRequirement records on the PSR.
	Skills []SkillRequest `json:"skills"`
}

// SkillRequest is one required skill; in JSON either "DeveloperName" or
// {"skill":"DeveloperName","level":5,"additional":false}.
type SkillRequest struct {
	Skill      string  `json:"skill"`
	Level      float64 `json:"level"`
	Additional bool    `json:"additional"`
}

// UnmarshalJSON accepts a bare skill name as well as the object form.
func (s *SkillRequest) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*s = SkillRequest{Skill: name}
		return nil
	}
	type plain SkillRequest
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode skill: %w", err)
	}
	*s = SkillRequest(p)
	return nil
}

// WorkResult is what CreateWork returns.
type WorkResult struct {
	WorkItemID string `json:"workItemId"`
	PSRID      string `json:"psrId"`
}

// StatusChange is one step of an AgentWork's status history.
type StatusChange struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// AgentWorkInfo is one AgentWork with its status history.
type AgentWorkInfo struct {
	ID               string         `json:"id"`
	WorkItemID       string         `json:"workItemId"`
	PSRID            string         `json:"psrId,omitempty"`
	UserID           string         `json:"userId"`
	Username         string         `json:"username"`
	ServiceChannelID string         `json:"serviceChannelId"`
	Status           string         `json:"status"`
	History          []StatusChange `json:"history"`
}

// TransferTarget names where to transfer work: exactly one of a queue (DeveloperName), a chat
// button (DeveloperName; its queue), a user (username) or required skills.
type TransferTarget struct {
	Queue  string         `json:"queue,omitempty"`
	Button string         `json:"button,omitempty"`
	User   string         `json:"user,omitempty"`
	Skills []SkillRequest `json:"skills,omitempty"`
}

// TransferResult reports what a transfer created.
type TransferResult struct {
	PSRID       string `json:"psrId,omitempty"`
	AgentWorkID string `json:"agentWorkId,omitempty"`
}

func (e *Emulator) obj(name string) *objectDef {
	o, _ := e.schema.object(name)
	return o
}

// CreateWork creates a work item of the channel's type owned by the queue; an external-routing
// queue gives it a PendingServiceRouting (salesforce-facts.md 1.7).
func (e *Emulator) CreateWork(req WorkRequest) (WorkResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.org.channels[req.Channel]
	if !ok {
		return WorkResult{}, fmt.Errorf("create work: service channel %q: %w", req.Channel, ErrNotFound)
	}
	q, ok := e.org.queues[req.Queue]
	if !ok {
		return WorkResult{}, fmt.Errorf("create work: queue %q: %w", req.Queue, ErrNotFound)
	}
	opts := routeOpts{}
	if req.PreferredUser != "" {
		u, ok := e.org.users[lower(req.PreferredUser)]
		if !ok {
			return WorkResult{}, fmt.Errorf("create work: preferred user %q: %w", req.PreferredUser, ErrNotFound)
		}
		opts.preferred = u.id
		opts.required = req.PreferredUserRequired
	} else if req.PreferredUserRequired {
		return WorkResult{}, fmt.Errorf("create work: preferredUserRequired needs preferredUser: %w", ErrInvalid)
	}
	skills, err := e.skillReqs(req.Skills)
	if err != nil {
		return WorkResult{}, fmt.Errorf("create work: %w", err)
	}
	opts.skills = skills
	t := e.begin("", "")
	wi := e.newWorkItem(t, ch.str("RelatedEntity"), q.id, req.Subject)
	psr := e.routeToQueue(t, wi, q, opts)
	e.commit(t)
	res := WorkResult{WorkItemID: wi.id}
	if psr != nil {
		res.PSRID = psr.id
	}
	return res, nil
}

// newWorkItem creates a work item of typ owned by ownerID, as a customer's request creates
// it. Callers hold e.mu.
func (e *Emulator) newWorkItem(t *tx, typ, ownerID, subject string) *record {
	vals := map[string]any{"OwnerId": ownerID}
	switch typ {
	case "Case":
		vals["Origin"] = "Web"
		if subject != "" {
			vals["Subject"] = subject
		}
	case "LiveChatTranscript":
		vals["Status"] = "Waiting"
		vals["RequestTime"] = t.now
		vals["ChatKey"] = randomHex(16)
	case "MessagingSession":
		vals["Status"] = "Waiting"
		vals["ChannelType"] = "EmbeddedMessaging"
		vals["Origin"] = "InboundInitiated"
		vals["StartTime"] = t.now
	case "VoiceCall":
		vals["CallType"] = "Inbound"
		vals["VendorCallKey"] = randomHex(16)
		vals["CallStartDateTime"] = t.now
	}
	return t.create(e.obj(typ), vals)
}

type skillReq struct {
	id         string
	level      float64
	additional bool
}

// skillReqs resolves skill requests by DeveloperName. Callers hold e.mu.
func (e *Emulator) skillReqs(in []SkillRequest) ([]skillReq, error) {
	var out []skillReq
	for _, s := range in {
		sk, ok := e.org.skills[s.Skill]
		if !ok {
			return nil, fmt.Errorf("skill %q: %w", s.Skill, ErrNotFound)
		}
		out = append(out, skillReq{id: sk.id, level: s.Level, additional: s.Additional})
	}
	return out, nil
}

type routeOpts struct {
	transfer  bool
	preferred string
	required  bool
	requester string
	skills    []skillReq
	// noQueue leaves GroupId and QueueId empty: a transfer to skills, routed on skills alone.
	noQueue bool
}

// channelFor returns the ServiceChannel whose RelatedEntity is the work item's type.
func (e *Emulator) channelFor(typ string) *record {
	for _, c := range e.org.channels {
		if c.str("RelatedEntity") == typ {
			return c
		}
	}
	var out *record
	e.st.each("ServiceChannel", func(r *record) bool {
		if r.str("RelatedEntity") == typ {
			out = r
			return false
		}
		return true
	})
	return out
}

// routeToQueue creates the PSR for work now owned by queue, when the queue's routing
// configuration is External Routing. Callers hold e.mu.
func (e *Emulator) routeToQueue(t *tx, wi, queue *record, o routeOpts) *record {
	rcID := queue.str("QueueRoutingConfigId")
	rc, ok := e.st.get(rcID)
	if !ok || rc.str("RoutingModel") != "ExternalRouting" {
		return nil
	}
	return e.createPSR(t, wi, queue, rc, o)
}

// createPSR creates the PSR for wi under routing configuration rc (and queue, unless
// o.noQueue). Callers hold e.mu.
func (e *Emulator) createPSR(t *tx, wi, queue, rc *record, o routeOpts) *record {
	ch := e.channelFor(wi.obj.Name)
	if ch == nil {
		return nil
	}
	vals := map[string]any{
		"RoutingModel": "ExternalRouting", "RoutingType": "QueueBased", "IsReadyForRouting": true,
		"IsPushed": false, "IsPushAttempted": false, "IsTransfer": o.transfer, "IsPreferredUserRequired": false,
		"ServiceChannelId": ch.id, "WorkItemId": wi.id,
		"RoutingPriority": rc.int("RoutingPriority"),
	}
	if !o.noQueue && queue != nil {
		vals["GroupId"], vals["QueueId"] = queue.id, queue.id
	}

	if w, ok := rc.float("CapacityWeight"); ok {
		vals["CapacityWeight"] = w
	} else if p, ok := rc.float("CapacityPercentage"); ok {
		vals["CapacityPercentage"] = p
	} else {
		vals["CapacityWeight"] = e.org.chanWeight[ch.id]
	}
	if pt := rc.int("PushTimeout"); pt > 0 && !o.required {
		vals["PushTimeout"] = pt
	}
	if o.preferred != "" {
		vals["PreferredUserId"] = o.preferred
		vals["IsPreferredUserRequired"] = o.required
	}
	if o.requester != "" {
		vals["TransferRequesterId"] = o.requester
	}
	if len(o.skills) > 0 {
		vals["RoutingType"] = "SkillsBased"
	}
	psr := t.create(e.obj("PendingServiceRouting"), vals)
	for _, s := range o.skills {
		t.create(e.obj("SkillRequirement"), map[string]any{
			"RelatedRecordId": psr.id, "SkillId": s.id, "SkillLevel": s.level, "IsAdditionalSkill": s.additional,
		})
	}
	e.psrByWork[wi.id] = psr.id
	return psr
}

// workFailure is an AgentWork insert refused by an Omni-Channel rule (emulator wording; see
// docs/emulator.md).
func workFailure(msg string, fields ...string) *restError {
	return errf(http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", msg, fields...)
}

// prepareAgentWork checks an AgentWork insert against the PSR, the user's presence and
// capacity and fills the system fields. vals are typed and reference-checked. Callers hold e.mu.
func (e *Emulator) prepareAgentWork(t *tx, vals map[string]any) (*record, *restError) {
	user, _ := e.st.get(vals["UserId"].(string))
	ch, _ := e.st.get(vals["ServiceChannelId"].(string))
	wi, _ := e.st.get(vals["WorkItemId"].(string))
	if user == nil || ch == nil || wi == nil {
		return nil, errf(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if ch.str("RelatedEntity") != wi.obj.Name {
		return nil, workFailure("The work item's object doesn't match the service channel's related entity.", "WorkItemId")
	}
	var psr *record
	if id, ok := vals["PendingServiceRoutingId"].(string); ok {
		psr, _ = e.st.get(id)
		if psr == nil {
			return nil, errf(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", "PendingServiceRoutingId")
		}
		if psr.str("WorkItemId") != wi.id {
			return nil, workFailure("The PendingServiceRouting is for a different work item.", "PendingServiceRoutingId")
		}
	} else if id, ok := e.psrByWork[wi.id]; ok {
		psr, _ = e.st.get(id)
	}
	if psr != nil {
		if psr.str("ServiceChannelId") != ch.id {
			return nil, workFailure("The service channel doesn't match the PendingServiceRouting's service channel.", "ServiceChannelId")
		}
		if psr.boolean("IsPushed") || (t.batch != nil && t.batch.psrs[psr.id]) {
			return nil, workFailure("The work item is already pushed to an agent.", "PendingServiceRoutingId")
		}
	}
	if rerr := e.agentCanTake(user, ch); rerr != nil {
		return nil, rerr
	}
	// The work's size is never filled in from the PSR: a router that does not copy the PSR's
	// CapacityWeight (or CapacityPercentage) is refused (docs/emulator.md, "AgentWork size").
	_, hasW := vals["CapacityWeight"].(float64)
	_, hasP := vals["CapacityPercentage"].(float64)
	if !hasW && !hasP && psr != nil {
		for _, f := range []string{"CapacityWeight", "CapacityPercentage"} {
			if _, ok := psr.float(f); ok {
				return nil, errf(http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+f+"]", f)
			}
		}
	}
	need := e.awLoad(vals, user.id)
	if skip, _ := vals["ShouldSkipCapacityCheck"].(bool); !skip {
		load := e.userLoad(user.id)
		if t.batch != nil {
			load += t.batch.load[user.id]
		}
		if load+need > float64(e.capacity[user.id])+1e-9 {
			return nil, workFailure("The agent doesn't have enough capacity for this work.", "UserId")
		}
	}
	if t.batch != nil {
		t.batch.load[user.id] += need
		if psr != nil {
			t.batch.psrs[psr.id] = true
		}
	}
	vals["Status"] = StatusAssigned
	vals["AssignedDateTime"] = t.now
	vals["OwnerId"] = user.id
	vals["CapacityModel"] = ch.str("CapacityModel")
	if psr != nil {
		vals["PendingServiceRoutingId"] = psr.id
		vals["RequestDateTime"] = psr.time("CreatedDate")
		if c, ok := psr.vals["CustomRequestedDateTime"]; ok {
			vals["RequestDateTime"] = c
		}
		for _, f := range []string{"RoutingModel", "RoutingType", "RoutingPriority", "SecondaryRoutingPriority", "PushTimeout", "PreferredUserId", "IsPreferredUserRequired"} {
			if v, ok := psr.vals[f]; ok {
				vals[f] = v
			}
		}
		vals["OriginalGroupId"] = psr.vals["GroupId"]
		vals["OriginalQueueId"] = psr.vals["GroupId"]
	} else {
		vals["RequestDateTime"] = t.now
	}
	return psr, nil
}

// agentCanTake checks that user is active and online in a presence status that includes
// channel ch. Callers hold e.mu.
func (e *Emulator) agentCanTake(user, ch *record) *restError {
	if !user.boolean("IsActive") {
		return errf(http.StatusBadRequest, "INACTIVE_OWNER_OR_USER", "operation performed with inactive user", "UserId")
	}
	uspID, online := e.currentUSP[user.id]
	if !online {
		return workFailure("The agent isn't online in Omni-Channel.", "UserId")
	}
	usp, _ := e.st.get(uspID)
	if usp == nil || !e.org.statusChans[usp.str("ServicePresenceStatusId")][ch.id] {
		return workFailure("The agent's presence status isn't associated with the work's service channel.", "UserId")
	}
	return nil
}

// awLoad is the capacity an AgentWork (or its insert values) takes from its agent: its
// CapacityWeight, else its CapacityPercentage of the agent's capacity, else the channel's
// default weight.
func (e *Emulator) awLoad(vals map[string]any, userID string) float64 {
	if w, ok := vals["CapacityWeight"].(float64); ok {
		return w
	}
	if p, ok := vals["CapacityPercentage"].(float64); ok {
		return p / 100 * float64(e.capacity[userID])
	}
	// Neither size (work without a PSR that carries one): the channel's default weight.
	ch, _ := vals["ServiceChannelId"].(string)
	return e.org.chanWeight[ch]
}

// userLoad is the capacity the user's Assigned and Opened work takes. It also drops finished
// work from the user's index, which only needs open work.
func (e *Emulator) userLoad(userID string) float64 {
	var sum float64
	open := e.awByUser[userID][:0]
	for _, id := range e.awByUser[userID] {
		aw, ok := e.st.get(id)
		if !ok {
			continue
		}
		if s := aw.str("Status"); s == StatusAssigned || s == StatusOpened {
			sum += e.awLoad(aw.vals, userID)
			open = append(open, id)
		}
	}
	e.awByUser[userID] = open
	return sum
}

// afterAgentWorkInsert marks the PSR pushed, indexes the work and arms the push timeout and
// the simulated agent. Callers hold e.mu.
func (e *Emulator) afterAgentWorkInsert(t *tx, aw, psr *record) {
	wi, user := aw.str("WorkItemId"), aw.str("UserId")
	e.awByWork[wi] = append(e.awByWork[wi], aw.id)
	e.awByUser[user] = append(e.awByUser[user], aw.id)
	e.history[aw.id] = append(e.history[aw.id], StatusChange{Status: StatusAssigned, At: t.now})
	e.trackLoad(t, user, false)
	if psr != nil {
		t.update(psr, map[string]any{"IsPushed": true, "IsPushAttempted": true})
		if pt := psr.int("PushTimeout"); pt > 0 {
			e.addTimer(timer{at: t.now.Add(time.Duration(pt) * time.Second), kind: timerPushTimeout, aw: aw.id})
		}
	}
	e.armAuto(t.now, aw)
}

func (e *Emulator) setAWStatus(t *tx, aw *record, status string, extra map[string]any) {
	vals := map[string]any{"Status": status}
	for k, v := range extra {
		vals[k] = v
	}
	t.update(aw, vals)
	// Accepting and closing work refresh the agent's presence figures.
	e.trackLoad(t, aw.str("UserId"), status == StatusOpened || status == StatusClosed)
	e.history[aw.id] = append(e.history[aw.id], StatusChange{Status: status, At: t.now})
}

func (e *Emulator) agentWork(id string) (*record, error) {
	aw, ok := e.st.get(id)
	if !ok || aw.obj.Name != "AgentWork" {
		return nil, fmt.Errorf("agent work %s: %w", id, ErrNotFound)
	}
	return aw, nil
}

func (e *Emulator) psrOf(aw *record) *record {
	if id := aw.str("PendingServiceRoutingId"); id != "" {
		if p, ok := e.st.get(id); ok {
			return p
		}
	}
	return nil
}

// AcceptWork is the agent accepting Assigned work: AgentWork Opened, PSR deleted, the work
// item owned by the agent.
func (e *Emulator) AcceptWork(awID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	aw, err := e.agentWork(awID)
	if err != nil {
		return err
	}
	return e.accept(aw)
}

func (e *Emulator) accept(aw *record) error {
	if s := aw.str("Status"); s != StatusAssigned {
		return fmt.Errorf("accept agent work %s in status %s: %w", aw.id, s, ErrConflict)
	}
	user := aw.str("UserId")
	t := e.begin(user, "")
	extra := map[string]any{"AcceptDateTime": t.now}
	if req := aw.time("RequestDateTime"); !req.IsZero() {
		extra["SpeedToAnswer"] = int64(math.Round(t.now.Sub(req).Seconds()))
	}
	e.setAWStatus(t, aw, StatusOpened, extra)
	wiID := aw.str("WorkItemId")
	if psr := e.psrOf(aw); psr != nil {
		t.remove(psr)
		if e.psrByWork[wiID] == psr.id {
			delete(e.psrByWork, wiID)
		}
	}
	// A second AgentWork from an agent-to-agent transfer finishes the first one.
	for _, id := range e.awByWork[wiID] {
		if other, ok := e.st.get(id); ok && id != aw.id && other.str("Status") == StatusOpened {
			e.setAWStatus(t, other, StatusTransferred, nil)
		}
	}
	if wi, ok := e.st.get(wiID); ok {
		vals := map[string]any{"OwnerId": user}
		switch wi.obj.Name {
		case "LiveChatTranscript":
			vals["Status"] = "InProgress"
			vals["StartTime"] = t.now
		case "MessagingSession":
			vals["Status"] = "Active"
			vals["AcceptTime"] = t.now
		}
		t.update(wi, vals)
	}
	e.armAutoClose(t.now, aw)
	e.commit(t)
	return nil
}

// DeclineWork is the agent declining Assigned work: AgentWork Declined, PSR back to
// IsPushed=false with LastDeclinedAgentSession.
func (e *Emulator) DeclineWork(awID, reason string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	aw, err := e.agentWork(awID)
	if err != nil {
		return err
	}
	return e.decline(aw, StatusDeclined, reason)
}

func (e *Emulator) decline(aw *record, status, reason string) error {
	if s := aw.str("Status"); s != StatusAssigned {
		return fmt.Errorf("decline agent work %s in status %s: %w", aw.id, s, ErrConflict)
	}
	user := aw.str("UserId")
	t := e.begin(user, "")
	extra := map[string]any{}
	if status == StatusDeclinedOnPushTimeout {
		extra["PushTimeoutDateTime"] = t.now
	} else {
		extra["DeclineDateTime"] = t.now
		if reason != "" {
			extra["DeclineReason"] = reason
		}
	}
	e.setAWStatus(t, aw, status, extra)
	if psr := e.psrOf(aw); psr != nil {
		vals := map[string]any{"IsPushed": false}
		if sess := e.sessions[user]; sess != "" {
			vals["LastDeclinedAgentSession"] = sess
		}
		t.update(psr, vals)
	}
	e.commit(t)
	return nil
}

// CloseWork is the agent closing Opened work: AgentWork Closed.
func (e *Emulator) CloseWork(awID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	aw, err := e.agentWork(awID)
	if err != nil {
		return err
	}
	return e.closeWork(aw)
}

func (e *Emulator) closeWork(aw *record) error {
	if s := aw.str("Status"); s != StatusOpened {
		return fmt.Errorf("close agent work %s in status %s: %w", aw.id, s, ErrConflict)
	}
	t := e.begin(aw.str("UserId"), "")
	extra := map[string]any{"CloseDateTime": t.now}
	if acc := aw.time("AcceptDateTime"); !acc.IsZero() {
		extra["HandleTime"] = int64(math.Round(t.now.Sub(acc).Seconds()))
	}
	e.setAWStatus(t, aw, StatusClosed, extra)
	if wi, ok := e.st.get(aw.str("WorkItemId")); ok && !e.hasOpenWork(wi.id) {
		switch wi.obj.Name {
		case "LiveChatTranscript":
			t.update(wi, map[string]any{"Status": "Completed", "EndTime": t.now})
		case "MessagingSession":
			t.update(wi, map[string]any{"Status": "Ended", "EndTime": t.now})
		case "VoiceCall":
			t.update(wi, map[string]any{"CallEndDateTime": t.now})
		}
	}
	e.commit(t)
	return nil
}

func (e *Emulator) hasOpenWork(wiID string) bool {
	for _, id := range e.awByWork[wiID] {
		if aw, ok := e.st.get(id); ok {
			if s := aw.str("Status"); s == StatusAssigned || s == StatusOpened {
				return true
			}
		}
	}
	return false
}

// CancelWork is the customer ending the conversation. While the work waits (PSR, no
// AgentWork) or is offered (Assigned AgentWork), the PSR is deleted, Assigned AgentWork turns
// Canceled, and a chat becomes Missed, a messaging session Ended (with EndTime). Once an
// agent has accepted it, routing is over: the AgentWork stays Opened until the agent closes
// it, and a chat becomes Completed, a messaging session Ended.
func (e *Emulator) CancelWork(workItemID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	wi, ok := e.st.get(workItemID)
	if !ok || !slices.Contains(workItemTypes, wi.obj.Name) {
		return fmt.Errorf("cancel work %s: %w", workItemID, ErrNotFound)
	}
	t := e.begin("", "")
	accepted := false
	for _, id := range e.awByWork[wi.id] {
		if aw, ok := e.st.get(id); ok && aw.str("Status") == StatusOpened {
			accepted = true
		}
	}
	if !accepted {
		e.releaseRouting(t, wi.id, "")
	}
	switch wi.obj.Name {
	case "LiveChatTranscript":
		status := "Missed"
		if accepted {
			status = "Completed"
		}
		t.update(wi, map[string]any{"Status": status, "EndTime": t.now})
	case "MessagingSession":
		t.update(wi, map[string]any{"Status": "Ended", "EndTime": t.now})
	}
	e.commit(t)
	return nil
}

// releaseRouting deletes the work item's open PSR, cancels its Assigned AgentWork and marks
// Opened AgentWork of users other than keepUser Transferred. Callers hold e.mu.
func (e *Emulator) releaseRouting(t *tx, wiID, keepUser string) (hadWork bool) {
	for _, id := range e.awByWork[wiID] {
		aw, ok := e.st.get(id)
		if !ok {
			continue
		}
		hadWork = true
		switch aw.str("Status") {
		case StatusAssigned:
			e.setAWStatus(t, aw, StatusCanceled, map[string]any{"CancelDateTime": t.now})
		case StatusOpened:
			if aw.str("UserId") != keepUser {
				e.setAWStatus(t, aw, StatusTransferred, nil)
			}
		}
	}
	if id, ok := e.psrByWork[wiID]; ok {
		if psr, ok := e.st.get(id); ok {
			t.remove(psr)
		}
		delete(e.psrByWork, wiID)
	}
	return hadWork
}

// ownerChanged applies Omni-Channel routing after a work item's owner changed through the
// API: to an external-routing queue it creates a PSR (IsTransfer when the work had been
// assigned before); to a user it ends routing. Callers hold e.mu.
func (e *Emulator) ownerChanged(t *tx, wi *record, newOwner string) {
	target, ok := e.st.get(newOwner)
	if !ok {
		return
	}
	switch target.obj.Name {
	case "Group":
		had := e.releaseRouting(t, wi.id, "")
		e.routeToQueue(t, wi, target, routeOpts{transfer: had})
	case "User":
		e.releaseRouting(t, wi.id, target.id)
	}
}

// AgentWorks returns every AgentWork with its status history, oldest first.
func (e *Emulator) AgentWorks() []AgentWorkInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []AgentWorkInfo
	add := func(aw *record) {
		uname := ""
		if u, ok := e.st.get(aw.str("UserId")); ok {
			uname = u.str("Username")
		}
		out = append(out, AgentWorkInfo{
			ID: aw.id, WorkItemID: aw.str("WorkItemId"), PSRID: aw.str("PendingServiceRoutingId"),
			UserID: aw.str("UserId"), Username: uname, ServiceChannelID: aw.str("ServiceChannelId"),
			Status: aw.str("Status"), History: slices.Clone(e.history[aw.id]),
		})
	}
	for _, aw := range e.st.byType["AgentWork"] {
		add(aw)
	}
	slices.SortStableFunc(out, func(a, b AgentWorkInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// SetPresence moves an agent to a presence status (ServicePresenceStatus DeveloperName), or
// logs them out with "Offline": the current UserServicePresence row is closed (UPDATE
// IsCurrentState=false) and, unless logging out, a new current row is created.
func (e *Emulator) SetPresence(username, status string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.org.users[lower(username)]
	if !ok {
		return fmt.Errorf("set presence of %q: user: %w", username, ErrNotFound)
	}
	var st *record
	if status != "Offline" {
		st, ok = e.org.statuses[status]
		if !ok {
			return fmt.Errorf("set presence of %q: status %q: %w", username, status, ErrNotFound)
		}
	}
	t := e.begin(u.id, "")
	if cur, ok := e.currentUSP[u.id]; ok {
		old, _ := e.st.get(cur)
		if old != nil {
			if st != nil && old.str("ServicePresenceStatusId") == st.id {
				return nil
			}
			start := old.time("StatusStartDate")
			t.update(old, map[string]any{
				"IsCurrentState": false, "StatusEndDate": t.now,
				"StatusDuration": int64(math.Round(t.now.Sub(start).Seconds())),
			})
		}
		delete(e.currentUSP, u.id)
	} else if st == nil {
		return nil // already offline
	}
	delete(e.pstats, u.id)
	if st == nil {
		delete(e.sessions, u.id)
		for _, id := range e.awByUser[u.id] {
			aw, ok := e.st.get(id)
			if !ok || aw.str("Status") != StatusAssigned {
				continue
			}
			e.setAWStatus(t, aw, StatusUnavailable, nil)
			if psr := e.psrOf(aw); psr != nil {
				t.update(psr, map[string]any{"IsPushed": false})
			}
		}
		e.commit(t)
		return nil
	}
	if _, ok := e.sessions[u.id]; !ok {
		e.st.idSeq++
		e.sessions[u.id] = makeID("0Lx", e.st.idSeq)
	}
	usp := t.create(e.obj("UserServicePresence"), map[string]any{
		"UserId": u.id, "ServicePresenceStatusId": st.id, "IsCurrentState": true,
		"IsAway": len(e.org.statusChans[st.id]) == 0, "StatusStartDate": t.now,
		"ConfiguredCapacity": int64(e.capacity[u.id]), "AverageCapacity": float64(0),
		"IdleDuration": int64(0), "AtCapacityDuration": int64(0), "OwnerId": u.id,
	})
	e.currentUSP[u.id] = usp.id
	e.startPresenceStats(u.id, usp.id, t.now)
	e.commit(t)
	return nil
}

// AssignWork inserts an AgentWork for the PSR's work item and the user, as a routing partner
// does over REST. It returns the AgentWork id.
func (e *Emulator) AssignWork(psrID, username string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	psr, ok := e.st.get(psrID)
	if !ok || psr.obj.Name != "PendingServiceRouting" {
		return "", fmt.Errorf("assign work %s: %w", psrID, ErrNotFound)
	}
	u, ok := e.org.users[lower(username)]
	if !ok {
		return "", fmt.Errorf("assign work to %q: %w", username, ErrNotFound)
	}
	t := e.begin("", "")
	vals := map[string]any{
		"UserId": u.id, "WorkItemId": psr.str("WorkItemId"), "ServiceChannelId": psr.str("ServiceChannelId"),
		"PendingServiceRoutingId": psr.id,
	}
	// Copy the work's size from the PSR, as the routing docs tell a partner to.
	for _, f := range []string{"CapacityWeight", "CapacityPercentage"} {
		if v, ok := psr.float(f); ok {
			vals[f] = v
		}
	}
	p, rerr := e.prepareAgentWork(t, vals)
	if rerr != nil {
		return "", rerr
	}
	aw := t.create(e.obj("AgentWork"), vals)
	e.afterAgentWorkInsert(t, aw, p)
	e.commit(t)
	return aw.id, nil
}
