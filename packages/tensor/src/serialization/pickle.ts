/**
 * A restricted pickle reader and a small pickle writer: plain data only, never arbitrary
 * objects (no code runs, no class is instantiated).
 *
 * Reading handles the opcodes of protocols 2–4 that data structures use: containers (dict,
 * list, tuple, set, frozenset), str, bytes, int (any size), float, bool, None, the memo,
 * MARK, REDUCE / BUILD on allowed globals, and persistent ids (handed to the caller, e.g.
 * torch storages). Globals are allowed by exact name: `collections OrderedDict`,
 * `builtins set` / `frozenset` (also as `__builtin__`), `_codecs encode` (how protocol 2
 * writes bytes), plus whatever the caller adds (torch's tensor rebuild functions and
 * storage types, see pth.ts). Any other global — `os system`, `builtins eval`, a custom
 * class, a numpy array — is an error naming it; so is an opcode outside this subset
 * (naming the opcode and its byte offset), e.g. NEWOBJ / INST / OBJ that create instances.
 *
 * Values: dict → `PyDict` (a Map; `ordered` for OrderedDict), list → Array, tuple →
 * `PyTuple` (an Array subclass), set / frozenset → Set, str → string, bytes → Uint8Array,
 * int → number (bigint beyond ±2^53), float → number, bool → boolean, None → null.
 *
 * Writing emits protocol 2 (what torch.save uses) for the same values plus `PyGlobal`
 * (a class reference), `PyReduce` (callable(*args)) and `PyPersistent` (a persistent id).
 * A JS number that is an integer is written as a Python int, any other number as a float.
 */

/** Dictionary keys this reader accepts (Python's hashable scalars). */
export type PyKey = string | number | bigint | boolean | null;

/** A Python tuple (an Array, so it reads like one; `instanceof PyTuple` tells it from a list). */
export class PyTuple<T = unknown> extends Array<T> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
  static fromItems<T>(items: readonly T[]): PyTuple<T> {
    const t = new PyTuple<T>();
    for (const x of items) t.push(x);
    return t;
  }
}

/** A Python dict (insertion-ordered); `ordered` when it was / is to be a collections.OrderedDict. */
export class PyDict<V = unknown> extends Map<PyKey, V> {
  ordered = false;
  /** Instance attributes set by BUILD (e.g. a state dict's `_metadata`). */
  attributes: PyDict | null = null;
}

/** A reference to a Python global (`module name`), written as GLOBAL. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** `callable(*args)`, written as GLOBAL + args + REDUCE. */
export class PyReduce {
  constructor(readonly callable: PyGlobal, readonly args: readonly unknown[]) {}
}

/** A persistent id, written as the id's pickle + BINPERSID. */
export class PyPersistent {
  constructor(readonly pid: unknown) {}
}

/** An invalid pickle or one outside the allowed subset, naming the source. */
export class PickleError extends Error {
  override name = 'PickleError';
  constructor(readonly source: string, detail: string) {
    super(`${source}: ${detail}`);
  }
}

/** A global the reader may resolve: a value (e.g. a storage type) and/or a function REDUCE may call. */
export interface AllowedGlobal {
  /** What GLOBAL pushes (default: a PyGlobal). */
  value?: unknown;
  /** REDUCE on this global: returns the constructed value (args are already unpickled). */
  call?: (args: unknown[]) => unknown;
}

export interface UnpickleOptions {
  /** Name used in errors (a file, a zip entry). */
  source: string;
  /** Extra allowed globals by 'module name' (exact match). */
  globals?: ReadonlyMap<string, AllowedGlobal>;
  /** How to list the allowed globals in the error for a refused one (default: all their names). */
  allowedText?: string;
  /** BINPERSID: the value for a persistent id (absent: persistent ids are an error). */
  persistentLoad?: (pid: unknown) => unknown;
}

const MARK = Symbol('mark');

function toSet(args: unknown[], what: string): Set<PyKey> {
  const items = args.length === 0 ? [] : args[0];
  if (args.length > 1 || !Array.isArray(items)) throw new Error(`${what} expects one list argument`);
  const s = new Set<PyKey>();
  for (const x of items) {
    if (!isKey(x)) throw new Error(`${what} element of type ${describe(x)} is not supported (only str, int, float, bool and None)`);
    s.add(x);
  }
  return s;
}

function isKey(k: unknown): k is PyKey {
  return k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean';
}

