// Package interrupt rewrites a wasm module so that the host can stop it at any time: every
// loop header bumps a counter (a local of the function, so a register), and every
// FuelPeriod iterations the guest leaves native code (so the Go scheduler can preempt it)
// and traps if the host has set a flag.
//
// This is how engine/plugin enforces deadlines without wazero's WithCloseOnContextDone,
// which leaves native code on every loop iteration and spawns a goroutine per call (see
// RATIONALE.md, "Why meter loops instead of WithCloseOnContextDone?"). Every backward
// branch in wasm targets a loop header, so a guest cannot run unboundedly without passing a
// check; recursion is bounded by the stack, and tail calls are refused.
//
// Leaving native code matters: wazero's compiled code cannot be preempted, so a guest that
// never returns to Go would block every stop-the-world of the process (and the timer that is
// meant to stop it) forever. The exit is a memory.grow by 0 pages, which wazero implements
// as a call into Go; it changes nothing in the guest.
package interrupt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// StopGlobal is the export name of the i32 global the rewritten module checks. Setting it to
// a non-zero value makes the guest trap ("unreachable") within FuelPeriod loop iterations.
const StopGlobal = "podium_stop"

// FuelGlobal is the export name of the i32 fuel counter of the CheckFuel variant.
const FuelGlobal = "podium_fuel"

// FuelPeriod is the number of loop iterations (per function activation) between two exits
// to Go: a power of two. An exit costs about as much as a few hundred iterations of a tight
// loop, so this keeps its overhead under 1% while a spinning guest still yields every few
// tens of microseconds.
const FuelPeriod = 1 << 14

// ErrUnsupported reports a module the rewriter cannot make stoppable: a malformed binary,
// an unknown opcode, tail calls or typed function references.
var ErrUnsupported = errors.New("interrupt: cannot instrument module")

var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Section ids.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secStart    = 8
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
)

// order gives the position of each known non-custom section in a valid module.
var order = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id      byte
	payload []byte // without id and size
	raw     []byte // the whole section, header included
}

// Stats says what Instrument did.
type Stats struct {
	Functions int // function bodies rewritten
	Loops     int // loop headers instrumented
}

// Instrument returns a copy of the wasm module in which every loop header traps when the
// exported i32 global StopGlobal is non-zero. It also drops DWARF custom sections, whose
// code offsets would no longer hold. The input is not modified.
func Instrument(wasm []byte) ([]byte, Stats, error) {
	return InstrumentWith(wasm, CheckLocal)
}

// Check selects the instruction sequence inserted at loop headers.
type Check int

const (
	// CheckLocal is the production sequence: add 1 to a new i32 local of the function;
	// every FuelPeriod, leave native code (memory.grow 0) and trap if $stop is set.
	CheckLocal Check = iota
	// CheckFuel is the same with the counter in a global, $fuel, decremented and refilled:
	// a load and a store per iteration instead of a register.
	CheckFuel
	// CheckIf is (if (global.get $stop) (then unreachable)) alone. It is cheaper but NOT
	// safe: a spinning guest never leaves native code, so it can block the garbage
	// collector's stop-the-world, and with it the goroutine meant to set $stop. It exists
	// to measure the cost of the flag check alone.
	CheckIf
)

