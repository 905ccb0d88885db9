// Package wal is an append-only write-ahead log of checksummed records in rotating segment
// files, with group commit and a configurable fsync policy.
//
// A record is framed as
//
//	len:u32le crc:u32le seq:u64le payload[len]
//
// where crc is the CRC-32C of seq and payload, and seq numbers records 1, 2, 3, ... with no
// gaps. A segment file is named after the seq of its first record (%020d.wal) and starts
// with a 16-byte header (magic, first seq). Open scans the last segment and truncates a torn
// tail (a record cut short or failing its checksum, as a crash mid-write leaves it), so
// replay stops cleanly at the last whole record and appends continue after it.
//
// Group commit: concurrent Append calls queue their records in one buffer; one of them (the
// leader) writes the whole buffer with a single write and, under SyncAlways, a single fsync,
// then wakes everyone whose record it covered. So N appenders that arrive during one fsync
// share the next one. Why, and what each policy costs, is in RATIONALE.md, "Why a
// group-commit WAL, and what does each fsync policy cost?".
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SyncPolicy says when appended records are fsynced.
type SyncPolicy uint8

// Fsync policies. Under every policy a record is written to the operating system before
// Append returns, so it survives a crash of the process (SIGKILL); only SyncAlways also
// survives a crash of the machine.
const (
	// SyncAlways fsyncs before Append returns (group commit shares one fsync among the
	// appenders that arrive together).
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs in the background every Options.Interval.
	SyncInterval
	// SyncNone never fsyncs, except at segment rotation and Close.
	SyncNone
)

// String returns the policy's name as ParseSyncPolicy accepts it.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return "SyncPolicy(" + strconv.Itoa(int(p)) + ")"
}

// ParseSyncPolicy parses "always", "interval" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("wal: unknown fsync policy %q (want always, interval or none)", s)
}

// Errors returned by the log. Compare with errors.Is.
var (
	// ErrCorrupt is returned by Replay for a damaged record before the log's tail.
	ErrCorrupt = errors.New("wal: corrupt record")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("wal: log is closed")
	// ErrTooLarge is returned by Append for a payload over Options.MaxRecordBytes.
	ErrTooLarge = errors.New("wal: record too large")
)

const (
	headerSize = 16 // segment header: magic + first seq
	frameSize  = 16 // record frame: len + crc + seq
	magic      = "PODWAL01"
	suffix     = ".wal"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Log. Zero values get the defaults.
type Options struct {
	// Sync is the fsync policy (default SyncAlways).
	Sync SyncPolicy
	// Interval is the fsync period under SyncInterval (default 10ms).
	Interval time.Duration
	// SegmentBytes is the size after which a new segment file starts (default 64 MiB).
	SegmentBytes int64
	// MaxRecordBytes bounds one payload (default 16 MiB).
	MaxRecordBytes int
	// MinSeq makes the next appended record's seq at least MinSeq, starting a new segment
	// if needed. The events ingestor passes one more than its checkpoint's seq, so that a
	// lost or removed log never reuses sequence numbers the checkpoint already covers.
	MinSeq uint64
}

// Stats are a log's counters since Open.
type Stats struct {
	Records  uint64 // records appended
	Bytes    uint64 // bytes written, frames included
	Writes   uint64 // write calls; Records/Writes is the mean group size
	Fsyncs   uint64 // fsync calls on segment files
	Segments int    // segment files now on disk
	LastSeq  uint64 // seq of the last appended record (0 if none)
}

type segment struct {
	first uint64 // seq of its first record
	path  string
}

// Log is a write-ahead log in one directory. Append, LastSeq, Stats, Sync and
// TruncateBefore are goroutine-safe; Replay must not run concurrently with Append.
type Log struct {
	dir string
	opt Options

	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte // records queued for the next write
	spare    []byte
	next     uint64 // seq of the next record
	queued   uint64 // seq of the last record in buf
	done     uint64 // records up to this seq are written (and fsynced under SyncAlways)
	flushing bool
	closed   bool
	err      error // a failed write poisons the log
	segs     []segment

	fmu  sync.Mutex // guards f and size against the interval syncer and rotation
	f    *os.File
	size int64
	// dirty is set when bytes were written since the last fsync.
	dirty atomic.Bool

	records, bytes, writes, fsyncs atomic.Uint64
	stop                           chan struct{}
	stopped                        chan struct{}
}

// Open opens the log in dir, creating dir if needed. It truncates a torn tail left by a
// crash, and starts a background fsync loop under SyncInterval.
func Open(dir string, opt Options) (*Log, error) {
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Millisecond
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = 64 << 20
	}
	if opt.MaxRecordBytes <= 0 {
		opt.MaxRecordBytes = 16 << 20
	}
	if opt.Sync > SyncNone {
		return nil, fmt.Errorf("wal: unknown fsync policy %d", opt.Sync)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot open WAL: %w", err)
	}
	l := &Log{dir: dir, opt: opt}
	l.cond.L = &l.mu
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open WAL: %w", err)
	}
	l.segs = segs
	if len(segs) == 0 {
		l.next = max(1, opt.MinSeq)
		if err := l.createSegment(l.next); err != nil {
			return nil, err
		}
	} else {
		last := segs[len(segs)-1]
		end, lastSeq, err := l.scanTail(last)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(last.path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("cannot open WAL: %w", err)
		}
		if st, err := f.Stat(); err == nil && st.Size() != end {
			// A torn tail: cut it off, so that new records follow the last whole one.
			if end < headerSize {
				end = headerSize
				err = writeHeader(f, last.first)
			}
			if err == nil {
				err = f.Truncate(end)
			}
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("cannot truncate the torn tail of %s: %w", last.path, err)
			}
		}
		if _, err := f.Seek(end, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot open WAL: %w", err)
		}
		l.f, l.size = f, end
		l.next = lastSeq + 1
		if opt.MinSeq > l.next {
			l.next = opt.MinSeq
			if err := l.rotate(l.next); err != nil {
				return nil, err
			}
		}
	}
	l.done, l.queued = l.next-1, l.next-1
	if opt.Sync == SyncInterval {
		l.stop, l.stopped = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	return l, nil
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, suffix) }

