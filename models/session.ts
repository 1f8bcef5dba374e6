/**
 * Executable transcription of `spec/Session.tla`: the session journal at batch granularity.
 *
 * When to use: exhaustive exploration (test/models/session.model.test.ts), refinement tests that
 * drive the real journal beside it, and trace validation. Every TLA+ variable is a field of
 * {@link SessionState}, every TLA+ action a function of the same name, every `...Inv` an entry of
 * {@link invariants}. Written from the spec, never from `src/`: a model copied from the
 * implementation proves nothing.
 *
 * Details: states are plain JSON data (arrays, objects, strings, numbers, booleans) so they can be
 * keyed by a canonical serialisation. Actions are pure: `(state, args, constants?) => state | null`,
 * `null` meaning the action is disabled (its TLA+ guard is false). They never mutate their input.
 *
 * Gotcha: ids are positions in `log ++ buf` (1-based), over all record types, not a count of
 * entries. `StaleWrite` is enabled but changes nothing (a self-loop): it names the refusal. The
 * lifecycle status is never stored either: {@link status} folds it from the records.
 *
 * @example
 * const s1 = AcquireLease(Init(), { w: "w1" })
 * const s2 = s1 && Append(s1, { w: "w1", b: "main" })
 * // s2.buf[0] = { type: "entry", id: 2, parent: 0, branch: "main", epoch: 1 }
 */

import { canonical } from "./canonical.ts"

export type Writer = string
export type Branch = string

/** One journal record: one committed batch. Mirrors the record shapes of Session.tla. */
export type SessionRecord =
  | { readonly type: "lease"; readonly epoch: number }
  | {
      readonly type: "entry"
      readonly id: number
      readonly parent: number
      readonly branch: Branch
      readonly epoch: number
    }
  | { readonly type: "fork"; readonly branch: Branch; readonly at: number; readonly epoch: number }
  | { readonly type: "switch"; readonly branch: Branch; readonly epoch: number }
  | { readonly type: "suspend"; readonly epoch: number }
  | { readonly type: "close"; readonly epoch: number }

/** Session.tla `Status(seq)`: the session lifecycle (the states of src/session/SessionMachine.ts). */
export type Status = "open" | "active" | "suspended" | "closed"

/** The TLA+ variables; see Session.tla for what each one means. */
export interface SessionState {
  /** durable (fsynced) records */
  readonly log: readonly SessionRecord[]
  /** records written by the holder, not yet flushed nor acknowledged */
  readonly buf: readonly SessionRecord[]
  /** the durable file ends with a partial record (only while down) */
  readonly torn: boolean
  /** highest lease epoch granted so far (0 = never) */
  readonly epoch: number
  /** the lease holder, or {@link None} */
  readonly holder: Writer
  /** the epoch each writer believes it holds (0 = none) */
  readonly wEpoch: Readonly<Record<Writer, number>>
  /** the acknowledged prefix (what was flushed) */
  readonly acked: readonly SessionRecord[]
  /** the journal is open */
  readonly up: boolean
}

/** The CONSTANTS of Session.tla. */
export interface SessionConstants {
  readonly writers: readonly Writer[]
  readonly branches: readonly Branch[]
  readonly maxRecords: number
  readonly maxEpoch: number
}

/** The constants of spec/MCSession.cfg. */
export const MC: SessionConstants = {
  writers: ["w1", "w2"],
  branches: ["main", "b1"],
  maxRecords: 4,
  maxEpoch: 2
}

/** The value of `holder` while nobody holds the lease (Session.tla `None`). */
export const None = "none"

/** The first branch; exists from the start with head 0. */
const main: Branch = "main"

export const variables = ["log", "buf", "torn", "epoch", "holder", "wEpoch", "acked", "up"] as const
export const actionNames = ["AcquireLease", "Append", "Fork", "Switch", "Flush", "StaleWrite", "Expire", "Crash", "Recover", "Suspend", "Close"] as const
export const invariantNames = ["TypeInv", "TreeInv", "BranchHeadsInv", "SingleWriterInv", "NoLostUpdateInv", "PrefixRecoveryInv", "LifecycleInv"] as const

