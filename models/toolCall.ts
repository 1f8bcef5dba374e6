/**
 * Executable transcription of `spec/ToolCall.tla`: tool calls as transactions over a durable log.
 *
 * When to use: exhaustive exploration (test/models/toolCall.model.test.ts), refinement tests that
 * drive the real executor and recovery beside it, and trace validation. Every TLA+ variable is a
 * field of {@link ToolCallState}, every TLA+ action a function of the same name, every `...Inv` an
 * entry of {@link invariants}. Written from the spec, never from `src/`: a model copied from the
 * implementation proves nothing.
 *
 * Details: states are plain JSON data (arrays, objects, strings, numbers, booleans) so they can be
 * keyed by a canonical serialisation. Sets (`running`, `effected`) are arrays sorted ascending, so
 * that equal TLA+ sets serialise equally. Actions are pure: `(state, args, constants?) => state |
 * null`, `null` meaning the action is disabled (its TLA+ guard is false). They never mutate their
 * input.
 *
 * Gotcha: a call's lifecycle state is never stored: {@link callState} folds it from the log (plus
 * `running`: a call whose latest record is `started` but which no longer runs in this process is
 * `inDoubt`). The idempotency key is {@link keyOf}`(c)`, the same string for every attempt (the
 * spec's `KeyOf(c) == <<"key", c>>`; the model writes it `"key:" + c`, a bijection).
 *
 * @example
 * const s1 = Propose(Init(), { c: "c2" })
 * const s2 = s1 && Start(s1, { c: "c2" })
 * const s3 = s2 && Execute(s2, { c: "c2" })
 * // s3.executed["key:c2"] = 1, callState(s3, "c2") = "started"
 */

import { canonical } from "./canonical.ts"

export type Call = string
export type Key = string

/** ToolCall.tla `Semantics[c]`: what re-running the tool's effect means (design §5). */
export type Semantics = "readOnly" | "idempotent" | "compensatable" | "unsafe"

/**
 * ToolCall.tla `FailReasons`: "error" (the tool or reconcile said so), "unknown" (nobody knows),
 * "rejected" (closed before any attempt: {@link rejectedRecord}, attempt 0, never retryable).
 */
export type FailReason = "error" | "unknown" | "rejected"

/** One journal record. Mirrors the record shapes of ToolCall.tla (attempt 0 only in {@link rejectedRecord}). */
export type ToolCallRecord =
  | { readonly type: "proposed"; readonly key: Key }
  | { readonly type: "started"; readonly attempt: number; readonly key: Key }
  | { readonly type: "succeeded" | "cancelled" | "timedOut" | "compensated"; readonly attempt: number }
  | { readonly type: "failed"; readonly attempt: number; readonly retryable: boolean; readonly reason: FailReason }

export type RecordType = ToolCallRecord["type"]

/**
 * ToolCall.tla `CallState(c)`: the lifecycle of one call (the states of the ToolCall machine
 * between proposal and authorization, which issue 5 adds). "absent": not proposed yet.
 */
export type CallState = "absent" | "proposed" | "started" | "inDoubt" | "succeeded" | "failed" | "cancelled" | "timedOut" | "compensated"

/** The TLA+ variables; see ToolCall.tla for what each one means. */
export interface ToolCallState {
  /** the durable journal, per call: `log[c]` is c's records in order (every record is durable once appended) */
  readonly log: Readonly<Record<Call, readonly ToolCallRecord[]>>
  /** calls whose current attempt is in flight in this process (sorted); lost at a crash */
  readonly running: readonly Call[]
  /** the external world: executions of the effect per idempotency key */
  readonly executed: Readonly<Record<Key, number>>
  /** running calls whose current attempt's effect has happened (sorted); lost at a crash */
  readonly effected: readonly Call[]
  /** crashes so far */
  readonly crashes: number
  /** the process is up */
  readonly up: boolean
}

/** The CONSTANTS of ToolCall.tla. The four semantics sets partition `calls`. */
export interface ToolCallConstants {
  readonly calls: readonly Call[]
  readonly readOnlyCalls: readonly Call[]
  readonly idempotentCalls: readonly Call[]
  readonly compensatableCalls: readonly Call[]
  readonly unsafeCalls: readonly Call[]
  /** the calls whose tool offers `reconcile(key)`; compensatable or unsafe ones only */
  readonly hasReconcile: readonly Call[]
  /** attempts per call, the first included (Retry and Rerun share the budget) */
  readonly maxAttempts: number
  /** bound on Crash */
  readonly maxCrashes: number
}

