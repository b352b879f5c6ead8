package mapping

import (
	"fmt"
	"time"
)

// Config is one mapping file: interaction plans, service channels, capacity profiles and the
// presence tables. Build it with Parse (which also validates it) or as a literal in tests and
// check it with Validate. A Config is never modified after Parse returns; routing.Compile reads it.
//
// Field names below are the YAML keys shown in the struct tags; docs/mapping.md describes each.
// Config carries unexported source positions: compare Configs with go-cmp's
// cmpopts.IgnoreUnexported(mapping.Config{}).
type Config struct {
	// Plans are the interaction plans. Every external-routing queue belongs to exactly one plan.
	Plans []Plan `yaml:"plans"`
	// Channels maps Salesforce service channels to interaction classes and capacity weights.
	Channels []Channel `yaml:"channels"`
	// Capacity holds the capacity profiles and which agents use which.
	Capacity Capacity `yaml:"capacity"`
	// Presence holds the presence <-> agent state tables and the sync switches.
	Presence Presence `yaml:"presence"`

	// src remembers where each YAML path came from, for error messages. Nil for literals.
	src *source
}

// Plan is an interaction plan: how work from its queues is routed.
type Plan struct {
	// Name identifies the plan; overflow targets refer to it. Unique.
	Name string `yaml:"name"`
	// Queues are the Salesforce queues routed by this plan, each by DeveloperName (Support_EN)
	// or by Id (00G…). A queue belongs to at most one plan.
	Queues []string `yaml:"queues"`
	// RequiredSkills must all be held at least at their minimum level.
	RequiredSkills []SkillRequirement `yaml:"requiredSkills"`
	// AdditionalSkills are required too, until they are dropped after DropAdditionalSkillsAfter
	// (Salesforce's additional skills): they narrow the first agents tried, then relax.
	AdditionalSkills []SkillRequirement `yaml:"additionalSkills"`
	// DropAdditionalSkillsAfter is how long work waits before its additional skills are dropped.
	// Zero means never.
	DropAdditionalSkillsAfter time.Duration `yaml:"dropAdditionalSkillsAfter"`
	// Priority orders waiting work across plans: lower routes first, as Salesforce's
	// RoutingPriority. Default 0.
	Priority int `yaml:"priority"`
	// Relaxation steps lower or drop required skills as work waits, in order of After.
	Relaxation []RelaxationStep `yaml:"relaxation"`
	// Overflow moves waiting work to another plan after a wait. Nil means no overflow.
	Overflow *Overflow `yaml:"overflow"`
	// OfferTimeout is how long an agent has to accept an offer before it is re-offered
	// (the AgentWork push timeout). Default 30s; 0 means no timeout.
	OfferTimeout time.Duration `yaml:"offerTimeout"`
	// WrapUpTimeout is how long wrap-up lasts after work closes before the post-call state.
	// 0 means no wrap-up.
	WrapUpTimeout time.Duration `yaml:"wrapUpTimeout"`
	// AutoAccept assigns work without an offer the agent must accept.
	AutoAccept bool `yaml:"autoAccept"`
	// DispositionRequired keeps the session open until a disposition is set.
	DispositionRequired bool `yaml:"dispositionRequired"`
}

// DefaultOfferTimeout is a plan's OfferTimeout when the key is absent.
const DefaultOfferTimeout = 30 * time.Second

// SkillRequirement is a skill (Salesforce Skill DeveloperName) at a minimum level.
type SkillRequirement struct {
	// Skill is the Skill's DeveloperName.
	Skill string `yaml:"skill"`
	// MinLevel is the lowest ServiceResourceSkill.SkillLevel that satisfies it (0–99.99). Default 0.
	MinLevel float64 `yaml:"minLevel"`
}

// RelaxationStep changes one required skill after work has waited After: either lowers its
// minimum level to MinLevel or, with Drop, removes the requirement.
type RelaxationStep struct {
	// After is the wait (from the work's age) after which the step applies. Required, > 0.
	After time.Duration `yaml:"after"`
	// Skill names one of the plan's required skills.
	Skill string `yaml:"skill"`
	// MinLevel is the new minimum level (lower than before). Ignored when Drop is set.
	MinLevel float64 `yaml:"minLevel"`
	// Drop removes the requirement entirely.
	Drop bool `yaml:"drop"`
}

// Overflow moves work to another plan once it has waited After.
type Overflow struct {
	// Plan is the target plan's Name.
	Plan string `yaml:"plan"`
	// After is the wait after which the work moves. Required, > 0.
	After time.Duration `yaml:"after"`
}

