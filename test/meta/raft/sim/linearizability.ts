/**
 * A linearizability checker for a key-value register history (put / get / cas),
 * after Wing & Gong with Lowe's just-in-time linearisation and memoisation of
 * (linearised-set, state) — the algorithm porcupine and knossos use.
 *
 * The history is checked per key (P-compositionality: a history over independent
 * objects is linearizable iff each object's sub-history is).
 *
 * Operations:
 *  - completed: invoke < response, output known;
 *  - took effect at an unknown time: `response` is undefined (or Infinity) but the
 *    output is known — it must be linearised somewhere after its invoke;
 *  - indeterminate: `output` undefined — a write whose outcome the client never
 *    learned; it may or may not have taken effect, at any point after its invoke.
 *    An indeterminate get constrains nothing and is ignored.
 *
 * Ops that share a timestamp are treated as concurrent (calls sort before returns).
 */

export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'cas'; key: string; expected: string | undefined; value: string };

export type KvOutput = { kind: 'put' } | { kind: 'get'; value: string | undefined } | { kind: 'cas'; ok: boolean };

export interface HistoryOp {
  /** Unique within the history (used in explanations). */
  id: number;
  client?: number;
  input: KvInput;
  invoke: number;
  /** When the client learned the output; undefined/Infinity: never (see output). */
  response?: number;
  /** undefined: indeterminate (the op may or may not have taken effect). */
  output?: KvOutput;
}

export type CheckResult =
  | { ok: true; status: 'ok'; /** keys whose search hit the budget (unknown, not failed) */ inconclusive: string[] }
  | { ok: false; status: 'violation'; key: string; explanation: string; ops: HistoryOp[] };

export interface CheckOptions {
  /** Max memoised configurations per key before giving up (inconclusive). Default 2,000,000. */
  maxStates?: number;
  /** Try to shrink a failing key's history (dropping reads) for the explanation. Default true. */
  shrink?: boolean;
  /** Prune useless moves of floating writes (sound with unique written values). Default true; off only to test the pruning. */
  prune?: boolean;
}

type State = string | undefined;

export function formatOp(op: HistoryOp): string {
  const i = op.input;
  let call: string;
  switch (i.kind) {
    case 'put':
      call = `put(${i.key}, ${JSON.stringify(i.value)})`;
      break;
    case 'get':
      call = `get(${i.key})`;
      break;
    case 'cas':
      call = `cas(${i.key}, ${i.expected === undefined ? 'undefined' : JSON.stringify(i.expected)} -> ${JSON.stringify(i.value)})`;
      break;
  }
  let out: string;
  const o = op.output;
  if (o === undefined) out = '?';
  else if (o.kind === 'put') out = 'ok';
  else if (o.kind === 'get') out = o.value === undefined ? 'undefined' : JSON.stringify(o.value);
  else out = String(o.ok);
  const resp = op.response === undefined || op.response === Infinity ? '∞' : String(op.response);
  const who = op.client === undefined ? '' : ` c${op.client}`;
  return `#${op.id}${who} ${call} -> ${out} [${op.invoke}, ${resp}]`;
}

function isReadOnly(op: HistoryOp): boolean {
  if (op.input.kind === 'get') return true;
  return op.input.kind === 'cas' && op.output?.kind === 'cas' && !op.output.ok;
}

/** Check a whole multi-key history. */
export function checkHistory(history: readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    let list = byKey.get(op.input.key);
    if (!list) byKey.set(op.input.key, (list = []));
    list.push(op);
  }
  const inconclusive: string[] = [];
  const keys = [...byKey.keys()].sort();
  for (const key of keys) {
    const ops = byKey.get(key)!;
    const r = checkKey(ops, options.maxStates ?? 2_000_000, options.prune !== false);
    if (r.status === 'unknown') {
      inconclusive.push(key);
      continue;
    }
    if (r.status === 'violation') {
      let failing = ops;
      let detail = r;
      if (options.shrink !== false) {
        failing = shrink(ops, options.maxStates ?? 2_000_000);
        const again = checkKey(failing, options.maxStates ?? 2_000_000);
        if (again.status === 'violation') detail = again;
        else failing = ops;
      }
      return {
        ok: false,
        status: 'violation',
        key,
        ops: failing,
        explanation: explain(key, ops.length, failing, detail),
      };
    }
  }
  return { ok: true, status: 'ok', inconclusive };
}