/**
 * The constants of spec/MCToolCall.cfg: c1 unsafe without reconcile (in doubt: CloseUnknown), c2
 * idempotent (Retry, Rerun), c3 compensatable with reconcile (Reconcile, Compensate).
 */
export const MC: ToolCallConstants = {
  calls: ["c1", "c2", "c3"],
  readOnlyCalls: [],
  idempotentCalls: ["c2"],
  compensatableCalls: ["c3"],
  unsafeCalls: ["c1"],
  hasReconcile: ["c3"],
  maxAttempts: 2,
  maxCrashes: 2
}

export const variables = ["log", "running", "executed", "effected", "crashes", "up"] as const
export const actionNames = [
  "Propose",
  "Start",
  "Reject",
  "Execute",
  "Succeed",
  "Fail",
  "TimeOut",
  "Cancel",
  "Retry",
  "Compensate",
  "Crash",
  "Recover",
  "Rerun",
  "Reconcile",
  "CloseUnknown"
] as const
export const invariantNames = ["TypeInv", "WalInv", "PairingInv", "AtMostOnceInv", "KeyStableInv", "LifecycleInv", "CompensationInv", "OutcomeInv"] as const

export type ActionName = (typeof actionNames)[number]
export type InvariantName = (typeof invariantNames)[number]

/** Parameters of each action (the existentially quantified variables of Next). */
export interface ActionArgs {
  Propose: { readonly c: Call }
  Start: { readonly c: Call }
  Reject: { readonly c: Call }
  Execute: { readonly c: Call }
  Succeed: { readonly c: Call }
  Fail: { readonly c: Call; readonly retryable: boolean }
  TimeOut: { readonly c: Call }
  Cancel: { readonly c: Call }
  Retry: { readonly c: Call }
  Compensate: { readonly c: Call }
  Crash: Record<string, never>
  Recover: Record<string, never>
  Rerun: { readonly c: Call }
  Reconcile: { readonly c: Call }
  CloseUnknown: { readonly c: Call }
}

/** One enabled step: the action, its parameters and the successor state. */
export type Step = {
  [A in ActionName]: { readonly action: A; readonly args: ActionArgs[A]; readonly state: ToolCallState }
}[ActionName]

// ---------------------------------------------------------------------------------------------
// Constants and derived state (folds over the log)
// ---------------------------------------------------------------------------------------------

/** ToolCall.tla `KeyOf(c)`: the idempotency key, deterministic from the call, the same for every attempt. */
export const keyOf = (c: Call): Key => `key:${c}`

/** ToolCall.tla `Semantics[c]`. */
export function semantics(c: Call, k: ToolCallConstants = MC): Semantics {
  if (k.readOnlyCalls.includes(c)) return "readOnly"
  if (k.idempotentCalls.includes(c)) return "idempotent"
  if (k.compensatableCalls.includes(c)) return "compensatable"
  if (k.unsafeCalls.includes(c)) return "unsafe"
  throw new Error(`call ${c} has no semantics`)
}

/** ToolCall.tla `Rerunnable`: readOnly and idempotent calls, whose effect may run again under the same key. */
export const isRerunnable = (c: Call, k: ToolCallConstants = MC): boolean => k.readOnlyCalls.includes(c) || k.idempotentCalls.includes(c)

/** ToolCall.tla `OutcomeTypes`: the record types that close an attempt. */
export const outcomeTypes: ReadonlySet<RecordType> = new Set(["succeeded", "failed", "cancelled", "timedOut"])

/** ToolCall.tla `RejectedRecord`: the outcome of a call closed before any attempt (`Reject`); final. */
export const rejectedRecord: ToolCallRecord = Object.freeze({ type: "failed", attempt: 0, retryable: false, reason: "rejected" })

/** `r = RejectedRecord` (field by field, as TLA+ record equality). */
const isRejection = (r: ToolCallRecord): boolean => r.type === "failed" && r.attempt === 0 && r.retryable === false && r.reason === "rejected"