// InstrumentWith is Instrument with a choice of check sequence, for measurement.
func InstrumentWith(wasm []byte, kind Check) ([]byte, Stats, error) {
	var st Stats
	secs, err := split(wasm)
	if err != nil {
		return nil, st, err
	}
	var importedGlobals, definedGlobals, importedFuncs uint32
	var typeParams []uint32 // param count per type index
	var funcTypes []uint32  // type index per defined function
	hasGlobal, hasExport, hasMemory := false, false, false
	for _, s := range secs {
		switch s.id {
		case secType:
			if typeParams, err = readTypes(s.payload); err != nil {
				return nil, st, err
			}
		case secFunction:
			if funcTypes, err = readFunctions(s.payload); err != nil {
				return nil, st, err
			}
		case secImport:
			var mems uint32
			if importedGlobals, importedFuncs, mems, err = countImports(s.payload); err != nil {
				return nil, st, err
			}
			hasMemory = hasMemory || mems > 0
		case secMemory:
			hasMemory = true
		case secStart:
			// A start function runs inside instantiation, before the host can arm a
			// deadline; reactors use an exported _initialize instead.
			return nil, st, fmt.Errorf("%w: the module has a start function; export _initialize instead", ErrUnsupported)
		case secGlobal:
			hasGlobal = true
			r := reader{b: s.payload}
			definedGlobals = r.u32()
			if r.err != nil {
				return nil, st, r.err
			}
		case secExport:
			hasExport = true
			if err := checkExportsFree(s.payload); err != nil {
				return nil, st, err
			}
		}
	}
	if !hasMemory {
		return nil, st, fmt.Errorf("%w: the module has no memory", ErrUnsupported)
	}
	stop := importedGlobals + definedGlobals
	fuel := stop + 1
	if !hasGlobal {
		secs = insert(secs, section{id: secGlobal, payload: []byte{0}})
	}
	if !hasExport {
		secs = insert(secs, section{id: secExport, payload: []byte{0}})
	}
	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, wasmHeader...)
	for _, s := range secs {
		var payload []byte
		switch s.id {
		case secCustom:
			if isDebugSection(s.payload) {
				continue
			}
			out = append(out, s.raw...)
			continue
		case secGlobal:
			payload, err = appendGlobals(s.payload)
		case secExport:
			payload, err = appendExports(s.payload, stop, fuel)
		case secCode:
			fns := &funcInfo{importedFuncs, typeParams, funcTypes}
			payload, err = rewriteCode(s.payload, stop, fuel, kind, fns, &st)
		default:
			if s.raw != nil {
				out = append(out, s.raw...)
				continue
			}
			payload = s.payload
		}
		if err != nil {
			return nil, st, err
		}
		out = append(out, s.id)
		out = appendU32(out, uint32(len(payload)))
		out = append(out, payload...)
	}
	return out, st, nil
}

func split(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], wasmHeader) {
		return nil, fmt.Errorf("%w: not a wasm binary", ErrUnsupported)
	}
	var secs []section
	r := reader{b: wasm, i: 8}
	for r.i < len(r.b) && r.err == nil {
		start := r.i
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			break
		}
		secs = append(secs, section{id: id, payload: body, raw: wasm[start:r.i]})
	}
	return secs, r.err
}

// insert places a new section at its position in the section order.
func insert(secs []section, s section) []section {
	pos := len(secs)
	for i, o := range secs {
		if o.id != secCustom && order[o.id] > order[s.id] {
			pos = i
			break
		}
	}
	secs = append(secs, section{})
	copy(secs[pos+1:], secs[pos:])
	secs[pos] = s
	return secs
}

func isDebugSection(payload []byte) bool {
	r := reader{b: payload}
	name := string(r.bytes(int(r.u32())))
	return r.err == nil && (strings.HasPrefix(name, ".debug_") || name == "sourceMappingURL")
}

func countImports(p []byte) (globals, funcs, memories uint32, err error) {
	r := reader{b: p}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // func
			r.u32()
			funcs++
		case 0x01: // table
			r.byte()
			r.limits()
		case 0x02: // memory
			r.limits()
			memories++
		case 0x03: // global
			r.byte()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			r.fail("import kind %#x", kind)
		}
	}
	return globals, funcs, memories, r.err
}

// readTypes returns the number of params of each function type.
func readTypes(p []byte) ([]uint32, error) {
	r := reader{b: p}
	n := r.u32()
	var params []uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		if form := r.byte(); form != 0x60 {
			r.fail("type form %#x", form)
		}
		np := r.u32()
		for k := uint32(0); k < np && r.err == nil; k++ {
			r.valtype()
		}
		for k := r.u32(); k > 0 && r.err == nil; k-- {
			r.valtype()
		}
		params = append(params, np)
	}
	return params, r.err
}

// readFunctions returns the type index of each defined function.
func readFunctions(p []byte) ([]uint32, error) {
	r := reader{b: p}
	n := r.u32()
	var types []uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		types = append(types, r.u32())
	}
	return types, r.err
}

// funcInfo is what rewriteCode needs to number a new local in each function.
type funcInfo struct {
	imported   uint32
	typeParams []uint32
	funcTypes  []uint32
}

// params returns the param count of the i-th function body.
func (f *funcInfo) params(i uint32) (uint32, error) {
	if int(i) >= len(f.funcTypes) || int(f.funcTypes[i]) >= len(f.typeParams) {
		return 0, fmt.Errorf("%w: function body %d has no valid type", ErrUnsupported, i)
	}
	return f.typeParams[f.funcTypes[i]], nil
}

