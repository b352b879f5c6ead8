package emulator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoSeedShape(t *testing.T) {
	t.Parallel()
	s := DemoSeed()
	require.NoError(t, s.validate())
	agents := 0
	for _, u := range s.Users {
		if u.Agent {
			agents++
			require.NotEmpty(t, u.Skills)
		}
	}
	require.GreaterOrEqual(t, agents, 20)
	h := newHarness(t, nil)
	require.Len(t, h.query("SELECT Id FROM ServiceResource WHERE ResourceType = 'A'"), agents)
	require.Len(t, h.query("SELECT Id FROM ServicePresenceStatus"), 5)
	chans := h.query("SELECT DeveloperName, RelatedEntity FROM ServiceChannel ORDER BY DeveloperName")
	require.Equal(t, "Case", chans[0]["DeveloperName"])
	require.Len(t, chans, 4)
	// The all-channels status covers every channel.
	require.Len(t, h.query("SELECT Id FROM ServiceChannelStatus WHERE ServicePresenceStatus.DeveloperName = 'Available'"), 4)
	levels := h.query("SELECT SkillLevel, Skill.DeveloperName, ServiceResource.RelatedRecordId FROM ServiceResourceSkill WHERE Skill.DeveloperName = 'German'")
	require.NotEmpty(t, levels)
}

func TestLoadSeedFile(t *testing.T) {
	t.Parallel()
	s, err := LoadSeedFile("testdata/seed.yaml")
	require.NoError(t, err)
	require.Equal(t, "test-app", s.ConnectedApp.ClientID)
	require.Contains(t, s.ConnectedApp.Certificate, "BEGIN CERTIFICATE")
	require.Len(t, s.Users, 2)
	require.Equal(t, 7.0, s.Users[1].Skills["French"])
}

func TestSeedFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	_, err := LoadSeedFile(write("unknown.yaml", "connectedApp: {clientId: a, clientSecret: b}\nbogus: 1\n"))
	require.ErrorContains(t, err, "field bogus not found")
	_, err = LoadSeedFile(write("refs.yaml", `connectedApp: {clientId: a, clientSecret: b, runAs: nobody}
users: [{username: u, lastName: U, skills: {Nope: 1}, queues: [Q]}]
queues: [{developerName: Q0, routingConfig: Missing}]
`))
	require.ErrorContains(t, err, `unknown user "nobody"`)
	require.ErrorContains(t, err, `unknown skill "Nope"`)
	require.ErrorContains(t, err, `unknown queue "Q"`)
	require.ErrorContains(t, err, `unknown routing config "Missing"`)
	_, err = LoadSeedFile(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
}

func TestSeedFileOrgWorks(t *testing.T) {
	t.Parallel()
	s, err := LoadSeedFile("testdata/seed.yaml")
	require.NoError(t, err)
	em, err := New(Options{Seed: s, ControlToken: testControlToken})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	res, err := em.CreateWork(WorkRequest{Channel: "Web", Queue: "Q1"})
	require.NoError(t, err)
	require.NotEmpty(t, res.PSRID)
	res2, err := em.CreateWork(WorkRequest{Channel: "Web", Queue: "Q2"})
	require.NoError(t, err)
	require.Empty(t, res2.PSRID, "a natively routed queue gets no external PSR")
	require.NoError(t, em.SetPresence("a1@test.org", "Online"))
	id, err := em.AssignWork(res.PSRID, "a1@test.org")
	require.NoError(t, err)
	require.NoError(t, em.AcceptWork(id))
	_, err = em.AssignWork(res.PSRID, "a1@test.org")
	require.ErrorIs(t, err, ErrNotFound) // the PSR is gone after accept
	tok, err := em.IssueToken("api@test.org")
	require.NoError(t, err)
	require.NotEmpty(t, tok)
	// Capacity 4 with channel weight 2: two items fit, a third does not.
	for i := range 3 {
		w, err := em.CreateWork(WorkRequest{Channel: "Web", Queue: "Q1"})
		require.NoError(t, err)
		_, err = em.AssignWork(w.PSRID, "a1@test.org")
		if i < 1 {
			require.NoError(t, err)
		} else {
			var re *restError
			require.ErrorAs(t, err, &re)
			require.Equal(t, "FIELD_INTEGRITY_EXCEPTION", re.Errs[0].ErrorCode)
		}
	}
}