export type ActionName = (typeof actionNames)[number]
export type InvariantName = (typeof invariantNames)[number]

/** Parameters of each action (the existentially quantified variables of Next). */
export interface ActionArgs {
  AcquireLease: { readonly w: Writer }
  Append: { readonly w: Writer; readonly b: Branch }
  Fork: { readonly w: Writer; readonly b: Branch; readonly at: number }
  Switch: { readonly w: Writer; readonly b: Branch }
  Flush: Record<string, never>
  StaleWrite: { readonly w: Writer }
  Expire: Record<string, never>
  Crash: { readonly k: number; readonly torn: boolean }
  Recover: Record<string, never>
  Suspend: { readonly w: Writer }
  Close: { readonly w: Writer }
}

/** One enabled step: the action, its parameters and the successor state. */
export type Step = {
  [A in ActionName]: { readonly action: A; readonly args: ActionArgs[A]; readonly state: SessionState }
}[ActionName]

// ---------------------------------------------------------------------------------------------
// Derived state (folds over a record sequence)
// ---------------------------------------------------------------------------------------------

const has = (o: object, key: string): boolean => Object.hasOwn(o, key)

/**
 * Session.tla `Heads(seq)`: [branch -> head entry id] for the branches that exist. "main" starts
 * at 0; an entry moves its branch's head (an entry naming a missing branch changes nothing); a
 * fork creates its branch with head `at`.
 */
export function heads(records: readonly SessionRecord[]): Record<Branch, number> {
  const h: Record<Branch, number> = { [main]: 0 }
  for (const r of records) {
    if (r.type === "entry") {
      if (has(h, r.branch)) h[r.branch] = r.id
    } else if (r.type === "fork") {
      h[r.branch] = r.at
    }
  }
  return h
}

/** Session.tla `Active(seq)`: the branch of the last switch record, or "main". */
export function active(records: readonly SessionRecord[]): Branch {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]
    if (r !== undefined && r.type === "switch") return r.branch
  }
  return main
}

/**
 * Session.tla `Status(seq)`: the fold of the records through the lifecycle. "open" before any
 * record; lease -> "active", suspend -> "suspended", close -> "closed"; entry, fork and switch
 * records leave it unchanged.
 */
export function status(records: readonly SessionRecord[]): Status {
  let st: Status = "open"
  for (const r of records) {
    if (r.type === "lease") st = "active"
    else if (r.type === "suspend") st = "suspended"
    else if (r.type === "close") st = "closed"
  }
  return st
}

/** Session.tla `ActiveOnly`: the record types an active session alone accepts. */
const activeOnly: ReadonlySet<SessionRecord["type"]> = new Set(["entry", "fork", "switch", "suspend", "close"])

/** Session.tla `Entries(seq)`: the ids of the entries. */
export function entries(records: readonly SessionRecord[]): Set<number> {
  const ids = new Set<number>()
  for (const r of records) if (r.type === "entry") ids.add(r.id)
  return ids
}

/**
 * Session.tla `LeaseEpochBefore(seq, i)`: the epoch of the last lease record strictly before
 * 1-based position `i`, or 0.
 */
export function leaseEpochBefore(records: readonly SessionRecord[], i: number): number {
  for (let j = Math.min(i - 1, records.length); j >= 1; j--) {
    const r = records[j - 1]
    if (r !== undefined && r.type === "lease") return r.epoch
  }
  return 0
}

/** Session.tla `HeadsWellFormed(seq)`. */
export function headsWellFormed(records: readonly SessionRecord[]): boolean {
  const h = heads(records)
  const ids = entries(records)
  if (!has(h, active(records))) return false
  return Object.values(h).every((head) => head === 0 || ids.has(head))
}

/** Session.tla `WellPlaced(seq, i)` (1-based `i`). */
function wellPlaced(records: readonly SessionRecord[], i: number): boolean {
  const r = records[i - 1]
  if (r === undefined) return false
  const h = heads(records.slice(0, i - 1))
  const isEarlierEntry = (j: number): boolean => j < i && records[j - 1]?.type === "entry"
  switch (r.type) {
    case "entry":
      return r.id === i && has(h, r.branch) && r.parent === h[r.branch] && (r.parent === 0 || isEarlierEntry(r.parent))
    case "fork":
      return !has(h, r.branch) && (r.at === 0 || isEarlierEntry(r.at))
    case "switch":
      return has(h, r.branch)
    case "lease":
    case "suspend":
    case "close":
      return true
  }
}