func checkExportsFree(p []byte) error {
	r := reader{b: p}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if n := string(r.bytes(int(r.u32()))); n == StopGlobal || n == FuelGlobal {
			return fmt.Errorf("%w: the module already exports %q", ErrUnsupported, n)
		}
		r.byte()
		r.u32()
	}
	return r.err
}

// appendGlobals adds $stop (mut i32, 0) and $fuel (mut i32, FuelPeriod) to a global
// section payload.
func appendGlobals(p []byte) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, n+2)
	out = append(out, p[r.i:]...)
	out = append(out, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	out = append(out, 0x7f, 0x01, 0x41)
	out = appendS32(out, FuelPeriod)
	return append(out, 0x0b), nil
}

// appendExports exports $stop and $fuel.
func appendExports(p []byte, stop, fuel uint32) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, n+2)
	out = append(out, p[r.i:]...)
	for _, e := range []struct {
		name string
		idx  uint32
	}{{StopGlobal, stop}, {FuelGlobal, fuel}} {
		out = appendU32(out, uint32(len(e.name)))
		out = append(out, e.name...)
		out = append(out, 0x03)
		out = appendU32(out, e.idx)
	}
	return out, nil
}

// fuelCheck returns the sequence inserted at each loop header:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  i32.const 0  memory.grow 0  drop          ;; leave native code: a preemption point
//	  global.get $stop  if  unreachable  end
//	  i32.const FuelPeriod  global.set $fuel
//	end
func fuelCheck(stop, fuel uint32) []byte {
	c := appendU32([]byte{0x23}, fuel)
	c = append(c, 0x41, 0x01, 0x6b, 0x24)
	c = appendU32(c, fuel)
	c = append(c, 0x23)
	c = appendU32(c, fuel)
	c = append(c, 0x45, 0x04, 0x40)
	c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1a)
	c = append(c, 0x23)
	c = appendU32(c, stop)
	c = append(c, 0x04, 0x40, 0x00, 0x0b)
	c = append(c, 0x41)
	c = appendS32(c, FuelPeriod)
	c = append(c, 0x24)
	c = appendU32(c, fuel)
	return append(c, 0x0b)
}

// localCheck returns the CheckLocal sequence with counter local l:
//
//	local.get $l  i32.const 1  i32.add  local.tee $l
//	i32.const FuelPeriod-1  i32.and  i32.eqz
//	if
//	  i32.const 0  memory.grow 0  drop          ;; leave native code: a preemption point
//	  global.get $stop  if  unreachable  end
//	end
func localCheck(dst []byte, stop, l uint32) []byte {
	c := appendU32(append(dst, 0x20), l)
	c = append(c, 0x41, 0x01, 0x6a, 0x22)
	c = appendU32(c, l)
	c = append(c, 0x41)
	c = appendS32(c, FuelPeriod-1)
	c = append(c, 0x71, 0x45, 0x04, 0x40)
	c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1a)
	c = append(c, 0x23)
	c = appendU32(c, stop)
	return append(c, 0x04, 0x40, 0x00, 0x0b, 0x0b)
}

func rewriteCode(p []byte, stop, fuel uint32, kind Check, fns *funcInfo, st *Stats) ([]byte, error) {
	var check []byte
	switch kind {
	case CheckFuel:
		check = fuelCheck(stop, fuel)
	case CheckIf:
		check = appendU32([]byte{0x23}, stop)
		check = append(check, 0x04, 0x40, 0x00, 0x0b) // if (empty) unreachable end
	}

	r := reader{b: p}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(p)+len(p)/16), n)
	var body []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		fn := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		var loops int
		var err error
		var local uint32 = noLocal
		if kind == CheckLocal {
			if local, err = fns.params(i); err != nil {
				return nil, err
			}
		}
		body, loops, err = rewriteBody(body[:0], fn, check, stop, local)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		st.Functions++
		st.Loops += loops
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if r.err == nil && r.i != len(p) {
		r.fail("%d trailing bytes in the code section", len(p)-r.i)
	}
	return out, r.err
}

// noLocal means the check sequence needs no new local.
const noLocal = ^uint32(0)