// Channel maps a Salesforce ServiceChannel to an interaction class and capacity weight.
type Channel struct {
	// Name is the ServiceChannel DeveloperName (e.g. sfdc_livemessage, or Chat in the demo org).
	Name string `yaml:"name"`
	// Class is the interaction class: live, semi-live or non-live.
	Class Class `yaml:"class"`
	// Weight is how many capacity units one work item of this channel uses. Default 1.
	Weight int `yaml:"weight"`
	// DispositionField is the API name of the field of this channel's work item (Case,
	// LiveChatTranscript, MessagingSession...) that receives a session's disposition when the
	// session ends (e.g. Disposition__c). Empty: the disposition is not written to Salesforce.
	DispositionField string `yaml:"dispositionField"`
}

// Capacity holds capacity profiles: a default, plus overrides for some agents or groups.
type Capacity struct {
	// Default names the profile every agent gets unless an override matches.
	Default string `yaml:"default"`
	// Profiles are the named capacity profiles.
	Profiles []CapacityProfile `yaml:"profiles"`
	// Overrides give listed agents or members of listed groups another profile. The first
	// matching override wins; an override listing the agent itself beats a group match.
	Overrides []CapacityOverride `yaml:"overrides"`
}

// CapacityProfile is how much concurrent work an agent takes.
type CapacityProfile struct {
	// Name identifies the profile.
	Name string `yaml:"name"`
	// Total is the agent's total capacity in units. Required, > 0.
	Total int `yaml:"total"`
	// PerClass caps the units used by each interaction class. A missing class is capped only by Total.
	PerClass map[Class]int `yaml:"perClass"`
	// PerChannel caps the units used per service channel (DeveloperName). Missing: no extra cap.
	PerChannel map[string]int `yaml:"perChannel"`
}

// CapacityOverride assigns Profile to agents (Salesforce User Ids, 005…, the id the routing
// engine knows agents by) and to members of groups (public group DeveloperNames, as the
// connector reports an agent's groups).
type CapacityOverride struct {
	// Profile is the profile Name to use.
	Profile string `yaml:"profile"`
	// Agents are User Ids (005…).
	Agents []string `yaml:"agents"`
	// Groups are public group DeveloperNames.
	Groups []string `yaml:"groups"`
}

// Presence is the two-way presence mapping of seed 003.
type Presence struct {
	// Events are the five sync switches.
	Events PresenceEvents `yaml:"events"`
	// FromSalesforce maps a presence status DeveloperName to an agent state. A status that is
	// not listed maps to Ready (the default). Offline is not listed: it means logged out.
	FromSalesforce map[string]State `yaml:"fromSalesforce"`
	// ToSalesforce maps agent states to presence status DeveloperNames (or Offline). Every
	// major state must be listed; a minor state that is not listed uses its major state's status.
	ToSalesforce map[State]string `yaml:"toSalesforce"`
	// RevertToLastStatus: when an agent returns to Ready after work, restore the presence status
	// they had before the work instead of the one mapped to Ready. Applies only when PostCallState
	// is Ready or ReadyOutbound ("Ready (Offline)"); otherwise the mapped status wins.
	RevertToLastStatus bool `yaml:"revertToLastStatus"`
	// PostCallState is the state an agent enters after work and wrap-up end. Default Ready.
	PostCallState State `yaml:"postCallState"`
}

// PresenceEvents are the five switches of seed 003. Each defaults to true.
type PresenceEvents struct {
	// StateChangesUpdatePresence: an agent state change pushes the mapped presence status.
	StateChangesUpdatePresence bool `yaml:"stateChangesUpdatePresence"`
	// PresenceChangesUpdateState: a presence status change sets the mapped agent state.
	PresenceChangesUpdateState bool `yaml:"presenceChangesUpdateState"`
	// LoginSetsOnline: logging in to omniroute sets the online status mapped to the agent's state.
	LoginSetsOnline bool `yaml:"loginSetsOnline"`
	// LogoutSetsOffline: logging out of omniroute sets Offline in Omni-Channel.
	LogoutSetsOffline bool `yaml:"logoutSetsOffline"`
	// OfflineLogsOut: going Offline in Omni-Channel logs the agent out of omniroute.
	OfflineLogsOut bool `yaml:"offlineLogsOut"`
}

// OfflineStatus is the pseudo presence status for "not logged in to Omni-Channel". It is not a
// ServicePresenceStatus record; toSalesforce may map a state to it (LoggedOut usually is).
const OfflineStatus = "Offline"

// Class is an interaction class.
type Class uint8

// Interaction classes. The zero Class is invalid.
const (
	// Live is voice and video.
	Live Class = iota + 1
	// SemiLive is chat and messaging.
	SemiLive
	// NonLive is case, email and other records.
	NonLive
)