func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

func writeHeader(f *os.File, first uint64) error {
	var h [headerSize]byte
	copy(h[:], magic)
	binary.LittleEndian.PutUint64(h[8:], first)
	_, err := f.WriteAt(h[:], 0)
	return err
}

// createSegment starts a new segment whose first record is seq, makes it the current one
// and fsyncs the directory. The caller must own the write side (the leader, or Open).
func (l *Log) createSegment(seq uint64) error {
	s := segment{first: seq, path: filepath.Join(l.dir, segmentName(seq))}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create WAL segment: %w", err)
	}
	err = writeHeader(f, seq)
	if err == nil {
		_, err = f.Seek(headerSize, io.SeekStart)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("cannot create WAL segment: %w", err)
	}
	l.fmu.Lock()
	l.f, l.size = f, headerSize
	l.fmu.Unlock()
	l.mu.Lock()
	if n := len(l.segs); n == 0 || l.segs[n-1].first != seq {
		l.segs = append(l.segs, s)
	}
	l.mu.Unlock()
	return nil
}

// rotate fsyncs and closes the current segment and starts one whose first record is first.
func (l *Log) rotate(first uint64) error {
	l.fmu.Lock()
	f := l.f
	err := f.Sync()
	l.fsyncs.Add(1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	l.dirty.Store(false)
	l.fmu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot close WAL segment: %w", err)
	}
	return l.createSegment(first)
}

// scanTail reads segment s and returns the offset just past its last whole record and that
// record's seq (first-1 if it has none).
func (l *Log) scanTail(s segment) (end int64, lastSeq uint64, err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot open WAL segment: %w", err)
	}
	defer f.Close()
	r := newReader(f, s, l.opt.MaxRecordBytes)
	if err := r.header(); err != nil {
		// A segment whose header never reached the disk holds no records.
		return 0, s.first - 1, nil
	}
	for {
		if _, _, err := r.next(); err != nil {
			return r.off, r.seq - 1, nil
		}
	}
}

// Append adds a record holding payload and returns its seq once it is durable under the
// log's policy: written to the OS, and under SyncAlways also fsynced. payload may be reused
// after Append returns. If a write or fsync fails, that error is returned to every waiting
// appender and the log refuses further appends.
func (l *Log) Append(payload []byte) (uint64, error) {
	if len(payload) > l.opt.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(payload), l.opt.MaxRecordBytes)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	seq := l.next
	l.next++
	l.buf = appendRecord(l.buf, seq, payload)
	l.queued = seq
	for l.done < seq && l.err == nil {
		if l.flushing {
			l.cond.Wait()
			continue
		}
		l.flush()
	}
	err := l.err
	if l.done >= seq {
		err = nil
	}
	l.mu.Unlock()
	return seq, err
}