/** Session.tla `log \o buf`. */
const journal = (s: SessionState): readonly SessionRecord[] => [...s.log, ...s.buf]

/** Session.tla `HasRoom`. */
const hasRoom = (s: SessionState, c: SessionConstants): boolean => s.log.length + s.buf.length < c.maxRecords

/** Session.tla `CanWrite(w)`: open, w holds the lease, and w's epoch is the one in force. */
const canWrite = (s: SessionState, w: Writer): boolean => s.up && s.holder === w && s.wEpoch[w] === s.epoch

/** Session.tla `Status(log \o buf) = "active"`. */
const isActive = (s: SessionState): boolean => status(journal(s)) === "active"

/** The next record position (its id if it is an entry). */
const nextId = (s: SessionState): number => s.log.length + s.buf.length + 1

// ---------------------------------------------------------------------------------------------
// Actions (same names and guards as Session.tla)
// ---------------------------------------------------------------------------------------------

export function Init(c: SessionConstants = MC): SessionState {
  return {
    log: [],
    buf: [],
    torn: false,
    epoch: 0,
    holder: None,
    wEpoch: Object.fromEntries(c.writers.map((w) => [w, 0])),
    acked: [],
    up: true
  }
}

export function AcquireLease(s: SessionState, { w }: ActionArgs["AcquireLease"], c: SessionConstants = MC): SessionState | null {
  if (!s.up || s.holder !== None || status(s.log) === "closed" || s.epoch >= c.maxEpoch || !hasRoom(s, c)) return null
  const epoch = s.epoch + 1
  const log: readonly SessionRecord[] = [...s.log, { type: "lease", epoch }]
  return { ...s, epoch, holder: w, wEpoch: { ...s.wEpoch, [w]: epoch }, log, acked: log }
}

export function Append(s: SessionState, { w, b }: ActionArgs["Append"], c: SessionConstants = MC): SessionState | null {
  if (!canWrite(s, w) || !isActive(s) || !hasRoom(s, c)) return null
  const h = heads(journal(s))
  const parent = h[b]
  if (!has(h, b) || parent === undefined) return null
  const record: SessionRecord = { type: "entry", id: nextId(s), parent, branch: b, epoch: s.epoch }
  return { ...s, buf: [...s.buf, record] }
}

export function Fork(s: SessionState, { w, b, at }: ActionArgs["Fork"], c: SessionConstants = MC): SessionState | null {
  if (!canWrite(s, w) || !isActive(s) || !hasRoom(s, c)) return null
  const j = journal(s)
  if (has(heads(j), b)) return null
  if (at !== 0 && !entries(j).has(at)) return null
  return { ...s, buf: [...s.buf, { type: "fork", branch: b, at, epoch: s.epoch }] }
}

export function Switch(s: SessionState, { w, b }: ActionArgs["Switch"], c: SessionConstants = MC): SessionState | null {
  if (!canWrite(s, w) || !isActive(s) || !hasRoom(s, c)) return null
  if (!has(heads(journal(s)), b)) return null
  return { ...s, buf: [...s.buf, { type: "switch", branch: b, epoch: s.epoch }] }
}

export function Flush(s: SessionState, _args: ActionArgs["Flush"] = {}): SessionState | null {
  if (!s.up || s.buf.length === 0) return null
  const log = [...s.log, ...s.buf]
  return { ...s, log, buf: [], acked: log }
}

export function StaleWrite(s: SessionState, { w }: ActionArgs["StaleWrite"]): SessionState | null {
  const believed = s.wEpoch[w]
  if (!s.up || believed === undefined || believed === 0 || believed === s.epoch) return null
  return s
}

export function Expire(s: SessionState, _args: ActionArgs["Expire"] = {}): SessionState | null {
  if (!s.up || s.holder === None || s.buf.length > 0) return null
  return { ...s, holder: None }
}

