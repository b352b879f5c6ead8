package emulator

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Seed describes an org: the connected app, users, routing setup, presence statuses and skills.
// DemoSeed returns the demo org; LoadSeedFile reads one from YAML (same field names).
type Seed struct {
	// OrgID is the 18-character organization id (00D...).
	OrgID string `yaml:"orgId"`
	// ConnectedApp is the one connected app that may request tokens.
	ConnectedApp ConnectedApp `yaml:"connectedApp"`
	// Users are the org's users; agents are users with Agent set.
	Users []SeedUser `yaml:"users"`
	// RoutingConfigs are QueueRoutingConfig records.
	RoutingConfigs []SeedRoutingConfig `yaml:"routingConfigs"`
	// Queues are Group records of Type Queue.
	Queues []SeedQueue `yaml:"queues"`
	// Channels are ServiceChannel records.
	Channels []SeedChannel `yaml:"channels"`
	// PresenceStatuses are ServicePresenceStatus records with their channels.
	PresenceStatuses []SeedPresenceStatus `yaml:"presenceStatuses"`
	// Skills are Skill records.
	Skills []SeedSkill `yaml:"skills"`
	// ChatButtons are chat buttons agents can transfer chats through; each routes to a queue.
	ChatButtons []SeedChatButton `yaml:"chatButtons"`
}

// SeedChatButton is a chat button (LiveChatButton) and the queue it routes to.
type SeedChatButton struct {
	DeveloperName string `yaml:"developerName"`
	Queue         string `yaml:"queue"`
}

// ConnectedApp is the OAuth client.
type ConnectedApp struct {
	ClientID     string `yaml:"clientId"`
	ClientSecret string `yaml:"clientSecret"`
	// Certificate is the PEM certificate or public key that verifies JWT bearer assertions.
	Certificate string `yaml:"certificate"`
	// CertificateFile is read into Certificate by LoadSeedFile (relative to the seed file).
	CertificateFile string `yaml:"certificateFile"`
	// RunAs is the username client_credentials tokens act as.
	RunAs string `yaml:"runAs"`
}

// SeedUser is a User; with Agent set it also gets a ServiceResource with Skills.
type SeedUser struct {
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	FirstName string `yaml:"firstName"`
	LastName  string `yaml:"lastName"`
	Email     string `yaml:"email"`
	Agent     bool   `yaml:"agent"`
	// Capacity is the agent's configured Omni-Channel capacity (default 10).
	Capacity int `yaml:"capacity"`
	// Skills maps Skill DeveloperName to level.
	Skills map[string]float64 `yaml:"skills"`
	// Queues lists queue DeveloperNames the user is a member of.
	Queues []string `yaml:"queues"`
}

// SeedRoutingConfig is a QueueRoutingConfig.
type SeedRoutingConfig struct {
	DeveloperName  string  `yaml:"developerName"`
	Label          string  `yaml:"label"`
	RoutingModel   string  `yaml:"routingModel"`
	Priority       int     `yaml:"priority"`
	PushTimeout    int     `yaml:"pushTimeout"`
	CapacityWeight float64 `yaml:"capacityWeight"`
}

// SeedQueue is a Group of Type Queue.
type SeedQueue struct {
	DeveloperName string   `yaml:"developerName"`
	Label         string   `yaml:"label"`
	RoutingConfig string   `yaml:"routingConfig"`
	SobjectTypes  []string `yaml:"sobjectTypes"`
}

// SeedChannel is a ServiceChannel.
type SeedChannel struct {
	DeveloperName string `yaml:"developerName"`
	Label         string `yaml:"label"`
	RelatedEntity string `yaml:"relatedEntity"`
	// CapacityWeight is the PSR CapacityWeight for work on this channel when the routing
	// configuration sets none (default 1).
	CapacityWeight float64 `yaml:"capacityWeight"`
}

// SeedPresenceStatus is a ServicePresenceStatus; no channels makes it an away status.
type SeedPresenceStatus struct {
	DeveloperName string   `yaml:"developerName"`
	Label         string   `yaml:"label"`
	Channels      []string `yaml:"channels"`
}

// SeedSkill is a Skill.
type SeedSkill struct {
	DeveloperName string `yaml:"developerName"`
	Label         string `yaml:"label"`
}

