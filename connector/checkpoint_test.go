package connector

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFileCheckpointStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	chs := []string{"/data/AgentWorkChangeEvent", "/data/PendingServiceRoutingChangeEvent"}
	s, err := NewFileCheckpointStore(dir, chs)
	require.NoError(t, err)
	ids, err := s.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, ids)

	want := map[string]int64{chs[0]: 41, chs[1]: 7}
	require.NoError(t, s.Save(t.Context(), want))
	// A new store on the same set, in another order, reads the same file.
	s2, err := NewFileCheckpointStore(dir, []string{chs[1], chs[0], chs[1]})
	require.NoError(t, err)
	require.Equal(t, s.Path(), s2.Path())
	got, err := s2.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, got)

	// Another channel set gets another file.
	s3, err := NewFileCheckpointStore(dir, chs[:1])
	require.NoError(t, err)
	require.NotEqual(t, s.Path(), s3.Path())
	got, err = s3.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
	require.Error(t, s3.Save(t.Context(), want), "a channel outside the set")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}

// A crash mid-write leaves a torn temporary file next to the checkpoint:
// Load must still see the last complete checkpoint, and the next Save must
// clean up.
func TestFileCheckpointStoreTornWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	chs := []string{"/topic/PSR"}
	s, err := NewFileCheckpointStore(dir, chs)
	require.NoError(t, err)
	require.NoError(t, s.Save(t.Context(), map[string]int64{"/topic/PSR": 100}))

	torn := filepath.Join(filepath.Dir(s.Path()), "."+filepath.Base(s.Path())+"123456")
	require.NoError(t, os.WriteFile(torn, []byte(`{"version":1,"channels":["/topic/PSR"],"replayIds":{"/topic/P`), 0o600))
	got, err := s.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"/topic/PSR": 100}, got)

	require.NoError(t, s.Save(t.Context(), map[string]int64{"/topic/PSR": 101}))
	_, err = os.Stat(torn)
	require.ErrorIs(t, err, os.ErrNotExist)
	got, err = s.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"/topic/PSR": 101}, got)
}

func TestFileCheckpointStoreRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewFileCheckpointStore(dir, []string{"/topic/A"})
	require.NoError(t, err)
	for name, body := range map[string]string{
		"truncated":      `{"version":1,"chan`,
		"other channels": `{"version":1,"channels":["/topic/B"],"replayIds":{"/topic/B":3}}`,
		"future version": `{"version":2,"channels":["/topic/A"],"replayIds":{}}`,
	} {
		require.NoError(t, os.WriteFile(s.Path(), []byte(body), 0o600))
		_, err := s.Load(t.Context())
		require.Error(t, err, name)
	}
	_, err = NewFileCheckpointStore(filepath.Join(dir, "sub"), nil)
	require.Error(t, err)
}
