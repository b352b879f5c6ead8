package emulator

import (
	"fmt"
	"slices"
)

// TransferWork transfers Opened work (seed 004): to a queue directly or through a chat button
// (a new PSR with IsTransfer when the queue uses external routing), to a user (a second
// AgentWork; the first turns Transferred when the second is accepted), or to skills (a new
// PSR with IsTransfer, RoutingType SkillsBased and SkillRequirements, and no queue). The
// first AgentWork turns Transferred at once for a queue, button or skill transfer.
func (e *Emulator) TransferWork(awID string, to TransferTarget) (TransferResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	aw, err := e.agentWork(awID)
	if err != nil {
		return TransferResult{}, err
	}
	if s := aw.str("Status"); s != StatusOpened {
		return TransferResult{}, fmt.Errorf("transfer agent work %s in status %s: %w", awID, s, ErrConflict)
	}
	wi, ok := e.st.get(aw.str("WorkItemId"))
	if !ok {
		return TransferResult{}, fmt.Errorf("transfer agent work %s: work item: %w", awID, ErrNotFound)
	}
	n := 0
	for _, set := range []bool{to.Queue != "", to.Button != "", to.User != "", len(to.Skills) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return TransferResult{}, fmt.Errorf("transfer: give exactly one of queue, button, user and skills: %w", ErrInvalid)
	}
	from := aw.str("UserId")
	switch {
	case to.User != "":
		return e.transferToUser(aw, wi, from, to.User)
	case len(to.Skills) > 0:
		return e.transferToSkills(aw, wi, from, to.Skills)
	}
	name := to.Queue
	if to.Button != "" {
		q, ok := e.org.buttons[to.Button]
		if !ok {
			return TransferResult{}, fmt.Errorf("transfer to chat button %q: %w", to.Button, ErrNotFound)
		}
		if wi.obj.Name != "LiveChatTranscript" {
			return TransferResult{}, fmt.Errorf("transfer %s through a chat button: only chats: %w", wi.obj.Name, ErrInvalid)
		}
		name = q
	}
	q, ok := e.org.queues[name]
	if !ok {
		return TransferResult{}, fmt.Errorf("transfer to queue %q: %w", name, ErrNotFound)
	}
	t := e.begin(from, "")
	e.setAWStatus(t, aw, StatusTransferred, nil)
	t.update(wi, map[string]any{"OwnerId": q.id})
	psr := e.routeToQueue(t, wi, q, routeOpts{transfer: true, requester: from})
	e.commit(t)
	if psr == nil {
		return TransferResult{}, nil
	}
	return TransferResult{PSRID: psr.id}, nil
}

func (e *Emulator) transferToUser(aw, wi *record, from, username string) (TransferResult, error) {
	u, ok := e.org.users[lower(username)]
	if !ok {
		return TransferResult{}, fmt.Errorf("transfer to user %q: %w", username, ErrNotFound)
	}
	t := e.begin(from, "")
	vals := map[string]any{
		"UserId": u.id, "WorkItemId": wi.id, "ServiceChannelId": aw.str("ServiceChannelId"), "TransferRequesterId": from,
	}
	if w, ok := aw.float("CapacityWeight"); ok {
		vals["CapacityWeight"] = w
	}
	if _, rerr := e.prepareAgentWork(t, vals); rerr != nil {
		return TransferResult{}, fmt.Errorf("transfer to user %q: %s: %w", username, rerr.Errs[0].Message, ErrConflict)
	}
	second := t.create(e.obj("AgentWork"), vals)
	e.afterAgentWorkInsert(t, second, nil)
	t.update(wi, map[string]any{"OwnerId": u.id})
	e.commit(t)
	return TransferResult{AgentWorkID: second.id}, nil
}

// transferToSkills creates a skills-based PSR without a queue, under the routing
// configuration of the queue the work came from (the org's first external-routing queue when
// it came from none). The work item keeps its owner until an agent accepts.
func (e *Emulator) transferToSkills(aw, wi *record, from string, req []SkillRequest) (TransferResult, error) {
	skills, err := e.skillReqs(req)
	if err != nil {
		return TransferResult{}, fmt.Errorf("transfer to skills: %w", err)
	}
	q, _ := e.st.get(aw.str("OriginalQueueId"))
	if q == nil {
		for _, sq := range e.opts.Seed.Queues {
			if c := e.org.routingCfgs[sq.RoutingConfig]; c != nil && c.str("RoutingModel") == "ExternalRouting" {
				q = e.org.queues[sq.DeveloperName]
				break
			}
		}
	}
	if q == nil {
		return TransferResult{}, fmt.Errorf("transfer to skills: no external-routing configuration: %w", ErrConflict)
	}
	rc, ok := e.st.get(q.str("QueueRoutingConfigId"))
	if !ok {
		return TransferResult{}, fmt.Errorf("transfer to skills: routing configuration: %w", ErrNotFound)
	}
	t := e.begin(from, "")
	e.setAWStatus(t, aw, StatusTransferred, nil)
	psr := e.createPSR(t, wi, nil, rc, routeOpts{transfer: true, requester: from, skills: skills, noQueue: true})
	e.commit(t)
	if psr == nil {
		return TransferResult{}, fmt.Errorf("transfer to skills: no service channel for %s: %w", wi.obj.Name, ErrConflict)
	}
	return TransferResult{PSRID: psr.id}, nil
}