// Demo org credentials (public, for the demo and tests only).
const (
	DemoClientID     = "omniroute-demo"
	DemoClientSecret = "omniroute-demo-secret"
	DemoUsername     = "integration@omniroute.demo"
	DemoPassword     = "omniroute-demo"
	DemoOrgID        = "00D5g000004DemoEAA"
	demoAgentPass    = "omniroute-demo"
)

// demoCertificate is the TEST-ONLY certificate registered on the demo connected app
// (testdata/README.md).
//
//go:embed testdata/demo-jwt-certificate.pem
var demoCertificate string

// DemoSeed returns the demo org of docs/emulator.md: connected app omniroute-demo, the
// integration user, queues Support_EN, Support_DE and Billing on an External Routing
// configuration, channels Chat, Messaging, Case and Phone, 24 skilled agents and the presence
// statuses.
func DemoSeed() Seed {
	s := Seed{
		OrgID: DemoOrgID,
		ConnectedApp: ConnectedApp{
			ClientID: DemoClientID, ClientSecret: DemoClientSecret,
			Certificate: demoCertificate, RunAs: DemoUsername,
		},
		RoutingConfigs: []SeedRoutingConfig{
			{DeveloperName: "External_Routing", Label: "External Routing", RoutingModel: "ExternalRouting", Priority: 1, PushTimeout: 30, CapacityWeight: 1},
		},
		Queues: []SeedQueue{
			{DeveloperName: "Support_EN", Label: "Support EN", RoutingConfig: "External_Routing", SobjectTypes: workItemTypes},
			{DeveloperName: "Support_DE", Label: "Support DE", RoutingConfig: "External_Routing", SobjectTypes: workItemTypes},
			{DeveloperName: "Billing", Label: "Billing", RoutingConfig: "External_Routing", SobjectTypes: workItemTypes},
		},
		Channels: []SeedChannel{
			{DeveloperName: "Chat", Label: "Chat", RelatedEntity: "LiveChatTranscript", CapacityWeight: 2},
			{DeveloperName: "Messaging", Label: "Messaging", RelatedEntity: "MessagingSession", CapacityWeight: 2},
			{DeveloperName: "Case", Label: "Case", RelatedEntity: "Case", CapacityWeight: 1},
			{DeveloperName: "Phone", Label: "Phone", RelatedEntity: "VoiceCall", CapacityWeight: 5},
		},
		PresenceStatuses: []SeedPresenceStatus{
			{DeveloperName: "Available", Label: "Available", Channels: []string{"Chat", "Messaging", "Case", "Phone"}},
			{DeveloperName: "Ready_for_cases", Label: "Ready for cases", Channels: []string{"Case"}},
			{DeveloperName: "On_a_call", Label: "On a call", Channels: []string{"Phone"}},
			{DeveloperName: "Away_from_desk", Label: "Away from desk"},
			{DeveloperName: "Taking_notes", Label: "Taking notes"},
		},
		ChatButtons: []SeedChatButton{
			{DeveloperName: "Chat_Support_EN", Queue: "Support_EN"},
			{DeveloperName: "Chat_Support_DE", Queue: "Support_DE"},
			{DeveloperName: "Chat_Billing", Queue: "Billing"},
		},
		Skills: []SeedSkill{
			{DeveloperName: "English", Label: "English"},
			{DeveloperName: "German", Label: "German"},
			{DeveloperName: "Billing", Label: "Billing"},
			{DeveloperName: "Technical", Label: "Technical"},
		},
	}
	s.Users = append(s.Users, SeedUser{
		Username: DemoUsername, Password: DemoPassword, FirstName: "Integration", LastName: "User",
		Email: DemoUsername,
	})
	first := []string{"Ada", "Ben", "Chloe", "David", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam",
		"Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sven", "Tara", "Uwe", "Vera", "Will", "Yara"}
	for i, name := range first {
		n := i + 1
		u := SeedUser{
			Username: fmt.Sprintf("agent%02d@omniroute.demo", n), Password: demoAgentPass,
			FirstName: name, LastName: fmt.Sprintf("Agent%02d", n), Email: fmt.Sprintf("agent%02d@omniroute.demo", n),
			Agent: true, Capacity: 10, Skills: map[string]float64{},
		}
		// English for everyone at varying levels, German for every third, Billing for every
		// fourth, Technical for odd agents.
		u.Skills["English"] = float64(3 + n%8)
		u.Queues = []string{"Support_EN"}
		if n%3 == 0 {
			u.Skills["German"] = float64(4 + n%6)
			u.Queues = append(u.Queues, "Support_DE")
		}
		if n%4 == 0 {
			u.Skills["Billing"] = float64(2 + n%7)
			u.Queues = append(u.Queues, "Billing")
		}
		if n%2 == 1 {
			u.Skills["Technical"] = float64(1 + n%9)
		}
		s.Users = append(s.Users, u)
	}
	return s
}