/** ToolCall.tla `Last(log[c])`: c's latest record, or undefined (the spec's `NoRecord`). */
export const latest = (s: ToolCallState, c: Call): ToolCallRecord | undefined => s.log[c]?.at(-1)

/** ToolCall.tla `Attempt(c)`: the attempt of c's last `started` record, 0 if none. */
export function attempt(s: ToolCallState, c: Call): number {
  const records = s.log[c] ?? []
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]
    if (r !== undefined && r.type === "started") return r.attempt
  }
  return 0
}

/** ToolCall.tla `HasOutcome(seq, a)`: some outcome record in `records` closes attempt `a`. */
export const hasOutcome = (records: readonly ToolCallRecord[], a: number): boolean =>
  records.some((r) => outcomeTypes.has(r.type) && r.type !== "proposed" && r.attempt === a)

/**
 * ToolCall.tla `CallState(c)`: the type of c's latest record ("absent" if none), except that a
 * call whose latest record is `started` and which is not running in this process is "inDoubt"
 * (only a crash takes a started call out of `running` without an outcome).
 */
export function callState(s: ToolCallState, c: Call): CallState {
  const r = latest(s, c)
  if (r === undefined) return "absent"
  if (r.type === "started") return s.running.includes(c) ? "started" : "inDoubt"
  return r.type
}

/** ToolCall.tla `Open(c)`: c has a started attempt without an outcome (running or in doubt). */
export const isOpen = (s: ToolCallState, c: Call): boolean => {
  const st = callState(s, c)
  return st === "started" || st === "inDoubt"
}

/** ToolCall.tla `Settled`: up, nothing running, no call in doubt (what recovery establishes before the next model turn). */
export const settled = (s: ToolCallState, k: ToolCallConstants = MC): boolean =>
  s.up && s.running.length === 0 && k.calls.every((c) => callState(s, c) !== "inDoubt")

/** ToolCall.tla `CanFollow(prev, r)`: record `r` is a lifecycle step from its call's previous record (undefined: none). */
export function canFollow(prev: ToolCallRecord | undefined, r: ToolCallRecord): boolean {
  switch (r.type) {
    case "proposed":
      return prev === undefined
    case "started":
      return (prev?.type === "proposed" && r.attempt === 1) || (prev?.type === "failed" && prev.retryable && r.attempt === prev.attempt + 1)
    case "succeeded":
    case "failed":
    case "cancelled":
    case "timedOut":
      return (prev?.type === "started" && r.attempt === prev.attempt) || (prev?.type === "proposed" && isRejection(r))
    case "compensated":
      return prev?.type === "succeeded" && r.attempt === prev.attempt
  }
}

const add = (set: readonly Call[], c: Call): readonly Call[] => (set.includes(c) ? set : [...set, c].sort())
const remove = (set: readonly Call[], c: Call): readonly Call[] => set.filter((x) => x !== c)
const isCall = (c: Call, k: ToolCallConstants): boolean => k.calls.includes(c)

/** Appends records to c's journal (durably: there is no buffer in this spec). */
const append = (s: ToolCallState, c: Call, ...records: ToolCallRecord[]): ToolCallState["log"] => ({ ...s.log, [c]: [...(s.log[c] ?? []), ...records] })

// ---------------------------------------------------------------------------------------------
// Actions (same names and guards as ToolCall.tla)
// ---------------------------------------------------------------------------------------------

export function Init(k: ToolCallConstants = MC): ToolCallState {
  return {
    log: Object.fromEntries(k.calls.map((c) => [c, []])),
    running: [],
    executed: Object.fromEntries(k.calls.map((c) => [keyOf(c), 0])),
    effected: [],
    crashes: 0,
    up: true
  }
}

export function Propose(s: ToolCallState, { c }: ActionArgs["Propose"], k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || !isCall(c, k) || callState(s, c) !== "absent") return null
  return { ...s, log: append(s, c, { type: "proposed", key: keyOf(c) }) }
}

export function Start(s: ToolCallState, { c }: ActionArgs["Start"], k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || !isCall(c, k) || callState(s, c) !== "proposed") return null
  return { ...s, log: append(s, c, { type: "started", attempt: 1, key: keyOf(c) }), running: add(s.running, c) }
}