// OwnerTarget is a work item's new owner: a user (username) or a queue (DeveloperName).
type OwnerTarget struct {
	User  string `json:"user,omitempty"`
	Queue string `json:"queue,omitempty"`
}

// ChangeOwner changes a work item's owner as an agent does in the UI (seed 004 for cases):
// to an external-routing queue it creates a PSR (IsTransfer when the work had AgentWork); to a
// user it ends routing and gives the user no AgentWork (the new owner gets no Omni-Channel
// item). It is the REST PATCH of OwnerId, made by the integration user.
func (e *Emulator) ChangeOwner(workItemID string, to OwnerTarget) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	wi, ok := e.st.get(workItemID)
	if !ok || !slices.Contains(workItemTypes, wi.obj.Name) {
		return fmt.Errorf("change owner of %s: %w", workItemID, ErrNotFound)
	}
	var owner *record
	switch {
	case to.User != "" && to.Queue == "":
		owner, ok = e.org.users[lower(to.User)]
	case to.Queue != "" && to.User == "":
		owner, ok = e.org.queues[to.Queue]
	default:
		return fmt.Errorf("change owner of %s: give exactly one of user and queue: %w", workItemID, ErrInvalid)
	}
	if !ok {
		return fmt.Errorf("change owner of %s to %q%q: %w", workItemID, to.User, to.Queue, ErrNotFound)
	}
	if wi.str("OwnerId") == owner.id {
		return nil
	}
	t := e.begin("", "")
	t.update(wi, map[string]any{"OwnerId": owner.id})
	e.ownerChanged(t, wi, owner.id)
	e.commit(t)
	return nil
}

// NativeRequest asks for work routed natively by Omni-Channel to one agent, outside external
// routing (seed 003, Busy Inbound).
type NativeRequest struct {
	// Channel is the ServiceChannel DeveloperName (default Chat).
	Channel string `json:"channel"`
	// User is the agent's username.
	User string `json:"user"`
	// Subject is stored on Case.Subject.
	Subject string `json:"subject"`
}

// NativeResult is what NativeRoute created.
type NativeResult struct {
	WorkItemID  string `json:"workItemId"`
	PSRID       string `json:"psrId"`
	AgentWorkID string `json:"agentWorkId"`
}

// NativeRoute creates a work item that Omni-Channel routes natively to the agent: a PSR with
// RoutingModel MostAvailable (no queue) and an Assigned AgentWork with the same routing
// model, taking the channel's capacity weight. The external-routing filters (RoutingModel =
// 'ExternalRouting') keep both off /data/ExternalRoutingChannel__chn. Accept, decline and
// close it through the agentwork actions. The agent's presence, channel and capacity are
// checked as for any AgentWork.
func (e *Emulator) NativeRoute(req NativeRequest) (NativeResult, error) {
	if req.Channel == "" {
		req.Channel = "Chat"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.org.channels[req.Channel]
	if !ok {
		return NativeResult{}, fmt.Errorf("route natively: service channel %q: %w", req.Channel, ErrNotFound)
	}
	u, ok := e.org.users[lower(req.User)]
	if !ok {
		return NativeResult{}, fmt.Errorf("route natively to %q: %w", req.User, ErrNotFound)
	}
	// Check before creating anything: the store has no rollback.
	if rerr := e.agentCanTake(u, ch); rerr != nil {
		return NativeResult{}, fmt.Errorf("route natively to %q: %s: %w", req.User, rerr.Errs[0].Message, ErrConflict)
	}
	if e.userLoad(u.id)+e.org.chanWeight[ch.id] > float64(e.capacity[u.id])+1e-9 {
		return NativeResult{}, fmt.Errorf("route natively to %q: not enough capacity: %w", req.User, ErrConflict)
	}
	t := e.begin("", "")
	wi := e.newWorkItem(t, ch.str("RelatedEntity"), e.org.integration, req.Subject)
	psr := t.create(e.obj("PendingServiceRouting"), map[string]any{
		"RoutingModel": "MostAvailable", "RoutingType": "QueueBased", "IsReadyForRouting": true,
		"IsPushed": false, "IsPushAttempted": false, "IsTransfer": false, "IsPreferredUserRequired": false,
		"ServiceChannelId": ch.id, "WorkItemId": wi.id, "CapacityWeight": e.org.chanWeight[ch.id],
	})
	e.psrByWork[wi.id] = psr.id
	vals := map[string]any{
		"UserId": u.id, "WorkItemId": wi.id, "ServiceChannelId": ch.id, "PendingServiceRoutingId": psr.id,
		"CapacityWeight": e.org.chanWeight[ch.id],
	}
	if _, rerr := e.prepareAgentWork(t, vals); rerr != nil {
		return NativeResult{}, fmt.Errorf("route natively to %q: %s: %w", req.User, rerr.Errs[0].Message, ErrConflict)
	}
	aw := t.create(e.obj("AgentWork"), vals)
	e.afterAgentWorkInsert(t, aw, psr)
	e.commit(t)
	return NativeResult{WorkItemID: wi.id, PSRID: psr.id, AgentWorkID: aw.id}, nil
}
