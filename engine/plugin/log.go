package plugin

import (
	"context"
	"log/slog"

	"github.com/podium-rank/podium/sdk/abi"
	"github.com/tetratelabs/wazero/api"
)

// stderrTail is how many bytes of a guest's stderr a FaultError quotes.
const stderrTail = 512

// resetLog starts a new log budget (per call and per init, sdk/ABI.md §6).
func (inst *instance) resetLog() {
	inst.logLines, inst.logBytes = 0, 0
	inst.stderr = inst.stderr[:0]
}

// logMessage delivers one guest log message within the budget.
func (inst *instance) logMessage(level int32, msg []byte) {
	p := inst.p
	if inst.logLines >= abi.LogMaxLines || inst.logBytes >= abi.LogMaxBytes {
		p.logDropped.Add(1)
		return
	}
	msg = msg[:min(len(msg), abi.LogMaxMessage, abi.LogMaxBytes-inst.logBytes)]
	inst.logLines++
	inst.logBytes += len(msg)
	p.logLines.Add(1)
	lvl := slog.LevelDebug
	switch level {
	case abi.LogInfo:
		lvl = slog.LevelInfo
	case abi.LogWarn:
		lvl = slog.LevelWarn
	case abi.LogError:
		lvl = slog.LevelError
	}
	logger := inst.rt.cfg.Logger
	if logger.Enabled(context.Background(), lvl) {
		logger.Log(context.Background(), lvl, string(msg), "plugin", p.Name(), "version", short(p.Version()))
	}
}

// hostLog implements podium.log(level, msg, len).
func hostLog(ctx context.Context, m api.Module, s []uint64) {
	inst := instanceOf(ctx)
	if inst == nil {
		return
	}
	ptr, n := uint32(s[1]), uint32(s[2])
	n = min(n, abi.LogMaxMessage)
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(&KernelError{"log", "message outside memory"})
	}
	inst.logMessage(int32(s[0]), b)
}

// hostLookup implements podium.lookup(space, space_len, value, value_len) -> code.
func hostLookup(ctx context.Context, m api.Module, s []uint64) {
	inst := instanceOf(ctx)
	mem := m.Memory()
	space, ok1 := mem.Read(uint32(s[0]), uint32(s[1]))
	value, ok2 := mem.Read(uint32(s[2]), uint32(s[3]))
	if !ok1 || !ok2 {
		panic(&KernelError{"lookup", "string outside memory"})
	}
	s[0] = 0xffffffff // -1 as i32
	if inst == nil || inst.rt.cfg.Resolver == nil {
		return
	}
	if code, ok := inst.rt.cfg.Resolver.Lookup(string(space), string(value)); ok && code >= 0 {
		s[0] = uint64(uint32(code))
	}
}

// guestWriter is a guest's WASI stdout or stderr: every write is a log line within the
// same budget, and stderr's tail is kept for fault details.
type guestWriter struct {
	inst  *instance
	level int32
}

// Write implements io.Writer.
func (w guestWriter) Write(b []byte) (int, error) {
	if w.level == abi.LogWarn {
		inst := w.inst
		if len(inst.stderr)+len(b) > stderrTail {
			keep := max(0, stderrTail-len(b))
			inst.stderr = append(inst.stderr[:0], inst.stderr[len(inst.stderr)-min(keep, len(inst.stderr)):]...)
		}
		inst.stderr = append(inst.stderr, b[max(0, len(b)-stderrTail):]...)
	}
	w.inst.logMessage(w.level, b)
	return len(b), nil
}