// LoadSeedFile reads a YAML seed (the fields of Seed, camelCase keys; unknown keys are errors).
func LoadSeedFile(path string) (Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Seed{}, fmt.Errorf("read seed %s: %w", path, err)
	}
	var s Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("parse seed %s: %w", path, err)
	}
	if s.ConnectedApp.Certificate == "" && s.ConnectedApp.CertificateFile != "" {
		p := s.ConnectedApp.CertificateFile
		if !isAbs(p) {
			p = joinDir(path, p)
		}
		pem, err := os.ReadFile(p)
		if err != nil {
			return Seed{}, fmt.Errorf("read seed %s certificate: %w", path, err)
		}
		s.ConnectedApp.Certificate = string(pem)
	}
	if err := s.validate(); err != nil {
		return Seed{}, fmt.Errorf("check seed %s: %w", path, err)
	}
	return s, nil
}

// validate checks references inside the seed and returns every problem at once.
func (s Seed) validate() error {
	var errs []error
	if s.ConnectedApp.ClientID == "" || s.ConnectedApp.ClientSecret == "" {
		errs = append(errs, errors.New("connectedApp: clientId and clientSecret are required"))
	}
	users := map[string]bool{}
	for i, u := range s.Users {
		if u.Username == "" || u.LastName == "" {
			errs = append(errs, fmt.Errorf("users[%d]: username and lastName are required", i))
		}
		if users[u.Username] {
			errs = append(errs, fmt.Errorf("users[%d]: duplicate username %q", i, u.Username))
		}
		users[u.Username] = true
	}
	if s.ConnectedApp.RunAs != "" && !users[s.ConnectedApp.RunAs] {
		errs = append(errs, fmt.Errorf("connectedApp.runAs: unknown user %q", s.ConnectedApp.RunAs))
	}
	rcs := map[string]bool{}
	for i, rc := range s.RoutingConfigs {
		switch rc.RoutingModel {
		case "ExternalRouting", "LeastActive", "MostAvailable":
		default:
			errs = append(errs, fmt.Errorf("routingConfigs[%d].routingModel: unknown model %q", i, rc.RoutingModel))
		}
		rcs[rc.DeveloperName] = true
	}
	queues := map[string]bool{}
	for i, q := range s.Queues {
		if q.RoutingConfig != "" && !rcs[q.RoutingConfig] {
			errs = append(errs, fmt.Errorf("queues[%d].routingConfig: unknown routing config %q", i, q.RoutingConfig))
		}
		queues[q.DeveloperName] = true
	}
	for i, b := range s.ChatButtons {
		if b.DeveloperName == "" || !queues[b.Queue] {
			errs = append(errs, fmt.Errorf("chatButtons[%d]: developerName and a known queue are required (queue %q)", i, b.Queue))
		}
	}
	channels := map[string]bool{}
	for i, c := range s.Channels {
		switch c.RelatedEntity {
		case "Case", "LiveChatTranscript", "MessagingSession", "VoiceCall":
		default:
			errs = append(errs, fmt.Errorf("channels[%d].relatedEntity: unsupported %q", i, c.RelatedEntity))
		}
		channels[c.DeveloperName] = true
	}
	for i, p := range s.PresenceStatuses {
		for _, c := range p.Channels {
			if !channels[c] {
				errs = append(errs, fmt.Errorf("presenceStatuses[%d].channels: unknown channel %q", i, c))
			}
		}
	}
	skills := map[string]bool{}
	for _, sk := range s.Skills {
		skills[sk.DeveloperName] = true
	}
	for i, u := range s.Users {
		for sk := range u.Skills {
			if !skills[sk] {
				errs = append(errs, fmt.Errorf("users[%d].skills: unknown skill %q", i, sk))
			}
		}
		for _, q := range u.Queues {
			if !queues[q] {
				errs = append(errs, fmt.Errorf("users[%d].queues: unknown queue %q", i, q))
			}
		}
	}
	return errors.Join(errs...)
}