func appendRecord(dst []byte, seq uint64, payload []byte) []byte {
	// The frame is built in dst itself: a local array would escape into crc32's assembly
	// and cost an allocation per record.
	start := len(dst)
	dst = append(dst, make([]byte, frameSize)...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(dst[start+8:], seq)
	dst = append(dst, payload...)
	crc := crc32.Checksum(dst[start+8:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// flush writes the queued records as the leader. It is called and returns with l.mu held,
// and releases it while writing.
func (l *Log) flush() {
	l.flushing = true
	buf, last, n := l.buf, l.queued, l.queued-l.done
	l.buf = l.spare[:0]
	l.mu.Unlock()

	err := l.write(buf, last, n)

	l.mu.Lock()
	l.spare = buf[:0]
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("cannot append to WAL: %w", err)
	}
	if err == nil {
		l.done = last
	}
	l.flushing = false
	l.cond.Broadcast()
}

// write writes buf, which holds n records ending with seq last, to the current segment,
// fsyncs under SyncAlways, and rotates when the segment is full. Only the leader calls it.
func (l *Log) write(buf []byte, last, n uint64) error {
	if _, err := l.f.Write(buf); err != nil {
		return err
	}
	l.writes.Add(1)
	l.records.Add(n)
	l.bytes.Add(uint64(len(buf)))
	l.dirty.Store(true)
	l.fmu.Lock()
	l.size += int64(len(buf))
	full := l.size >= l.opt.SegmentBytes
	l.fmu.Unlock()
	if l.opt.Sync == SyncAlways {
		if err := l.fsync(); err != nil {
			return err
		}
	}
	if full {
		// Records queued meanwhile (seq > last) will go to the new segment.
		return l.rotate(last + 1)
	}
	return nil
}

func (l *Log) fsync() error {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.f == nil || !l.dirty.Swap(false) {
		return nil
	}
	l.fsyncs.Add(1)
	if err := l.f.Sync(); err != nil {
		l.dirty.Store(true)
		return err
	}
	return nil
}

func (l *Log) syncLoop() {
	defer close(l.stopped)
	t := time.NewTicker(l.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.fsync(); err != nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = fmt.Errorf("cannot fsync WAL: %w", err)
				}
				l.mu.Unlock()
			}
		}
	}
}

// Sync fsyncs everything written so far, whatever the policy.
func (l *Log) Sync() error { return l.fsync() }

// LastSeq returns the seq of the last record appended (0 if none ever was).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	segs, last := len(l.segs), l.next-1
	l.mu.Unlock()
	return Stats{Records: l.records.Load(), Bytes: l.bytes.Load(), Writes: l.writes.Load(),
		Fsyncs: l.fsyncs.Load(), Segments: segs, LastSeq: last}
}

// TruncateBefore removes the segments whose records all have seq < seq, typically after a
// checkpoint covered them. The current segment is never removed.
func (l *Log) TruncateBefore(seq uint64) error {
	l.mu.Lock()
	var drop []segment
	for len(l.segs) > 1 && l.segs[1].first <= seq {
		drop = append(drop, l.segs[0])
		l.segs = l.segs[1:]
	}
	l.mu.Unlock()
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot truncate WAL: %w", err)
		}
	}
	if len(drop) > 0 {
		return syncDir(l.dir)
	}
	return nil
}

// Replay calls fn for every record with seq >= from, in order. It stops at the first error
// fn returns and returns it, or returns an error wrapping ErrCorrupt for a damaged record
// (the tail was already repaired by Open). payload is valid only during the call.
func (l *Log) Replay(from uint64, fn func(seq uint64, payload []byte) error) error {
	l.mu.Lock()
	segs := slices.Clone(l.segs)
	l.mu.Unlock()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= from {
			continue // every record here is older than from
		}
		if err := l.replaySegment(s, i == len(segs)-1, from, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegment(s segment, last bool, from uint64, fn func(uint64, []byte) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot replay WAL: %w", err)
	}
	defer f.Close()
	r := newReader(f, s, l.opt.MaxRecordBytes)
	if err := r.header(); err != nil {
		if last {
			return nil
		}
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
	}
	for {
		seq, payload, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if last {
				return nil // the tail Open cut off; nothing follows it
			}
			return fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, s.path, r.off, err)
		}
		if seq < from {
			continue
		}
		if err := fn(seq, payload); err != nil {
			return err
		}
	}
}

// Close flushes and fsyncs what was appended, stops the background fsync, and closes the
// current segment. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	// Write what waiting appenders queued, so that none of them is left without an answer.
	for l.flushing || (l.queued > l.done && l.err == nil) {
		if l.flushing {
			l.cond.Wait()
		} else {
			l.flush()
		}
	}
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.stopped
	}
	l.dirty.Store(true)
	err := l.fsync()
	l.fmu.Lock()
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
		l.f = nil
	}
	l.fmu.Unlock()
	return err
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