var classNames = [...]string{Live: "live", SemiLive: "semi-live", NonLive: "non-live"}

// Classes lists every valid Class in order.
func Classes() []Class { return []Class{Live, SemiLive, NonLive} }

// String returns the YAML name: live, semi-live or non-live.
func (c Class) String() string {
	if c >= Live && c <= NonLive {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// ParseClass parses live, semi-live or non-live.
func ParseClass(s string) (Class, error) {
	for _, c := range Classes() {
		if classNames[c] == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown interaction class %q (want live, semi-live or non-live)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Class) MarshalText() ([]byte, error) {
	if c < Live || c > NonLive {
		return nil, fmt.Errorf("marshal invalid interaction class %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// MajorState is an agent's contact-centre major state.
type MajorState uint8

// Major states. The zero MajorState is invalid.
const (
	// Ready takes inbound work.
	Ready MajorState = iota + 1
	// ReadyOutbound is ready for outbound work only ("Ready (Offline)" for inbound routing).
	ReadyOutbound
	// Busy is working on routed work.
	Busy
	// WrapUp is after-work time.
	WrapUp
	// Away is a short absence (minor states such as Break, Lunch).
	Away
	// ExtendedAway is a long absence (Training, Meeting).
	ExtendedAway
	// LoggedOut is not logged in.
	LoggedOut
)

var majorNames = [...]string{
	Ready: "Ready", ReadyOutbound: "ReadyOutbound", Busy: "Busy", WrapUp: "WrapUp",
	Away: "Away", ExtendedAway: "ExtendedAway", LoggedOut: "LoggedOut",
}

// MajorStates lists every valid MajorState in order.
func MajorStates() []MajorState {
	return []MajorState{Ready, ReadyOutbound, Busy, WrapUp, Away, ExtendedAway, LoggedOut}
}

// String returns the YAML name, e.g. WrapUp.
func (m MajorState) String() string {
	if m >= Ready && m <= LoggedOut {
		return majorNames[m]
	}
	return fmt.Sprintf("MajorState(%d)", uint8(m))
}

// ParseMajorState parses a major state name (Ready, ReadyOutbound, Busy, WrapUp, Away,
// ExtendedAway, LoggedOut).
func ParseMajorState(s string) (MajorState, error) {
	for _, m := range MajorStates() {
		if majorNames[m] == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown major state %q (want Ready, ReadyOutbound, Busy, WrapUp, Away, ExtendedAway or LoggedOut)", s)
}

// State is an agent state: a major state with an optional minor state (e.g. Away/Break).
type State struct {
	Major MajorState
	// Minor is free text chosen by the admin, e.g. Break. Empty means the major state itself.
	Minor string
}

// String returns Major or Major/Minor, the YAML form.
func (s State) String() string {
	if s.Minor == "" {
		return s.Major.String()
	}
	return s.Major.String() + "/" + s.Minor
}

// ParseState parses "Major" or "Major/Minor", e.g. "Away/Break".
func ParseState(s string) (State, error) {
	major, minor := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			major, minor = s[:i], s[i+1:]
			break
		}
	}
	m, err := ParseMajorState(major)
	if err != nil {
		return State{}, err
	}
	if len(major) != len(s) && minor == "" {
		return State{}, fmt.Errorf("empty minor state in %q", s)
	}
	return State{Major: m, Minor: minor}, nil
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) {
	if s.Major < Ready || s.Major > LoggedOut {
		return nil, fmt.Errorf("marshal invalid state %d", uint8(s.Major))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Org is the org metadata a mapping is checked against (see ValidateOrg). It is plain data; the
// caller reads it from Salesforce.
type Org struct {
	Queues   []OrgQueue
	Channels []OrgChannel
	Statuses []OrgStatus
	Skills   []OrgSkill
}

// OrgQueue is a queue (Group of Type Queue) and the routing model of its routing configuration.
type OrgQueue struct {
	ID            string
	DeveloperName string
	// RoutingModel is the QueueRoutingConfig's model: ExternalRouting, LeastActive,
	// MostAvailable, or empty when the queue has no routing configuration.
	RoutingModel string
}

// RoutingModelExternal is the RoutingModel value of an external-routing queue.
const RoutingModelExternal = "ExternalRouting"

// OrgChannel is a ServiceChannel.
type OrgChannel struct {
	ID            string
	DeveloperName string
	// RelatedEntity is the object type the channel routes, e.g. MessagingSession.
	RelatedEntity string
}

// OrgStatus is a ServicePresenceStatus.
type OrgStatus struct {
	ID            string
	DeveloperName string
	Label         string
}

// OrgSkill is a Skill.
type OrgSkill struct {
	ID            string
	DeveloperName string
}