export function Reject(s: ToolCallState, { c }: ActionArgs["Reject"], k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || !isCall(c, k) || callState(s, c) !== "proposed") return null
  return { ...s, log: append(s, c, rejectedRecord) }
}

export function Execute(s: ToolCallState, { c }: ActionArgs["Execute"]): ToolCallState | null {
  if (!s.up || !s.running.includes(c) || s.effected.includes(c) || latest(s, c)?.type !== "started") return null
  const key = keyOf(c)
  return { ...s, executed: { ...s.executed, [key]: (s.executed[key] ?? 0) + 1 }, effected: add(s.effected, c) }
}

/** ToolCall.tla `CloseAttempt(c, r)`: append outcome `r` of c's current attempt; c stops running. */
function closeAttempt(s: ToolCallState, c: Call, r: ToolCallRecord): ToolCallState {
  return { ...s, log: append(s, c, r), running: remove(s.running, c), effected: remove(s.effected, c) }
}

export function Succeed(s: ToolCallState, { c }: ActionArgs["Succeed"]): ToolCallState | null {
  if (!s.up || !s.running.includes(c) || !s.effected.includes(c)) return null
  return closeAttempt(s, c, { type: "succeeded", attempt: attempt(s, c) })
}

/** `retryable` is the error's; the record is retryable only if the tool may retry too (a promise that Retry follows). */
export function Fail(s: ToolCallState, { c, retryable }: ActionArgs["Fail"], k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || !s.running.includes(c)) return null
  const promised = retryable && isRerunnable(c, k) && attempt(s, c) < k.maxAttempts
  return closeAttempt(s, c, { type: "failed", attempt: attempt(s, c), retryable: promised, reason: "error" })
}

export function TimeOut(s: ToolCallState, { c }: ActionArgs["TimeOut"]): ToolCallState | null {
  if (!s.up || !s.running.includes(c)) return null
  return closeAttempt(s, c, { type: "timedOut", attempt: attempt(s, c) })
}

export function Cancel(s: ToolCallState, { c }: ActionArgs["Cancel"]): ToolCallState | null {
  if (!s.up || !s.running.includes(c)) return null
  return closeAttempt(s, c, { type: "cancelled", attempt: attempt(s, c) })
}

export function Retry(s: ToolCallState, { c }: ActionArgs["Retry"], k: ToolCallConstants = MC): ToolCallState | null {
  const r = latest(s, c)
  if (!s.up || r?.type !== "failed" || !r.retryable || !isRerunnable(c, k) || r.attempt >= k.maxAttempts) return null
  return { ...s, log: append(s, c, { type: "started", attempt: r.attempt + 1, key: keyOf(c) }), running: add(s.running, c) }
}

export function Compensate(s: ToolCallState, { c }: ActionArgs["Compensate"], k: ToolCallConstants = MC): ToolCallState | null {
  const r = latest(s, c)
  if (!s.up || r?.type !== "succeeded" || !k.compensatableCalls.includes(c)) return null
  return { ...s, log: append(s, c, { type: "compensated", attempt: r.attempt }) }
}

export function Crash(s: ToolCallState, _args: ActionArgs["Crash"] = {}, k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || s.crashes >= k.maxCrashes) return null
  return { ...s, up: false, running: [], effected: [], crashes: s.crashes + 1 }
}

export function Recover(s: ToolCallState, _args: ActionArgs["Recover"] = {}): ToolCallState | null {
  if (s.up) return null
  return { ...s, up: true }
}

export function Rerun(s: ToolCallState, { c }: ActionArgs["Rerun"], k: ToolCallConstants = MC): ToolCallState | null {
  const a = attempt(s, c)
  if (!s.up || callState(s, c) !== "inDoubt" || !isRerunnable(c, k) || a >= k.maxAttempts) return null
  const lost: ToolCallRecord = { type: "failed", attempt: a, retryable: true, reason: "unknown" }
  return { ...s, log: append(s, c, lost, { type: "started", attempt: a + 1, key: keyOf(c) }), running: add(s.running, c) }
}