export function Crash(s: SessionState, { k, torn }: ActionArgs["Crash"]): SessionState | null {
  if (!s.up || !Number.isInteger(k) || k < 0 || k > s.buf.length) return null
  return {
    ...s,
    log: [...s.log, ...s.buf.slice(0, k)],
    torn,
    buf: [],
    holder: None,
    wEpoch: Object.fromEntries(Object.keys(s.wEpoch).map((w) => [w, 0])),
    up: false
  }
}

export function Recover(s: SessionState, _args: ActionArgs["Recover"] = {}): SessionState | null {
  if (s.up) return null
  return { ...s, torn: false, up: true }
}

/**
 * Session.tla `Suspend(w)` and `Close(w)`: once w's appends are durable (`buf` empty), the record
 * is written and flushed alone, and w lets go of its lease cleanly (`wEpoch[w] = 0`: not stale).
 */
function endActivity(s: SessionState, w: Writer, type: "suspend" | "close", c: SessionConstants): SessionState | null {
  if (!canWrite(s, w) || !isActive(s) || s.buf.length > 0 || !hasRoom(s, c)) return null
  const log: readonly SessionRecord[] = [...s.log, { type, epoch: s.epoch }]
  return { ...s, log, acked: log, holder: None, wEpoch: { ...s.wEpoch, [w]: 0 } }
}

export function Suspend(s: SessionState, { w }: ActionArgs["Suspend"], c: SessionConstants = MC): SessionState | null {
  return endActivity(s, w, "suspend", c)
}

export function Close(s: SessionState, { w }: ActionArgs["Close"], c: SessionConstants = MC): SessionState | null {
  return endActivity(s, w, "close", c)
}

/**
 * Session.tla `Next`: every enabled step, one per action and binding of its existential
 * parameters (in the order of Next's disjuncts). Distinct bindings may lead to the same state.
 */
export function next(s: SessionState, c: SessionConstants = MC): Step[] {
  const steps: Step[] = []
  for (const w of c.writers) {
    const state = AcquireLease(s, { w }, c)
    if (state) steps.push({ action: "AcquireLease", args: { w }, state })
  }
  for (const w of c.writers) {
    for (const b of c.branches) {
      const state = Append(s, { w, b }, c)
      if (state) steps.push({ action: "Append", args: { w, b }, state })
    }
  }
  for (const w of c.writers) {
    for (const b of c.branches) {
      for (let at = 0; at <= c.maxRecords; at++) {
        const state = Fork(s, { w, b, at }, c)
        if (state) steps.push({ action: "Fork", args: { w, b, at }, state })
      }
    }
  }
  for (const w of c.writers) {
    for (const b of c.branches) {
      const state = Switch(s, { w, b }, c)
      if (state) steps.push({ action: "Switch", args: { w, b }, state })
    }
  }
  const flushed = Flush(s)
  if (flushed) steps.push({ action: "Flush", args: {}, state: flushed })
  for (const w of c.writers) {
    const state = StaleWrite(s, { w })
    if (state) steps.push({ action: "StaleWrite", args: { w }, state })
  }
  const expired = Expire(s)
  if (expired) steps.push({ action: "Expire", args: {}, state: expired })
  for (let k = 0; k <= s.buf.length; k++) {
    for (const torn of [false, true]) {
      const state = Crash(s, { k, torn })
      if (state) steps.push({ action: "Crash", args: { k, torn }, state })
    }
  }
  const recovered = Recover(s)
  if (recovered) steps.push({ action: "Recover", args: {}, state: recovered })
  for (const w of c.writers) {
    const state = Suspend(s, { w }, c)
    if (state) steps.push({ action: "Suspend", args: { w }, state })
  }
  for (const w of c.writers) {
    const state = Close(s, { w }, c)
    if (state) steps.push({ action: "Close", args: { w }, state })
  }
  return steps
}

// ---------------------------------------------------------------------------------------------
// Invariants (same names as Session.tla)
// ---------------------------------------------------------------------------------------------

const isNat = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0
const inRange = (n: unknown, lo: number, hi: number): boolean => isNat(n) && n >= lo && n <= hi