/**
 * Drop ops while the key's history stays non-linearizable — only ops whose removal
 * cannot create a violation of its own: reads (get, failed cas) always; puts whose
 * value nobody observed when the key has no failed or indeterminate cas.
 */
function shrink(ops: HistoryOp[], maxStates: number): HistoryOp[] {
  if (ops.length > 400) return ops;
  let current = ops.slice();
  const hasFragileCas = ops.some((o) => o.input.kind === 'cas' && (o.output === undefined || (o.output.kind === 'cas' && !o.output.ok)));
  const observed = new Set<string>();
  for (const o of ops) {
    if (o.input.kind === 'get' && o.output?.kind === 'get' && o.output.value !== undefined) observed.add(o.output.value);
    if (o.input.kind === 'cas' && o.input.expected !== undefined) observed.add(o.input.expected);
  }
  const removable = (o: HistoryOp): boolean => {
    if (isReadOnly(o)) return true;
    if (o.output === undefined && o.input.kind === 'get') return true;
    return !hasFragileCas && o.input.kind === 'put' && o.output !== undefined && !observed.has(o.input.value);
  };
  let budget = 600;
  for (let i = current.length - 1; i >= 0 && budget > 0; i--) {
    const op = current[i]!;
    if (!removable(op)) continue;
    const candidate = current.slice(0, i).concat(current.slice(i + 1));
    budget--;
    if (checkKey(candidate, Math.min(maxStates, 200_000)).status === 'violation') current = candidate;
  }
  return current;
}

interface Violation {
  status: 'violation';
  /** The deepest partial linearisation the search found (in order). */
  deepest: HistoryOp[];
  /** The op whose response came before it could be linearised at that point. */
  blockedBy: HistoryOp | undefined;
  /** Ops concurrent with blockedBy that were not linearised at that point. */
  pending: HistoryOp[];
}

type KeyResult = { status: 'ok' } | { status: 'unknown' } | Violation;

function explain(key: string, total: number, ops: HistoryOp[], v: Violation): string {
  const lines: string[] = [];
  lines.push(`key ${JSON.stringify(key)}: history of ${total} ops is not linearizable` + (ops.length < total ? ` (a non-linearizable sub-history of ${ops.length} ops below)` : ''));
  const tail = v.deepest.slice(-10);
  lines.push(`  longest linearizable prefix: ${v.deepest.length} ops` + (tail.length < v.deepest.length ? ` (last ${tail.length} shown)` : '') + ':');
  for (const op of tail) lines.push(`    ${formatOp(op)}`);
  if (v.blockedBy) lines.push(`  then nothing fits before this op returns: ${formatOp(v.blockedBy)}`);
  if (v.pending.length > 0) {
    lines.push('  ops still open at that point:');
    for (const op of v.pending.slice(0, 12)) lines.push(`    ${formatOp(op)}`);
  }
  if (ops.length <= 40) {
    lines.push('  ops involved:');
    for (const op of [...ops].sort((a, b) => a.invoke - b.invoke)) lines.push(`    ${formatOp(op)}`);
  }
  return lines.join('\n');
}

interface Ev {
  op: number;
  isCall: boolean;
  time: number;
  prev: Ev | null;
  next: Ev | null;
  /** call: its return event. */
  ret: Ev | null;
}

/** The op as the search sees it (output/response possibly tightened, see prepare()). */
interface SearchOp {
  orig: HistoryOp;
  input: KvInput;
  output: KvOutput | undefined;
  invoke: number;
  /** Infinity when unknown. */
  response: number;
}