/** The globals every pickle may use: plain containers and the way protocol 2 writes bytes. */
const BUILTIN_GLOBALS = new Map<string, AllowedGlobal>([
  ['collections OrderedDict', {
    call: (args) => {
      const d = new PyDict();
      d.ordered = true;
      if (args.length > 0) {
        const items = args[0];
        if (args.length > 1 || !Array.isArray(items)) throw new Error('OrderedDict expects at most one list of pairs');
        for (const kv of items) {
          if (!Array.isArray(kv) || kv.length !== 2) throw new Error('OrderedDict expects (key, value) pairs');
          if (!isKey(kv[0])) throw new Error(`a key of type ${describe(kv[0])} is not supported`);
          d.set(kv[0], kv[1]);
        }
      }
      return d;
    },
  }],
  ...['builtins', '__builtin__'].flatMap((m) => [
    [`${m} set`, { call: (args: unknown[]) => toSet(args, 'set') }] as [string, AllowedGlobal],
    [`${m} frozenset`, { call: (args: unknown[]) => toSet(args, 'frozenset') }] as [string, AllowedGlobal],
  ]),
  ['_codecs encode', {
    call: (args) => {
      const [s, enc] = args;
      if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new Error("_codecs.encode is allowed only as encode(str, 'latin1') (how protocol 2 writes bytes)");
      const b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 255) throw new Error('_codecs.encode: a latin1 string has a character above U+00FF');
        b[i] = c;
      }
      return b;
    },
  }],
]);

/** Names of the opcodes the reader refuses, for messages. */
const REFUSED: Record<number, string> = {
  0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x6f: 'OBJ', 0x69: 'INST', 0x49: 'INT', 0x4c: 'LONG', 0x53: 'STRING', 0x56: 'UNICODE', 0x46: 'FLOAT',
  0x67: 'GET', 0x70: 'PUT', 0x50: 'PERSID', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
  0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
};

function checkKey(k: unknown, source: string): PyKey {
  if (isKey(k)) return k;
  throw new PickleError(source, `a dict key or set element of type ${describe(k)} is not supported (only str, int, float, bool and None)`);
}