/** Session.tla `Records`: exact field sets and value ranges. */
function isRecord(r: unknown, c: SessionConstants): r is SessionRecord {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return false
  const o = r as Record<string, unknown>
  const fields = Object.keys(o).sort().join(",")
  const epochOk = inRange(o.epoch, 1, c.maxEpoch)
  const branchOk = typeof o.branch === "string" && c.branches.includes(o.branch)
  switch (o.type) {
    case "lease":
      return fields === "epoch,type" && epochOk
    case "entry":
      return fields === "branch,epoch,id,parent,type" && epochOk && branchOk && inRange(o.id, 1, c.maxRecords) && inRange(o.parent, 0, c.maxRecords)
    case "fork":
      return fields === "at,branch,epoch,type" && epochOk && branchOk && inRange(o.at, 0, c.maxRecords)
    case "switch":
      return fields === "branch,epoch,type" && epochOk && branchOk
    case "suspend":
    case "close":
      return fields === "epoch,type" && epochOk
    default:
      return false
  }
}

const isSeqOf = (s: unknown, c: SessionConstants): boolean => Array.isArray(s) && s.every((r) => isRecord(r, c))

const isPrefix = (p: readonly SessionRecord[], s: readonly SessionRecord[]): boolean =>
  p.length <= s.length && p.every((r, i) => canonical(r) === canonical(s[i]))

export function TypeInv(s: SessionState, c: SessionConstants = MC): boolean {
  const wEpochKeys = Object.keys(s.wEpoch).sort()
  return (
    isSeqOf(s.log, c) &&
    isSeqOf(s.buf, c) &&
    s.log.length + s.buf.length <= c.maxRecords &&
    typeof s.torn === "boolean" &&
    inRange(s.epoch, 0, c.maxEpoch) &&
    (s.holder === None || c.writers.includes(s.holder)) &&
    canonical(wEpochKeys) === canonical([...c.writers].sort()) &&
    Object.values(s.wEpoch).every((e) => inRange(e, 0, c.maxEpoch)) &&
    isSeqOf(s.acked, c) &&
    typeof s.up === "boolean"
  )
}

export function TreeInv(s: SessionState): boolean {
  const j = journal(s)
  for (let i = 1; i <= j.length; i++) if (!wellPlaced(j, i)) return false
  return true
}

export function BranchHeadsInv(s: SessionState): boolean {
  return headsWellFormed(journal(s))
}

export function SingleWriterInv(s: SessionState): boolean {
  const writers = Object.keys(s.wEpoch)
  const inForce = writers.filter((w) => s.epoch !== 0 && s.wEpoch[w] === s.epoch)
  return (
    inForce.length <= 1 &&
    (s.holder === None || s.wEpoch[s.holder] === s.epoch) &&
    writers.every((w) => (s.wEpoch[w] ?? 0) <= s.epoch) &&
    (s.buf.length === 0 || s.holder !== None) &&
    s.epoch === leaseEpochBefore(s.log, s.log.length + 1)
  )
}

export function NoLostUpdateInv(s: SessionState): boolean {
  const j = journal(s)
  return isPrefix(s.acked, s.log) && j.every((r, i) => r.type === "lease" || r.epoch === leaseEpochBefore(j, i + 1))
}

export function PrefixRecoveryInv(s: SessionState): boolean {
  return (!s.up || !s.torn) && (s.up || (s.buf.length === 0 && s.holder === None)) && headsWellFormed(s.log)
}

export function LifecycleInv(s: SessionState): boolean {
  const j = journal(s)
  return (
    j.every((r, i) => !activeOnly.has(r.type) || status(j.slice(0, i)) === "active") &&
    j.every((r, i) => r.type !== "close" || i === j.length - 1) &&
    (s.holder === None || status(j) === "active")
  )
}

export const invariants: Readonly<Record<InvariantName, (s: SessionState, c?: SessionConstants) => boolean>> = {
  TypeInv,
  TreeInv,
  BranchHeadsInv,
  SingleWriterInv,
  NoLostUpdateInv,
  PrefixRecoveryInv,
  LifecycleInv
}

// Canonical serialisation (state identity, as TLC's fingerprint is value identity): shared by the models.
export { canonical }