export function Reconcile(s: ToolCallState, { c }: ActionArgs["Reconcile"], k: ToolCallConstants = MC): ToolCallState | null {
  if (!s.up || callState(s, c) !== "inDoubt" || !k.hasReconcile.includes(c)) return null
  const a = attempt(s, c)
  const happened = (s.executed[keyOf(c)] ?? 0) > 0
  const r: ToolCallRecord = happened ? { type: "succeeded", attempt: a } : { type: "failed", attempt: a, retryable: false, reason: "error" }
  return { ...s, log: append(s, c, r) }
}

export function CloseUnknown(s: ToolCallState, { c }: ActionArgs["CloseUnknown"], k: ToolCallConstants = MC): ToolCallState | null {
  const a = attempt(s, c)
  if (!s.up || callState(s, c) !== "inDoubt" || k.hasReconcile.includes(c) || (isRerunnable(c, k) && a < k.maxAttempts)) return null
  return { ...s, log: append(s, c, { type: "failed", attempt: a, retryable: false, reason: "unknown" }) }
}

/**
 * ToolCall.tla `Next`: every enabled step, one per action and binding of its existential
 * parameters (in the order of Next's disjuncts). Distinct bindings may lead to the same state.
 */
export function next(s: ToolCallState, k: ToolCallConstants = MC): Step[] {
  const steps: Step[] = []
  const perCall = <A extends Exclude<ActionName, "Fail" | "Crash" | "Recover">>(
    action: A,
    f: (s: ToolCallState, args: { readonly c: Call }, k: ToolCallConstants) => ToolCallState | null
  ): void => {
    for (const c of k.calls) {
      const state = f(s, { c }, k)
      if (state) steps.push({ action, args: { c }, state } as Step)
    }
  }
  perCall("Propose", Propose)
  perCall("Start", Start)
  perCall("Reject", Reject)
  perCall("Execute", Execute)
  perCall("Succeed", Succeed)
  for (const c of k.calls) {
    for (const retryable of [false, true]) {
      const state = Fail(s, { c, retryable }, k)
      if (state) steps.push({ action: "Fail", args: { c, retryable }, state })
    }
  }
  perCall("TimeOut", TimeOut)
  perCall("Cancel", Cancel)
  perCall("Retry", Retry)
  perCall("Compensate", Compensate)
  const crashed = Crash(s, {}, k)
  if (crashed) steps.push({ action: "Crash", args: {}, state: crashed })
  const recovered = Recover(s)
  if (recovered) steps.push({ action: "Recover", args: {}, state: recovered })
  perCall("Rerun", Rerun)
  perCall("Reconcile", Reconcile)
  perCall("CloseUnknown", CloseUnknown)
  return steps
}

// ---------------------------------------------------------------------------------------------
// Invariants (same names as ToolCall.tla)
// ---------------------------------------------------------------------------------------------

const isNat = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0
const inRange = (n: unknown, lo: number, hi: number): boolean => isNat(n) && n >= lo && n <= hi

/** ToolCall.tla `Records`: exact field sets and value ranges. */
function isRecord(r: unknown, k: ToolCallConstants): r is ToolCallRecord {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return false
  const o = r as Record<string, unknown>
  const fields = Object.keys(o).sort().join(",")
  const keyOk = typeof o.key === "string" && k.calls.some((c) => keyOf(c) === o.key)
  const attemptOk = inRange(o.attempt, 1, k.maxAttempts)
  switch (o.type) {
    case "proposed":
      return fields === "key,type" && keyOk
    case "started":
      return fields === "attempt,key,type" && keyOk && attemptOk
    case "succeeded":
    case "cancelled":
    case "timedOut":
    case "compensated":
      return fields === "attempt,type" && attemptOk
    case "failed":
      // `[... reason : FailReasons \ {"rejected"}] \cup {RejectedRecord}`: attempt 0 and "rejected" go together.
      return (
        fields === "attempt,reason,retryable,type" &&
        ((attemptOk && typeof o.retryable === "boolean" && (o.reason === "error" || o.reason === "unknown")) ||
          (o.attempt === 0 && o.retryable === false && o.reason === "rejected"))
      )
    default:
      return false
  }
}

/** A set of calls: a sorted array of distinct calls. */
const isCallSet = (set: unknown, k: ToolCallConstants): boolean =>
  Array.isArray(set) && set.every((c, i) => typeof c === "string" && k.calls.includes(c) && (i === 0 || (set[i - 1] as string) < c))