/** A short description of a value's Python-ish type, for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyTuple) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyGlobal) return `global ${v.module} ${v.name}`;
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

function intFromBytes(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Unpickles `data` (one pickle, up to its STOP). Returns the value and the offset after STOP
 * (a legacy torch file holds several pickles back to back).
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions, start = 0): { value: unknown; end: number } {
  const source = opts.source;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = start;
  let at = start;
  const fail = (detail: string): never => {
    throw new PickleError(source, `${detail} (pickle byte ${at})`);
  };
  const need = (n: number) => {
    if (p + n > data.length) fail('the pickle is truncated');
  };
  const u8 = () => (need(1), data[p++]!);
  const u16 = () => (need(2), (p += 2), dv.getUint16(p - 2, true));
  const i32 = () => (need(4), (p += 4), dv.getInt32(p - 4, true));
  const u32 = () => (need(4), (p += 4), dv.getUint32(p - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(data.length)) fail(`length ${v} is past the end of the pickle`);
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (p += n), data.subarray(p - n, p));
  const str = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };
  const line = () => {
    const nl = data.indexOf(0x0a, p);
    if (nl < 0) fail('GLOBAL is missing its newline');
    const s = new TextDecoder('latin1').decode(data.subarray(p, nl));
    p = nl + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    if (!marks.length) fail('no MARK on the stack');
    const m = marks.pop()!;
    return stack.splice(m);
  };
  const resolve = (module: string, name: string): unknown => {
    const key = `${module} ${name}`;
    const g = opts.globals?.get(key) ?? BUILTIN_GLOBALS.get(key);
    if (!g) {
      const allowed = opts.allowedText ?? [...BUILTIN_GLOBALS.keys(), ...(opts.globals?.keys() ?? [])].filter((k) => !k.startsWith('__builtin__')).join(', ');
      fail(`global '${key}' is not allowed: this reader builds tensors and plain data only and never runs code or builds arbitrary objects (allowed: ${allowed})`);
    }
    return g!.value ?? new PyGlobal(module, name);
  };
  const callOf = (f: unknown): ((args: unknown[]) => unknown) | undefined => {
    if (!(f instanceof PyGlobal)) return undefined;
    const key = `${f.module} ${f.name}`;
    return (opts.globals?.get(key) ?? BUILTIN_GLOBALS.get(key))?.call;
  };
  const setItems = (d: unknown, kvs: unknown[]) => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on a ${describe(d)}, expected a dict`);
    if (kvs.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kvs.length; i += 2) (d as PyDict).set(checkKey(kvs[i], source), kvs[i + 1]);
  };
  const appendItems = (l: unknown, xs: unknown[]) => {
    if (!Array.isArray(l) || l instanceof PyTuple) fail(`APPEND(S) on a ${describe(l)}, expected a list`);
    for (const x of xs) (l as unknown[]).push(x);
  };

  for (;;) {
    at = p;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`pickle protocol ${v} is not supported`);
        break;
      }
      case 0x95: // FRAME (protocol 4): a length hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: p };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x29: stack.push(new PyTuple()); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x74: stack.push(PyTuple.fromItems(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); stack.push(PyTuple.fromItems([a])); break; } // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(PyTuple.fromItems([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(PyTuple.fromItems([a, b, c])); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x61: { const x = pop(); appendItems(top(), [x]); break; } // APPEND
      case 0x65: { const xs = popMark(); appendItems(top(), xs); break; } // APPENDS
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kvs = popMark(); setItems(top(), kvs); break; } // SETITEMS
      case 0x90: { // ADDITEMS
        const xs = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on a ${describe(s)}, expected a set`);
        for (const x of xs) (s as Set<PyKey>).add(checkKey(x, source));
        break;
      }
      case 0x91: stack.push(new Set(popMark().map((x) => checkKey(x, source)))); break; // FROZENSET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: stack.push(intFromBytes(bytes(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0 || n > 4096) fail(`LONG4 of ${n} bytes is not supported`); stack.push(intFromBytes(bytes(n))); break; } // LONG4
      case 0x47: need(8); stack.push(dv.getFloat64(p, false)); p += 8; break; // BINFLOAT (big-endian)
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo key ${i} was never stored`);
        stack.push(memo.get(i));
        break;
      }
      case 0x63: { const module = line(), name = line(); stack.push(resolve(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL expects two strings');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('a persistent id, but this pickle may not have any');
        try {
          stack.push(opts.persistentLoad!(pid));
        } catch (e) {
          fail(`persistent id: ${(e as Error).message}`);
        }
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), f = pop();
        const call = callOf(f);
        if (!call) fail(`REDUCE calls ${describe(f)}, which is not a callable this reader allows`);
        if (!(args instanceof PyTuple)) fail(`REDUCE arguments must be a tuple, got ${describe(args)}`);
        try {
          stack.push(call!([...(args as PyTuple)]));
        } catch (e) {
          if (e instanceof PickleError) throw e;
          fail(`${String(f)}: ${(e as Error).message}`);
        }
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict && state instanceof PyDict) {
          // an OrderedDict with instance attributes (a torch state dict's `_metadata`)
          obj.attributes = state as PyDict;
        } else if (!(obj instanceof PyDict && state === null)) {
          fail(`BUILD sets the state of a ${describe(obj)} from a ${describe(state)}; only a dict's attributes are supported`);
        }
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default: {
        const name = REFUSED[op];
        fail(name ? `opcode ${name} (0x${op.toString(16)}) is not supported: it creates objects this reader does not build, or belongs to protocol 0/1 text pickles` : `unknown or unsupported opcode 0x${op.toString(16)}`);
      }
    }
  }
}

// ---- writing ----------------------------------------------------------------------------------

class ByteBuilder {
  private buf = new Uint8Array(256);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.length));
    this.buf = nb;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u32(v: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer).setUint32(this.length, v, true);
    this.length += 4;
  }
  f64be(v: number): void {
    this.ensure(8);
    new DataView(this.buf.buffer).setFloat64(this.length, v, false);
    this.length += 8;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function longBytes(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n; // arithmetic shift: stays negative for negative v
    const signBit = (out[out.length - 1]! & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
  }
  return Uint8Array.from(out);
}

/**
 * Protocol-2 pickle of `value`. `convert` may replace a value before it is written (e.g. a
 * Tensor by a PyReduce); anything still unknown after it is an error naming its path.
 */