// rewriteBody copies one function body to dst with a check inserted after every loop
// opcode and its block type. If local is not noLocal, it is the function's param count: the
// body gets one more i32 local, numbered after all others, and the check is localCheck.
func rewriteBody(dst, fn, check []byte, stop, local uint32) ([]byte, int, error) {
	r := reader{b: fn}
	groups := r.u32()
	groupsStart := r.i
	total := uint64(0)
	for g := uint32(0); g < groups && r.err == nil; g++ {
		total += uint64(r.u32())
		r.valtype()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	last := 0 // fn[last:r.i] is not yet copied
	if local != noLocal {
		if total+uint64(local) >= 1<<31 {
			return nil, 0, fmt.Errorf("%w: too many locals", ErrUnsupported)
		}
		local += uint32(total)
		dst = appendU32(dst, groups+1)
		dst = append(dst, fn[groupsStart:r.i]...)
		dst = append(dst, 0x01, 0x7f)
		last = r.i
		check = localCheck(nil, stop, local)
	}
	loops := 0
	for r.i < len(fn) && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x03: // loop
			r.blocktype()
			dst = append(dst, fn[last:r.i]...)
			dst = append(dst, check...)
			last = r.i
			loops++
		case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try
			r.blocktype()
		case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b:
		case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x0c || op == 0x0d || op == 0x10 || op == 0x18:
			r.u32()
		case op == 0x0e: // br_table
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect
			r.u32()
			r.u32()
		case op == 0x12 || op == 0x13 || op == 0x14 || op == 0x15:
			r.fail("tail calls and call_ref are not supported (opcode %#x)", op)
		case op == 0x1c: // select t*
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				r.valtype()
			}
		case op == 0x1f: // try_table
			r.blocktype()
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				switch kind := r.byte(); kind {
				case 0x00, 0x01:
					r.u32()
					r.u32()
				case 0x02, 0x03:
					r.u32()
				default:
					r.fail("catch kind %#x", kind)
				}
			}
		case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			r.u32()
		case op >= 0x28 && op <= 0x3e:
			r.memarg()
		case op == 0x3f || op == 0x40: // memory.size, memory.grow
			r.u32()
		case op == 0x41:
			r.sleb(5)
		case op == 0x42:
			r.sleb(10)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op >= 0x45 && op <= 0xc4:
		case op == 0xd0: // ref.null heaptype
			r.sleb(5)
		case op == 0xd1:
		case op == 0xd2:
			r.u32()
		case op == 0xfc:
			misc(&r)
		case op == 0xfd:
			simd(&r)
		case op == 0xfe:
			if sub := r.u32(); sub == 0x03 {
				r.byte()
			} else {
				r.memarg()
			}
		default:
			r.fail("unknown opcode %#x at offset %d", op, r.i-1)
		}
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	dst = append(dst, fn[last:]...)
	return dst, loops, nil
}

func misc(r *reader) {
	switch sub := r.u32(); {
	case sub <= 7:
	case sub == 8 || sub == 10 || sub == 12 || sub == 14:
		r.u32()
		r.u32()
	case sub == 9 || sub == 11 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		r.u32()
	default:
		r.fail("unknown 0xfc opcode %d", sub)
	}
}

func simd(r *reader) {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93:
		r.memarg()
	case sub == 12 || sub == 13:
		r.bytes(16)
	case sub >= 21 && sub <= 34:
		r.byte()
	case sub >= 84 && sub <= 91:
		r.memarg()
		r.byte()
	case sub <= 0x113:
	default:
		r.fail("unknown 0xfd opcode %d", sub)
	}
}

// reader decodes a wasm byte stream; the first error sticks and stops all reads.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
	}
	r.i = len(r.b)
}

func (r *reader) byte() byte {
	if r.err != nil || r.i >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.i {
		r.fail("unexpected end")
		return nil
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 0xffffffff {
				r.fail("u32 out of range")
			}
			return uint32(v)
		}
	}
	r.fail("u32 too long")
	return 0
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *reader) sleb(max int) {
	for k := 0; k < max; k++ {
		if c := r.byte(); r.err != nil || c&0x80 == 0 {
			return
		}
	}
	r.fail("signed LEB128 too long")
}

func (r *reader) valtype() {
	switch t := r.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.fail("value type %#x", t)
	}
}

func (r *reader) blocktype() {
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.i++
			return
		}
	}
	r.sleb(5) // a type index as s33
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.u32() // offset (memory64 offsets are u64; refused by the runtime anyway)
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func appendS32(dst []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

func appendU32(dst []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if v == 0 {
			return dst
		}
	}
}
