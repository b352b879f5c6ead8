package connector

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// demoMapping is the demo org's mapping of docs/examples.
const demoMapping = "../docs/examples/demo-mapping.yaml"

// testOrg serves an emulator org on loopback and returns its URL.
func testOrg(t *testing.T, seed emulator.Seed) string {
	t.Helper()
	em, err := emulator.New(emulator.Options{Seed: seed})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return srv.URL
}

// jwtKey writes a fresh RSA key to a file and registers its public key on the seed's connected
// app.
func jwtKey(t *testing.T, seed *emulator.Seed) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	seed.ConnectedApp.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	path := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	return path
}

// TestStartupPathAgainstEmulator is start-up's org half over real HTTP, in each OAuth flow:
// log in, read the org's metadata, check the demo mapping against it.
func TestStartupPathAgainstEmulator(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(demoMapping)
	require.NoError(t, err)
	m, err := mapping.Parse(data, demoMapping)
	require.NoError(t, err)

	seed := emulator.DemoSeed()
	keyFile := jwtKey(t, &seed)
	url := testOrg(t, seed)
	tests := []struct {
		name string
		set  func(*SalesforceConfig)
		mode string
	}{
		{name: "client credentials", mode: AuthClientCredentials, set: func(s *SalesforceConfig) {
			s.ClientSecret = NewSecret(emulator.DemoClientSecret)
		}},
		{name: "password", mode: AuthPassword, set: func(s *SalesforceConfig) {
			s.ClientSecret, s.Username, s.Password = NewSecret(emulator.DemoClientSecret), emulator.DemoUsername, NewSecret(emulator.DemoPassword)
		}},
		{name: "jwt", mode: AuthJWT, set: func(s *SalesforceConfig) {
			s.Username, s.PrivateKeyFile = emulator.DemoUsername, keyFile
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig().Salesforce
			cfg.LoginURL, cfg.ClientID = url, emulator.DemoClientID
			tc.set(&cfg)
			sf, err := NewSalesforce(cfg, SalesforceOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.mode, sf.Mode)
			tok, err := sf.Authenticate(t.Context())
			require.NoError(t, err)
			require.Equal(t, url, tok.InstanceURL)
			org, err := sf.ReadOrg(t.Context())
			require.NoError(t, err)
			require.Len(t, org.Queues, len(seed.Queues))
			require.Len(t, org.Channels, len(seed.Channels))
			require.Len(t, org.Statuses, len(seed.PresenceStatuses))
			require.Len(t, org.Skills, len(seed.Skills))
			problems, hasErrors := CheckOrg(m, org)
			require.False(t, hasErrors, "%v", problems)
		})
	}
}

// TestStartupLoginFailures: a refused login and an unreadable key are errors that name what is
// wrong and never the secret.
func TestStartupLoginFailures(t *testing.T) {
	t.Parallel()
	url := testOrg(t, emulator.DemoSeed())
	cfg := DefaultConfig().Salesforce
	cfg.LoginURL, cfg.ClientID, cfg.ClientSecret = url, emulator.DemoClientID, NewSecret("wrong-"+secretValue)
	sf, err := NewSalesforce(cfg, SalesforceOptions{})
	require.NoError(t, err)
	_, err = sf.Authenticate(t.Context())
	require.ErrorContains(t, err, "log in to salesforce (client_credentials flow)")
	require.NotContains(t, err.Error(), secretValue)

	cfg.ClientSecret = Secret{}
	cfg.Username, cfg.PrivateKeyFile = emulator.DemoUsername, filepath.Join(t.TempDir(), "missing.pem")
	_, err = NewSalesforce(cfg, SalesforceOptions{})
	require.ErrorContains(t, err, "OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE: read the private key")
}

// TestCheckOrg: the mapping's own warnings and the org check's problems come back sorted, and
// an org without a queue the mapping names is an error.
func TestCheckOrg(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(demoMapping)
	require.NoError(t, err)
	m, err := mapping.Parse(data, demoMapping)
	require.NoError(t, err)
	problems, hasErrors := CheckOrg(m, mapping.Org{})
	require.True(t, hasErrors)
	require.NotEmpty(t, problems)
	for i := 1; i < len(problems); i++ {
		require.LessOrEqual(t, problems[i-1].Pos.Line, problems[i].Pos.Line)
	}
}
