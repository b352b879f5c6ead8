package salesforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Time is a Salesforce dateTime. It decodes the REST form
// (2022-11-30T11:29:34.000+0000), the CometD form (2024-04-09T20:19:25Z)
// and RFC 3339; null leaves it zero.
type Time struct{ time.Time }

var timeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
	"2006-01-02",
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode salesforce time: %w", err)
	}
	tt, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = tt
	return nil
}

// MarshalJSON writes the REST form, or null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format("2006-01-02T15:04:05.000-0700"))
}

// ParseTime parses a Salesforce dateTime or date string.
func ParseTime(s string) (time.Time, error) {
	if strings.HasSuffix(s, "Z") {
		// Change events write UTC with a Z: the one layout that takes it, tried first.
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse salesforce time %q: unknown layout", s)
}

// SOQL field lists of the typed objects (QueueFields: Group rows of Type Queue), derived from
// their struct tags.
var (
	PendingServiceRoutingFields = fieldList(PendingServiceRouting{})
	AgentWorkFields             = fieldList(AgentWork{})
	UserServicePresenceFields   = fieldList(UserServicePresence{})
	ServicePresenceStatusFields = fieldList(ServicePresenceStatus{})
	ServiceChannelFields        = fieldList(ServiceChannel{})
	QueueRoutingConfigFields    = fieldList(QueueRoutingConfig{})
	QueueFields                 = fieldList(Queue{})
	SkillFields                 = fieldList(Skill{})
	ServiceResourceFields       = fieldList(ServiceResource{})
	ServiceResourceSkillFields  = fieldList(ServiceResourceSkill{})
	SkillRequirementFields      = fieldList(SkillRequirement{})
)

// fieldList returns the SOQL field list of a typed object: the json names of its fields, in
// order, without attributes and relationships (pointers to structs).
func fieldList(v any) string {
	var names []string
	for _, f := range jsonFields(reflect.TypeOf(v)) {
		if f.typ.Kind() != reflect.Pointer || f.typ.Elem().Kind() != reflect.Struct {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ", ")
}

// Attributes is the "attributes" object of a REST record.
type Attributes struct {
	Type string `json:"type"`
	URL  string `json:"url,omitempty"`
}

// Values of PendingServiceRouting.RoutingModel (and AgentWork's).
const (
	RoutingModelExternal      = "ExternalRouting"
	RoutingModelLeastActive   = "LeastActive"
	RoutingModelMostAvailable = "MostAvailable"
)

// Values of PendingServiceRouting.RoutingType.
const (
	RoutingTypeQueueBased  = "QueueBased"
	RoutingTypeSkillsBased = "SkillsBased"
)

// PendingServiceRouting is a work item waiting to be routed (key prefix
// 0JR). Nullable numbers are pointers; nil means null or absent.
type PendingServiceRouting struct {
	Attributes                  *Attributes `json:"attributes,omitempty"`
	ID                          string      `json:"Id,omitempty"`
	Name                        string      `json:"Name,omitempty"`
	CapacityPercentage          *float64    `json:"CapacityPercentage,omitempty"`
	CapacityWeight              *float64    `json:"CapacityWeight,omitempty"`
	CustomRequestedDateTime     Time        `json:"CustomRequestedDateTime,omitzero"`
	DropAdditionalSkillsTimeout *int        `json:"DropAdditionalSkillsTimeout,omitempty"`
	GroupID                     string      `json:"GroupId,omitempty"`
	QueueID                     string      `json:"QueueId,omitempty"`
	IsPreferredUserRequired     bool        `json:"IsPreferredUserRequired,omitempty"`
	IsPushAttempted             bool        `json:"IsPushAttempted,omitempty"`
	IsPushed                    bool        `json:"IsPushed,omitempty"`
	IsReadyForRouting           bool        `json:"IsReadyForRouting,omitempty"`
	IsTransfer                  bool        `json:"IsTransfer,omitempty"`
	LastDeclinedAgentSession    string      `json:"LastDeclinedAgentSession,omitempty"`
	OwnerID                     string      `json:"OwnerId,omitempty"`
	PreferredUserID             string      `json:"PreferredUserId,omitempty"`
	PushTimeout                 *int        `json:"PushTimeout,omitempty"`
	RoutingModel                string      `json:"RoutingModel,omitempty"`
	RoutingPriority             *int        `json:"RoutingPriority,omitempty"`
	RoutingType                 string      `json:"RoutingType,omitempty"`
	SecondaryRoutingPriority    *int        `json:"SecondaryRoutingPriority,omitempty"`
	Serial                      *int        `json:"Serial,omitempty"`
	ServiceChannelID            string      `json:"ServiceChannelId,omitempty"`
	WorkItemID                  string      `json:"WorkItemId,omitempty"`
	CreatedDate                 Time        `json:"CreatedDate,omitzero"`
	LastModifiedDate            Time        `json:"LastModifiedDate,omitzero"`
}

// AgentWork statuses, exactly as the API spells them.
const (
	AgentWorkAssigned              = "Assigned"
	AgentWorkOpened                = "Opened"
	AgentWorkClosed                = "Closed"
	AgentWorkDeclined              = "Declined"
	AgentWorkDeclinedOnPushTimeout = "DeclinedOnPushTimeout"
	AgentWorkUnavailable           = "Unavailable"
	AgentWorkCanceled              = "Canceled"
	AgentWorkTransferred           = "Transferred"
)

// AgentWork is a work item assigned to a user (key prefix 0Bz).
type AgentWork struct {
	Attributes              *Attributes `json:"attributes,omitempty"`
	ID                      string      `json:"Id,omitempty"`
	Name                    string      `json:"Name,omitempty"`
	Status                  string      `json:"Status,omitempty"`
	UserID                  string      `json:"UserId,omitempty"`
	WorkItemID              string      `json:"WorkItemId,omitempty"`
	ServiceChannelID        string      `json:"ServiceChannelId,omitempty"`
	PendingServiceRoutingID string      `json:"PendingServiceRoutingId,omitempty"`
	CapacityWeight          *float64    `json:"CapacityWeight,omitempty"`
	CapacityPercentage      *float64    `json:"CapacityPercentage,omitempty"`
	RoutingModel            string      `json:"RoutingModel,omitempty"`
	RoutingType             string      `json:"RoutingType,omitempty"`
	OriginalGroupID         string      `json:"OriginalGroupId,omitempty"`
	PreferredUserID         string      `json:"PreferredUserId,omitempty"`
	ShouldSkipCapacityCheck bool        `json:"ShouldSkipCapacityCheck,omitempty"`
	DeclineReason           string      `json:"DeclineReason,omitempty"`
	RequestDateTime         Time        `json:"RequestDateTime,omitzero"`
	AssignedDateTime        Time        `json:"AssignedDateTime,omitzero"`
	AcceptDateTime          Time        `json:"AcceptDateTime,omitzero"`
	DeclineDateTime         Time        `json:"DeclineDateTime,omitzero"`
	CloseDateTime           Time        `json:"CloseDateTime,omitzero"`
	PushTimeoutDateTime     Time        `json:"PushTimeoutDateTime,omitzero"`
	CreatedDate             Time        `json:"CreatedDate,omitzero"`
}

// NewAgentWork is the body of the one write external routing makes: an
// AgentWork insert assigning a PSR's work item to a user.
type NewAgentWork struct {
	ServiceChannelID        string   `json:"ServiceChannelId"`
	WorkItemID              string   `json:"WorkItemId"`
	UserID                  string   `json:"UserId"`
	PendingServiceRoutingID string   `json:"PendingServiceRoutingId,omitempty"`
	CapacityWeight          *float64 `json:"CapacityWeight,omitempty"`
	CapacityPercentage      *float64 `json:"CapacityPercentage,omitempty"`
	ShouldSkipCapacityCheck bool     `json:"ShouldSkipCapacityCheck,omitempty"`
}

// UserServicePresence is one period of a user in one presence status.
type UserServicePresence struct {
	Attributes              *Attributes `json:"attributes,omitempty"`
	ID                      string      `json:"Id,omitempty"`
	Name                    string      `json:"Name,omitempty"`
	UserID                  string      `json:"UserId,omitempty"`
	OwnerID                 string      `json:"OwnerId,omitempty"`
	ServicePresenceStatusID string      `json:"ServicePresenceStatusId,omitempty"`
	IsCurrentState          bool        `json:"IsCurrentState,omitempty"`
	IsAway                  bool        `json:"IsAway,omitempty"`
	StatusStartDate         Time        `json:"StatusStartDate,omitzero"`
	StatusEndDate           Time        `json:"StatusEndDate,omitzero"`
	StatusDuration          *int        `json:"StatusDuration,omitempty"`
	ConfiguredCapacity      *float64    `json:"ConfiguredCapacity,omitempty"`
	AverageCapacity         *float64    `json:"AverageCapacity,omitempty"`
}

// ServicePresenceStatus is a presence status an agent can be in (0N5).
type ServicePresenceStatus struct {
	Attributes    *Attributes `json:"attributes,omitempty"`
	ID            string      `json:"Id,omitempty"`
	DeveloperName string      `json:"DeveloperName,omitempty"`
	MasterLabel   string      `json:"MasterLabel,omitempty"`
}

// ServiceChannel is an Omni-Channel work type bound to one sObject (0N9).
type ServiceChannel struct {
	Attributes    *Attributes `json:"attributes,omitempty"`
	ID            string      `json:"Id,omitempty"`
	DeveloperName string      `json:"DeveloperName,omitempty"`
	MasterLabel   string      `json:"MasterLabel,omitempty"`
	RelatedEntity string      `json:"RelatedEntity,omitempty"`
	CapacityModel string      `json:"CapacityModel,omitempty"`
}

// QueueRoutingConfig is a routing configuration (0K8).
type QueueRoutingConfig struct {
	Attributes                  *Attributes `json:"attributes,omitempty"`
	ID                          string      `json:"Id,omitempty"`
	DeveloperName               string      `json:"DeveloperName,omitempty"`
	MasterLabel                 string      `json:"MasterLabel,omitempty"`
	RoutingModel                string      `json:"RoutingModel,omitempty"`
	RoutingPriority             *int        `json:"RoutingPriority,omitempty"`
	PushTimeout                 *int        `json:"PushTimeout,omitempty"`
	CapacityWeight              *float64    `json:"CapacityWeight,omitempty"`
	CapacityPercentage          *float64    `json:"CapacityPercentage,omitempty"`
	DropAdditionalSkillsTimeout *int        `json:"DropAdditionalSkillsTimeout,omitempty"`
	OverflowAssigneeID          string      `json:"OverflowAssigneeId,omitempty"`
}

// Queue is a Group of Type Queue (00G) with its Omni routing configuration
// id; RoutingConfig is filled when the query selects the relationship or
// the caller joins it.
type Queue struct {
	Attributes           *Attributes         `json:"attributes,omitempty"`
	ID                   string              `json:"Id,omitempty"`
	Name                 string              `json:"Name,omitempty"`
	DeveloperName        string              `json:"DeveloperName,omitempty"`
	Type                 string              `json:"Type,omitempty"`
	QueueRoutingConfigID string              `json:"QueueRoutingConfigId,omitempty"`
	RoutingConfig        *QueueRoutingConfig `json:"QueueRoutingConfig,omitempty"`
}

// Skill is a routing skill.
type Skill struct {
	Attributes    *Attributes `json:"attributes,omitempty"`
	ID            string      `json:"Id,omitempty"`
	DeveloperName string      `json:"DeveloperName,omitempty"`
	MasterLabel   string      `json:"MasterLabel,omitempty"`
}

// ServiceResource is an agent as a service resource (RelatedRecordId is
// the user).
type ServiceResource struct {
	Attributes      *Attributes `json:"attributes,omitempty"`
	ID              string      `json:"Id,omitempty"`
	Name            string      `json:"Name,omitempty"`
	RelatedRecordID string      `json:"RelatedRecordId,omitempty"`
	IsActive        bool        `json:"IsActive,omitempty"`
	ResourceType    string      `json:"ResourceType,omitempty"`
}

// ServiceResourceSkill is a skill an agent's service resource holds, at a level.
type ServiceResourceSkill struct {
	Attributes         *Attributes `json:"attributes,omitempty"`
	ID                 string      `json:"Id,omitempty"`
	ServiceResourceID  string      `json:"ServiceResourceId,omitempty"`
	SkillID            string      `json:"SkillId,omitempty"`
	SkillLevel         *float64    `json:"SkillLevel,omitempty"`
	EffectiveStartDate Time        `json:"EffectiveStartDate,omitzero"`
	EffectiveEndDate   Time        `json:"EffectiveEndDate,omitzero"`
}

// SkillRequirement is a skill a PSR requires (RelatedRecordId is the PSR).
type SkillRequirement struct {
	Attributes        *Attributes `json:"attributes,omitempty"`
	ID                string      `json:"Id,omitempty"`
	RelatedRecordID   string      `json:"RelatedRecordId,omitempty"`
	SkillID           string      `json:"SkillId,omitempty"`
	SkillLevel        *float64    `json:"SkillLevel,omitempty"`
	IsAdditionalSkill bool        `json:"IsAdditionalSkill,omitempty"`
	SkillPriority     *int        `json:"SkillPriority,omitempty"`
}
