package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// CheckpointStore keeps the replay id of the last handled event of each
// channel, so that a restart (or another replica taking over) resumes the
// stream where the last one stopped. Save must be durable when it returns.
type CheckpointStore interface {
	// Load returns the stored replay ids; an empty map if there are none.
	Load(ctx context.Context) (map[string]int64, error)
	// Save replaces the stored replay ids.
	Save(ctx context.Context, ids map[string]int64) error
}

// FileCheckpointStore stores replay ids in one JSON file per channel set
// (the file name is derived from the sorted channel names, so two streams
// with different channels never share a file). Save writes a temporary
// file in the same directory, fsyncs it, renames it over the checkpoint
// and fsyncs the directory: a crash at any point leaves either the old or
// the new checkpoint, never a torn one. Leftover temporary files are
// ignored by Load and removed by the next Save.
type FileCheckpointStore struct {
	dir      string
	channels []string
	path     string
	mu       sync.Mutex
}

// checkpointFile is the on-disk form.
type checkpointFile struct {
	Version   int              `json:"version"`
	Channels  []string         `json:"channels"`
	ReplayIDs map[string]int64 `json:"replayIds"`
}

// NewFileCheckpointStore returns a store for channels under dir, which is
// created if missing.
func NewFileCheckpointStore(dir string, channels []string) (*FileCheckpointStore, error) {
	if len(channels) == 0 {
		return nil, errors.New("create checkpoint store: no channels")
	}
	chs := slices.Clone(channels)
	slices.Sort(chs)
	chs = slices.Compact(chs)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create checkpoint directory %s: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(strings.Join(chs, "\n")))
	return &FileCheckpointStore{
		dir:      dir,
		channels: chs,
		path:     filepath.Join(dir, "replay-"+hex.EncodeToString(sum[:8])+".json"),
	}, nil
}

// Path returns the checkpoint file's path.
func (s *FileCheckpointStore) Path() string { return s.path }

// Load reads the checkpoint. A missing file is an empty checkpoint; a
// file that does not parse or belongs to other channels is an error, not
// a silent restart from scratch.
func (s *FileCheckpointStore) Load(context.Context) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", s.path, err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse checkpoint %s: %w", s.path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("parse checkpoint %s: unknown version %d", s.path, f.Version)
	}
	if !slices.Equal(f.Channels, s.channels) {
		return nil, fmt.Errorf("parse checkpoint %s: it is for channels %v, not %v", s.path, f.Channels, s.channels)
	}
	if f.ReplayIDs == nil {
		f.ReplayIDs = map[string]int64{}
	}
	return f.ReplayIDs, nil
}

// Save writes ids atomically and durably. Ids of channels outside the
// store's set are an error.
func (s *FileCheckpointStore) Save(_ context.Context, ids map[string]int64) error {
	for ch := range ids {
		if _, ok := slices.BinarySearch(s.channels, ch); !ok {
			return fmt.Errorf("save checkpoint: channel %q is not in this store's set", ch)
		}
	}
	b, err := json.MarshalIndent(checkpointFile{Version: 1, Channels: s.channels, ReplayIDs: ids}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeStale()
	tmp, err := os.CreateTemp(s.dir, filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", s.path, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", s.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save checkpoint %s: sync: %w", s.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", s.path, err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", s.path, err)
	}
	committed = true
	if d, err := os.Open(s.dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("save checkpoint %s: sync directory: %w", s.path, err)
		}
	}
	return nil
}

// removeStale deletes temporary files a crash left behind.
func (s *FileCheckpointStore) removeStale() {
	matches, _ := filepath.Glob(s.path + ".tmp-*")
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// MemoryCheckpointStore keeps replay ids in memory (tests, demo).
type MemoryCheckpointStore struct {
	mu  sync.Mutex
	ids map[string]int64
}

// Load returns a copy of the stored ids.
func (m *MemoryCheckpointStore) Load(context.Context) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(m.ids))
	for k, v := range m.ids {
		out[k] = v
	}
	return out, nil
}

// Save stores a copy of ids.
func (m *MemoryCheckpointStore) Save(_ context.Context, ids map[string]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids = make(map[string]int64, len(ids))
	for k, v := range ids {
		m.ids[k] = v
	}
	return nil
}
