package connector

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

	"github.com/google/renameio/v2"
)

// FileCheckpointStore keeps the stream's replay checkpoints (salesforce.CheckpointStore) in one
// JSON file per channel set: the file name is derived from the sorted channel names, so two
// streams with different channels never share a file. Save writes the file atomically with
// github.com/google/renameio/v2 (a temporary file in the same directory, fsynced, renamed over
// the checkpoint) and then fsyncs the directory, so the rename itself survives a power loss: a
// crash at any point leaves either the old or the new checkpoint, never a torn one. Temporary
// files a crash leaves behind are ignored by Load and removed by the next Save.
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

// NewFileCheckpointStore returns a store for channels under dir, which is created if missing.
func NewFileCheckpointStore(dir string, channels []string) (*FileCheckpointStore, error) {
	chs, sum, err := checkpointChannels(channels)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create checkpoint directory %s: %w", dir, err)
	}
	return &FileCheckpointStore{dir: dir, channels: chs, path: filepath.Join(dir, "replay-"+sum+".json")}, nil
}

// checkpointChannels returns a store's channel set, sorted without repeats, and its name:
// the first 8 bytes of the set's sha256, in hex. Two stores of different sets never share a
// checkpoint.
func checkpointChannels(channels []string) ([]string, string, error) {
	if len(channels) == 0 {
		return nil, "", errors.New("create checkpoint store: no channels")
	}
	chs := slices.Clone(channels)
	slices.Sort(chs)
	chs = slices.Compact(chs)
	sum := sha256.Sum256([]byte(strings.Join(chs, "\n")))
	return chs, hex.EncodeToString(sum[:8]), nil
}

// decodeCheckpoint parses a checkpoint document of the channel set chs.
func decodeCheckpoint(b []byte, chs []string) (map[string]int64, error) {
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("unknown version %d", f.Version)
	}
	if !slices.Equal(f.Channels, chs) {
		return nil, fmt.Errorf("it is for channels %v, not %v", f.Channels, chs)
	}
	if f.ReplayIDs == nil {
		f.ReplayIDs = map[string]int64{}
	}
	return f.ReplayIDs, nil
}

// Path returns the checkpoint file's path.
func (s *FileCheckpointStore) Path() string { return s.path }

// Load reads the checkpoint. A missing file is an empty checkpoint; a file that does not parse
// or belongs to other channels is an error, not a silent restart from scratch.
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
	ids, err := decodeCheckpoint(b, s.channels)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", s.path, err)
	}
	return ids, nil
}

// Save writes ids atomically and durably. Ids of channels outside the store's set are an error.
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
	// renameio names its temporary files ".<name><random digits>"; remove a crash's leftovers.
	stale, _ := filepath.Glob(filepath.Join(s.dir, "."+filepath.Base(s.path)+"*"))
	for _, f := range stale {
		_ = os.Remove(f)
	}
	if err := renameio.WriteFile(s.path, append(b, '\n'), 0o600, renameio.WithTempDir(s.dir)); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", s.path, err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: open directory: %w", s.path, err)
	}
	err = d.Sync()
	_ = d.Close()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: sync directory: %w", s.path, err)
	}
	return nil
}