/** A function over exactly the given domain. */
const hasDomain = (f: unknown, domain: readonly string[]): boolean =>
  typeof f === "object" && f !== null && !Array.isArray(f) && canonical(Object.keys(f).sort()) === canonical([...domain].sort())

const recordsOf = (s: ToolCallState, c: Call): readonly ToolCallRecord[] => s.log[c] ?? []

/** c's `started` records, in order. */
const startedOf = (s: ToolCallState, c: Call): ToolCallRecord[] => recordsOf(s, c).filter((r) => r.type === "started")

export function TypeInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return (
    hasDomain(s.log, k.calls) &&
    Object.values(s.log).every((records) => Array.isArray(records) && records.every((r) => isRecord(r, k))) &&
    isCallSet(s.running, k) &&
    hasDomain(s.executed, k.calls.map(keyOf)) &&
    Object.values(s.executed).every(isNat) &&
    isCallSet(s.effected, k) &&
    inRange(s.crashes, 0, k.maxCrashes) &&
    typeof s.up === "boolean"
  )
}

export function WalInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return (
    k.calls.every((c) => (s.executed[keyOf(c)] ?? 0) <= startedOf(s, c).length) &&
    s.running.every((c) => latest(s, c)?.type === "started") &&
    s.effected.every((c) => s.running.includes(c)) &&
    (s.up || s.running.length === 0)
  )
}

export function PairingInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  const isSettled = settled(s, k)
  return k.calls.every((c) => {
    const log = recordsOf(s, c)
    const outcomes = log.flatMap((r, i) => (outcomeTypes.has(r.type) && r.type !== "proposed" ? [{ a: r.attempt, i }] : []))
    const unique = outcomes.every(({ a, i }) => outcomes.every((o) => o.i === i || o.a !== a))
    const follow = outcomes.every(
      ({ a, i }) => log.slice(0, i).some((q) => q.type === "started" && q.attempt === a) || (a === 0 && i > 0 && log[i - 1]?.type === "proposed")
    )
    const open = log.flatMap((r, i) => (r.type === "started" && !hasOutcome(log, r.attempt) ? [i] : []))
    const openIsLast = open.every((i) => i === log.length - 1)
    return unique && follow && openIsLast && (!isSettled || open.length === 0)
  })
}

export function AtMostOnceInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return k.calls.every((c) => {
    const n = s.executed[keyOf(c)] ?? 0
    return isRerunnable(c, k) ? n <= k.maxAttempts : n <= 1 && startedOf(s, c).length <= 1
  })
}

export function KeyStableInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  const keysDistinct = new Set(k.calls.map(keyOf)).size === k.calls.length
  return (
    keysDistinct &&
    k.calls.every(
      (c) =>
        recordsOf(s, c).every((r) => (r.type !== "proposed" && r.type !== "started") || r.key === keyOf(c)) &&
        startedOf(s, c).every((r, n) => r.type === "started" && r.attempt === n + 1)
    )
  )
}

export function LifecycleInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return k.calls.every((c) => recordsOf(s, c).every((r, i, log) => canFollow(log[i - 1], r)))
}

export function CompensationInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return k.calls.every((c) => {
    const log = recordsOf(s, c)
    const compensations = log.filter((r) => r.type === "compensated").length
    return log.every((r, i) => {
      if (r.type !== "compensated") return true
      const succeededBefore = log.slice(0, i).some((q) => q.type === "succeeded" && q.attempt === r.attempt)
      return k.compensatableCalls.includes(c) && succeededBefore && compensations === 1
    })
  })
}

export function OutcomeInv(s: ToolCallState, k: ToolCallConstants = MC): boolean {
  return k.calls.every((c) => recordsOf(s, c).every((r) => r.type !== "succeeded" || (s.executed[keyOf(c)] ?? 0) > 0))
}

export const invariants: Readonly<Record<InvariantName, (s: ToolCallState, k?: ToolCallConstants) => boolean>> = {
  TypeInv,
  WalInv,
  PairingInv,
  AtMostOnceInv,
  KeyStableInv,
  LifecycleInv,
  CompensationInv,
  OutcomeInv
}

// Canonical serialisation (state identity, as TLC's fingerprint is value identity): shared by the models.
export { canonical }