/** Model step: the new state, or null if the op's output is impossible in `s`. */
function step(s: State, op: SearchOp): { s: State } | null {
  const i = op.input;
  const o = op.output;
  switch (i.kind) {
    case 'put':
      return { s: i.value };
    case 'get':
      if (o === undefined) return { s };
      return o.kind === 'get' && o.value === s ? { s } : null;
    case 'cas': {
      const match = s === i.expected;
      if (o !== undefined && (o.kind !== 'cas' || o.ok !== match)) return null;
      return { s: match ? i.value : s };
    }
  }
}

function readOnly(op: SearchOp): boolean {
  if (op.input.kind === 'get') return true;
  return op.output !== undefined && op.output.kind === 'cas' && !op.output.ok;
}

function stateKey(s: State): string {
  return s === undefined ? '\u0000' : `=${s}`;
}

/**
 * When every written value of the key is unique, a write whose value some op with a
 * known output observed (a get returning it, a successful cas expecting it) certainly
 * took effect, before that observer returned: give it that output and deadline.
 */
function prepare(ops: readonly HistoryOp[]): { ops: SearchOp[]; unique: boolean; observed: Set<string> } {
  const out: SearchOp[] = ops.map((o) => ({
    orig: o,
    input: o.input,
    output: o.output,
    invoke: o.invoke,
    response: o.output === undefined || o.response === undefined ? Infinity : o.response,
  }));
  const observed = new Set<string>();
  const writers = new Map<string, SearchOp>();
  for (const o of out) {
    if (o.input.kind === 'get') continue;
    if (writers.has(o.input.value)) return { ops: out, unique: false, observed }; // not unique: no tightening
    writers.set(o.input.value, o);
  }
  // To a fixpoint: a tightened cas observes the value it expected in turn.
  for (let changed = true; changed; ) {
    changed = false;
    for (const o of out) {
      if (o.output === undefined) continue;
      let v: string | undefined;
      if (o.input.kind === 'get' && o.output.kind === 'get') v = o.output.value;
      else if (o.input.kind === 'cas' && o.output.kind === 'cas' && o.output.ok) v = o.input.expected;
      if (v === undefined) continue;
      observed.add(v);
      const w = writers.get(v);
      if (!w || w === o) continue;
      if (w.output === undefined) {
        w.output = w.input.kind === 'put' ? { kind: 'put' } : { kind: 'cas', ok: true };
        changed = true;
      }
      if (o.response < w.response) {
        w.response = o.response;
        changed = true;
      }
    }
  }
  return { ops: out, unique: true, observed };
}

