package features

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/fastcache"
)

// A snapshot directory holds fastcache's own files under data/ and a MANIFEST listing each
// of them with its size and CRC-32C, ending in a line that marks the manifest complete.
// fastcache.SaveToFile neither fsyncs nor checksums, and its loader silently starts a bucket
// empty when a file is damaged, so Save and LoadKV add both.
const (
	manifestName = "MANIFEST"
	manifestEnd  = "end podium-kv-snapshot 1"
	dataDirName  = "data"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes a snapshot of kv to the directory dir, replacing any previous snapshot there.
// It writes into a temporary sibling directory, fsyncs every file and directory, then renames
// it into place, so dir holds either the old or the new snapshot, each checked by LoadKV.
// (Between its two renames a crash leaves the old snapshot at dir+".old", which LoadKV also
// tries.) Save may run concurrently with other KV methods; entries changed meanwhile may or
// may not be in the snapshot. Concurrent Saves to the same dir are not supported.
func (kv *KV) Save(dir string) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp.")
	if err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	data := filepath.Join(tmp, dataDirName)
	if err := kv.c.SaveToFile(data); err != nil {
		return fmt.Errorf("cannot save snapshot to %s: %w", dir, err)
	}
	var manifest strings.Builder
	entries, err := os.ReadDir(data)
	if err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	for _, e := range entries {
		size, sum, err := checksumFile(filepath.Join(data, e.Name()), true)
		if err != nil {
			return fmt.Errorf("cannot save snapshot: %w", err)
		}
		fmt.Fprintf(&manifest, "%08x %d %s\n", sum, size, e.Name())
	}
	manifest.WriteString(manifestEnd + "\n")
	if err := writeFileSync(filepath.Join(tmp, manifestName), manifest.String()); err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	for _, d := range []string{data, tmp} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("cannot save snapshot: %w", err)
		}
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("cannot save snapshot: %w", err)
	}
	return os.RemoveAll(old)
}

// LoadKV loads a snapshot written by KV.Save from dir (or, if dir is missing, from the
// dir+".old" a crash may have left). It verifies every file against the manifest and returns
// an error wrapping ErrCorrupt on any mismatch, or os.ErrNotExist if there is no snapshot.
// maxBytes must match the saved KV's capacity (fastcache cannot resize a snapshot); on a
// mismatch LoadKV returns an error, and the caller usually starts with NewKV instead.
func LoadKV(dir string, maxBytes int) (*KV, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, errOld := os.Stat(dir + ".old"); errOld == nil {
			dir += ".old"
		}
	}
	if err := verifySnapshot(dir); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %s: %w", dir, err)
	}
	c, err := fastcache.LoadFromFileMaxBytes(filepath.Join(dir, dataDirName), maxBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot %s: %w", dir, err)
	}
	return &KV{c: c}, nil
}

// Save writes a snapshot of the user store to dir; see KV.Save.
func (s *UserStore) Save(dir string) error { return s.kv.Save(dir) }

// LoadUserStore loads a user store snapshot written by UserStore.Save; see LoadKV.
func LoadUserStore(dir string, maxBytes int) (*UserStore, error) {
	kv, err := LoadKV(dir, maxBytes)
	if err != nil {
		return nil, err
	}
	return &UserStore{kv: kv}, nil
}

func verifySnapshot(dir string) error {
	f, err := os.Open(filepath.Join(dir, manifestName))
	if err != nil {
		return err
	}
	defer f.Close()
	want := map[string]string{}
	complete := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if complete {
			return fmt.Errorf("%w: manifest has data after its end line", ErrCorrupt)
		}
		if line == manifestEnd {
			complete = true
			continue
		}
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 || parts[2] == "" || strings.ContainsAny(parts[2], `/\`) {
			return fmt.Errorf("%w: manifest line %q", ErrCorrupt, line)
		}
		want[parts[2]] = parts[0] + " " + parts[1]
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !complete {
		return fmt.Errorf("%w: manifest is incomplete", ErrCorrupt)
	}
	data := filepath.Join(dir, dataDirName)
	entries, err := os.ReadDir(data)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != len(want) {
		return fmt.Errorf("%w: %d data files, manifest lists %d", ErrCorrupt, len(names), len(want))
	}
	for _, name := range names {
		w, ok := want[name]
		if !ok {
			return fmt.Errorf("%w: data file %s not in manifest", ErrCorrupt, name)
		}
		size, sum, err := checksumFile(filepath.Join(data, name), false)
		if err != nil {
			return err
		}
		if got := fmt.Sprintf("%08x %d", sum, size); got != w {
			return fmt.Errorf("%w: data file %s has checksum and size %s, manifest says %s", ErrCorrupt, name, got, w)
		}
	}
	return nil
}

// checksumFile returns the size and CRC-32C of the file at path, fsyncing it first if sync.
func checksumFile(path string, sync bool) (int64, uint32, error) {
	f, err := os.Open(path) // fsync works on a read-only descriptor on Linux and macOS
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if sync {
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, 0, err
	}
	return n, h.Sum32(), nil
}

func writeFileSync(path, content string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