export function pickle(value: unknown, convert: (v: unknown) => unknown = (v) => v): Uint8Array {
  const b = new ByteBuilder();
  const enc = new TextEncoder();
  const str = (s: string) => {
    const u = enc.encode(s);
    b.byte(0x58);
    b.u32(u.length);
    b.bytes(u);
  };
  const writeGlobal = (g: PyGlobal) => {
    b.byte(0x63);
    b.bytes(enc.encode(`${g.module}\n${g.name}\n`));
  };
  const int = (v: bigint) => {
    if (v >= 0n && v < 256n) (b.byte(0x4b), b.byte(Number(v)));
    else if (v >= 0n && v < 65536n) (b.byte(0x4d), b.byte(Number(v) & 0xff), b.byte(Number(v) >> 8));
    else if (v >= -(2n ** 31n) && v < 2n ** 31n) {
      b.byte(0x4a);
      const x = Number(v) | 0;
      b.byte(x & 0xff), b.byte((x >> 8) & 0xff), b.byte((x >> 16) & 0xff), b.byte((x >>> 24) & 0xff);
    } else {
      const bs = longBytes(v);
      if (bs.length > 255) throw new Error(`pickle: integer ${v} is too large`);
      b.byte(0x8a);
      b.byte(bs.length);
      b.bytes(bs);
    }
  };
  const seen = new Set<object>();
  const write = (raw: unknown, at: string): void => {
    const path = at || '<root>';
    const v = convert(raw);
    if (v === null || v === undefined) return b.byte(0x4e);
    if (v === true) return b.byte(0x88);
    if (v === false) return b.byte(0x89);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return int(BigInt(v));
      b.byte(0x47);
      return b.f64be(v);
    }
    if (typeof v === 'bigint') return int(v);
    if (typeof v === 'string') return str(v);
    if (typeof v !== 'object') throw new Error(`pickle: ${path}: cannot write a ${typeof v}`);
    if (seen.has(v)) throw new Error(`pickle: ${path}: the structure contains itself`);
    seen.add(v);
    try {
      if (v instanceof Uint8Array) {
        // protocol 2 writes bytes as _codecs.encode(latin1 str, 'latin1')
        writeGlobal(new PyGlobal('_codecs', 'encode'));
        let s = '';
        for (let i = 0; i < v.length; i++) s += String.fromCharCode(v[i]!);
        b.byte(0x28), str(s), str('latin1'), b.byte(0x74), b.byte(0x52);
      } else if (v instanceof PyGlobal) writeGlobal(v);
      else if (v instanceof PyPersistent) {
        write(v.pid, `${path}<pid>`);
        b.byte(0x51);
      } else if (v instanceof PyReduce) {
        writeGlobal(v.callable);
        b.byte(0x28);
        v.args.forEach((a, i) => write(a, `${path}<arg ${i}>`));
        b.byte(0x74);
        b.byte(0x52);
      } else if (v instanceof PyTuple) {
        if (v.length === 0) b.byte(0x29);
        else {
          b.byte(0x28);
          v.forEach((x, i) => write(x, `${at}[${i}]`));
          b.byte(0x74);
        }
      } else if (Array.isArray(v)) {
        b.byte(0x5d);
        for (let i = 0; i < v.length; i += 1000) {
          b.byte(0x28);
          for (let j = i; j < Math.min(v.length, i + 1000); j++) write(v[j], `${at}[${j}]`);
          b.byte(0x65);
        }
      } else if (v instanceof Set) {
        writeGlobal(new PyGlobal('__builtin__', 'set'));
        b.byte(0x5d);
        b.byte(0x28);
        for (const x of v) write(x, `${at}{}`);
        b.byte(0x65);
        b.byte(0x85);
        b.byte(0x52);
      } else if (v instanceof Map || Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
        const ordered = v instanceof PyDict && v.ordered;
        if (ordered) writeGlobal(new PyGlobal('collections', 'OrderedDict')), b.byte(0x29), b.byte(0x52);
        else b.byte(0x7d);
        const entries: [unknown, unknown][] = v instanceof Map ? [...v.entries()] : Object.entries(v);
        for (let i = 0; i < entries.length; i += 1000) {
          b.byte(0x28);
          for (const [k, x] of entries.slice(i, i + 1000)) {
            checkKey(k, `pickle: ${path}`);
            write(k, `${path} key`);
            write(x, at ? `${at}.${String(k)}` : String(k));
          }
          b.byte(0x75);
        }
      } else throw new Error(`pickle: ${path}: cannot write a ${describe(v)}`);
    } finally {
      seen.delete(v);
    }
  };
  b.byte(0x80);
  b.byte(2);
  write(value, '');
  b.byte(0x2e);
  return b.result();
}