/** Checks one key's sub-history. */
export function checkKey(allOps: readonly HistoryOp[], maxStates: number, prune = true): KeyResult {
  // An indeterminate get constrains nothing.
  const prepared = prepare(allOps.filter((o) => !(o.output === undefined && o.input.kind === 'get')));
  const ops = prepared.ops;
  const n = ops.length;
  if (n === 0) return { status: 'ok' };

  // Ops that respond at a known time, and reads, are scanned in time order (Lowe).
  // Writes with no known response time ("floating": they must — or, with no output,
  // may — take effect some time after their invoke) are tried only after those, so
  // the search does not branch on them until they are needed.
  const events: Ev[] = [];
  const callOf: (Ev | null)[] = new Array<Ev | null>(n).fill(null);
  const floats: number[] = [];
  let remaining = 0;
  for (let k = 0; k < n; k++) {
    const op = ops[k]!;
    const given = op.orig.response;
    if (op.orig.output !== undefined && given !== undefined && given < op.invoke) {
      throw new Error(`op #${op.orig.id} responds (${given}) before its invoke (${op.invoke})`);
    }
    if (op.output !== undefined) remaining++;
    if (op.response === Infinity && !readOnly(op)) {
      floats.push(k);
      continue;
    }
    const call: Ev = { op: k, isCall: true, time: op.invoke, prev: null, next: null, ret: null };
    callOf[k] = call;
    events.push(call);
    if (op.response !== Infinity) {
      const ret: Ev = { op: k, isCall: false, time: op.response, prev: null, next: null, ret: null };
      call.ret = ret;
      events.push(ret);
    }
  }
  floats.sort((a, b) => ops[a]!.invoke - ops[b]!.invoke || a - b);
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.op - b.op;
  });
  const head: Ev = { op: -1, isCall: false, time: -Infinity, prev: null, next: null, ret: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (e: Ev): void => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const r = e.ret;
    if (r) {
      r.prev!.next = r.next;
      if (r.next) r.next.prev = r.prev;
    }
  };
  const unlift = (e: Ev): void => {
    const r = e.ret;
    if (r) {
      r.prev!.next = r;
      if (r.next) r.next.prev = r;
    }
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };

  const words = new Uint32Array(Math.ceil(n / 32));
  const has = (k: number): boolean => (words[k >>> 5]! & (1 << (k & 31))) !== 0;
  const setBit = (k: number): void => {
    words[k >>> 5] = words[k >>> 5]! | (1 << (k & 31));
  };
  const clearBit = (k: number): void => {
    words[k >>> 5] = words[k >>> 5]! & ~(1 << (k & 31));
  };
  const memoKey = (s: State): string => {
    let key = '';
    for (let w = 0; w < words.length; w++) key += words[w]!.toString(36) + ',';
    return key + stateKey(s);
  };

  interface Frame {
    op: number;
    /** State before the move. */
    state: State;
    /** The only move worth trying from its configuration (a valid read): if it fails, so does the configuration. */
    forced: boolean;
    phase: 1 | 2;
    /** Phase 2: position in floats to resume from, and the time bound. */
    fpos: number;
    bound: number;
  }

  /**
   * Pruning floating writes (sound when written values are unique; see the argument
   * in the header): an optional write that changes nothing is useless; a write of a
   * value nobody observed is only worth linearising right before an op it enables —
   * a failed cas expecting the current value, or an optional cas expecting the new
   * value — or, for one that must be linearised, once everything else that returns
   * has been (then it can go last).
   */
  const worthTrying = (k: number, op: SearchOp, next: State): boolean => {
    const optional = op.output === undefined;
    if (optional && next === state) return false;
    if (!prune) return true;
    if (!prepared.unique || op.input.kind === 'get') return true;
    if (!optional && op.input.kind !== 'put') return true;
    if (prepared.observed.has(op.input.value)) return true;
    if (!optional && bound === Infinity) return true;
    for (let e = head.next; e !== null && e.isCall; e = e.next) {
      const f = ops[e.op]!;
      if (f.input.kind === 'cas' && f.output?.kind === 'cas' && !f.output.ok && f.input.expected === state) return true;
    }
    for (const j of floats) {
      if (j === k || has(j)) continue;
      const f = ops[j]!;
      if (f.invoke > bound) break;
      if (f.output === undefined && f.input.kind === 'cas' && f.input.expected === next) return true;
    }
    return false;
  };

  /**
   * Values still needed: with unique written values, once the state moves away from
   * a value (or from "absent") it never comes back, so a write that leaves a state
   * some pending op must still observe (a get returning it, a successful cas
   * expecting it) leads nowhere.
   */
  const needKey: (string | null)[] = ops.map((op) => {
    if (!prepared.unique || op.output === undefined) return null;
    if (op.input.kind === 'get' && op.output.kind === 'get') return stateKey(op.output.value);
    if (op.input.kind === 'cas' && op.output.kind === 'cas' && op.output.ok) return stateKey(op.input.expected);
    return null;
  });
  const needs = new Map<string, number>();
  const addNeed = (k: number, d: number): void => {
    const nk = needKey[k];
    if (nk !== null && nk !== undefined) needs.set(nk, (needs.get(nk) ?? 0) + d);
  };
  for (let k = 0; k < n; k++) addNeed(k, 1);
  const strands = (k: number, next: State): boolean => {
    if (!prepared.unique || next === state) return false;
    const sk = stateKey(state);
    let c = needs.get(sk) ?? 0;
    if (needKey[k] === sk) c--;
    return c > 0;
  };

  const cache = new Set<string>();
  const stack: Frame[] = [];
  let state: State = undefined;
  let phase: 1 | 2 = 1;
  let entry: Ev | null = head.next;
  let fpos = 0;
  let bound = Infinity;
  let deepest: number[] = [];
  let deepestBlock: Ev | null = null;

  while (remaining > 0) {
    let move = -1;
    let forced = false;
    let fail = false;
    if (phase === 1) {
      while (entry !== null && entry.isCall) {
        const op = ops[entry.op]!;
        const r: { s: State } | null = step(state, op);
        if (r !== null && !strands(entry.op, r.s)) {
          setBit(entry.op);
          const key = memoKey(r.s);
          clearBit(entry.op);
          const seen = cache.has(key);
          if (readOnly(op)) {
            // A read valid now can be linearised now without loss of generality.
            if (seen) fail = true;
            else {
              move = entry.op;
              forced = true;
            }
            break;
          }
          if (!seen) {
            move = entry.op;
            break;
          }
        }
        entry = entry.next;
      }
      if (move < 0 && !fail) {
        phase = 2;
        fpos = 0;
        bound = entry === null ? Infinity : entry.time;
        if (stack.length >= deepest.length && entry !== null) {
          deepest = stack.map((f) => f.op);
          deepestBlock = entry;
        }
      }
    }
    if (phase === 2 && move < 0 && !fail) {
      while (fpos < floats.length) {
        const k = floats[fpos]!;
        const op = ops[k]!;
        if (op.invoke > bound) break;
        fpos++;
        if (has(k)) continue;
        const r: { s: State } | null = step(state, op);
        if (r === null) continue;
        if (strands(k, r.s) || !worthTrying(k, op, r.s)) continue;
        setBit(k);
        const key = memoKey(r.s);
        clearBit(k);
        if (!cache.has(key)) {
          move = k;
          break;
        }
      }
    }

    if (move >= 0) {
      const op = ops[move]!;
      const r: { s: State } = step(state, op)!;
      setBit(move);
      cache.add(memoKey(r.s));
      if (cache.size > maxStates) return { status: 'unknown' };
      stack.push({ op: move, state, forced, phase, fpos, bound });
      addNeed(move, -1);
      state = r.s;
      if (op.output !== undefined) remaining--;
      const call = callOf[move];
      if (call) lift(call);
      phase = 1;
      entry = head.next;
      continue;
    }

    // Every move from this configuration failed: undo moves until one has alternatives left.
    let frame: Frame | undefined;
    for (;;) {
      frame = stack.pop();
      if (!frame) break;
      state = frame.state;
      addNeed(frame.op, 1);
      clearBit(frame.op);
      if (ops[frame.op]!.output !== undefined) remaining++;
      const call = callOf[frame.op];
      if (call) unlift(call);
      if (!frame.forced) break;
    }
    if (!frame) break;
    phase = frame.phase;
    fpos = frame.fpos;
    bound = frame.bound;
    entry = phase === 1 ? callOf[frame.op]!.next : null;
  }
  if (remaining === 0) return { status: 'ok' };

  const linearized = new Set(deepest);
  const blocked = deepestBlock ? ops[deepestBlock.op] : undefined;
  const pending: HistoryOp[] = [];
  if (blocked) {
    for (let k = 0; k < n; k++) {
      const op = ops[k]!;
      if (linearized.has(k) || op === blocked) continue;
      if (op.invoke <= blocked.response) pending.push(op.orig);
    }
  }
  return { status: 'violation', deepest: deepest.map((k) => ops[k]!.orig), blockedBy: blocked?.orig, pending };
}
