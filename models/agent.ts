/**
 * Executable transcription of `spec/Agent.tla`: agent runs, the loop of model turns and tool calls
 * over a group-committed journal.
 *
 * When to use: exhaustive exploration (test/models/agent.model.test.ts), refinement tests that drive
 * the real agent loop beside it, and trace validation. Every TLA+ variable is a field of
 * {@link AgentState}, every TLA+ action a function of the same name, every `...Inv` an entry of
 * {@link invariants}. Written from the spec, never from `src/`: a model copied from the
 * implementation proves nothing.
 *
 * Details: states are plain JSON data so they can be keyed by {@link canonical}. Sets (`open`,
 * `asked`, `overBudget`, a fold's `pending`) are arrays sorted ascending (`asked` by run, then
 * turn), so that equal TLA+ sets serialise equally. Actions are pure: `(state, args, constants?) =>
 * state | null`, `null` meaning the action is disabled (its TLA+ guard is false). They never mutate
 * their input.
 *
 * Gotcha: a run's lifecycle state is never stored: {@link runFold} folds it from the records (the
 * spec's `Fold`), {@link live} is the loop's view (`log ++ buf`), and {@link runStatus} its state
 * name. A call id is {@link callId}`(r, n, i)` = `"r.n.i"` (the spec's `CallId(r, n, i) == <<r, n,
 * i>>`, a bijection as long as run names contain no dot).
 *
 * @example
 * let s = StartRun(Init(), { r: "r1" })
 * s = s && AskModel(s, { r: "r1" })
 * s = s && RecordTurn(s, { r: "r1", k: 1 })
 * // runStatus(s, "r1") = "acting", live(s, "r1").pending = ["r1.1.1"]
 */

import { canonical } from "./canonical.ts"

export type Run = string
export type Call = string

/** Agent.tla `RunStates`: the states of the Agent machine. */
export type RunState = "idle" | "thinking" | "acting" | "waiting" | "done" | "cancelled" | "failed" | "timedOut"
/** Agent.tla `FinalStates`. */
export type FinalState = "done" | "cancelled" | "failed" | "timedOut"

/** One journal record (one batch). Mirrors the record shapes of Agent.tla. */
export type AgentRecord =
  | { readonly type: "started"; readonly run: Run }
  | { readonly type: "turn"; readonly run: Run; readonly turn: number; readonly calls: number }
  | { readonly type: "waiting" | "answered" | "settled"; readonly run: Run; readonly call: Call }
  | { readonly type: FinalState; readonly run: Run }

export type RecordType = AgentRecord["type"]

/** Agent.tla `Requests`: a model request in flight, for turn `turn` of run `run`. */
export interface Request {
  readonly run: Run
  readonly turn: number
}

/** The TLA+ variables; see Agent.tla for what each one means. */
export interface AgentState {
  /** the durable journal (all runs, in order) */
  readonly log: readonly AgentRecord[]
  /** records written after `log`, not durable yet; lost at a crash */
  readonly buf: readonly AgentRecord[]
  /** calls whose effect has started and whose outcome is not durable yet (sorted): running, or in doubt after a crash */
  readonly open: readonly Call[]
  /** model requests in flight (sorted by run, then turn); lost at a crash */
  readonly asked: readonly Request[]
  /** runs whose wall-clock or token budget ran out (sorted); survives a crash */
  readonly overBudget: readonly Run[]
  /** crashes so far */
  readonly crashes: number
  /** the process is up */
  readonly up: boolean
}

/** The CONSTANTS of Agent.tla. */
export interface AgentConstants {
  readonly runs: readonly Run[]
  /** the turns budget of a run */
  readonly turnsMax: number
  /** bound on the calls one turn proposes (a bound of the model, not a budget) */
  readonly maxCallsPerTurn: number
  /** bound on Crash */
  readonly maxCrashes: number
}

/**
 * The constants of spec/MCAgent.cfg: one run, two turns of up to two calls, one crash. (Two runs
 * multiply the space by the first run's histories: test/models/agent.model.test.ts also explores
 * `{ runs: ["r1", "r2"], turnsMax: 1, maxCallsPerTurn: 1, maxCrashes: 1 }` for SingleRunInv.)
 */
export const MC: AgentConstants = {
  runs: ["r1"],
  turnsMax: 2,
  maxCallsPerTurn: 2,
  maxCrashes: 1
}

export const variables = ["log", "buf", "open", "asked", "overBudget", "crashes", "up"] as const
export const actionNames = [
  "StartRun",
  "AskModel",
  "RecordTurn",
  "StartCall",
  "SettleCall",
  "Wait",
  "Answer",
  "Finish",
  "Cancel",
  "Fail",
  "TimeOut",
  "Exhaust",
  "Flush",
  "Crash",
  "Restart"
] as const
export const invariantNames = [
  "TypeInv",
  "LifecycleInv",
  "OneTerminalInv",
  "TurnWalInv",
  "NoReaskInv",
  "BudgetInv",
  "TerminalSettledInv",
  "SingleRunInv"
] as const

export type ActionName = (typeof actionNames)[number]
export type InvariantName = (typeof invariantNames)[number]

/** Parameters of each action (the existentially quantified variables of Next). */
export interface ActionArgs {
  StartRun: { readonly r: Run }
  AskModel: { readonly r: Run }
  RecordTurn: { readonly r: Run; readonly k: number }
  StartCall: { readonly c: Call }
  SettleCall: { readonly c: Call }
  Wait: { readonly c: Call }
  Answer: { readonly c: Call }
  Finish: { readonly r: Run }
  Cancel: { readonly r: Run }
  Fail: { readonly r: Run }
  TimeOut: { readonly r: Run }
  Exhaust: { readonly r: Run }
  Flush: Record<string, never>
  Crash: Record<string, never>
  Restart: Record<string, never>
}

/** One enabled step: the action, its parameters and the successor state. */
export type Step = {
  [A in ActionName]: { readonly action: A; readonly args: ActionArgs[A]; readonly state: AgentState }
}[ActionName]

// ---------------------------------------------------------------------------------------------
// Constants, records and calls
// ---------------------------------------------------------------------------------------------

export const runStates: readonly RunState[] = ["idle", "thinking", "acting", "waiting", "done", "cancelled", "failed", "timedOut"]
export const finalStates: ReadonlySet<RunState> = new Set<RunState>(["done", "cancelled", "failed", "timedOut"])
export const isFinal = (st: string): st is FinalState => finalStates.has(st as RunState)

/** Agent.tla `NoCall == << >>` (the empty tuple; here the empty string, as in the Agent machine). */
export const noCall = ""

/** Agent.tla `CallId(r, n, i)`: call i of turn n of run r. */
export const callId = (r: Run, n: number, i: number): Call => `${r}.${n}.${i}`

/** Agent.tla `RunOf(c)`, `TurnOf(c)` (and the position in the turn). */
export function parseCall(c: Call): { readonly run: Run; readonly turn: number; readonly index: number } {
  let parsed = parsedCalls.get(c)
  if (parsed === undefined) {
    const parts = c.split(".")
    parsed = Object.freeze({ run: parts[0] ?? "", turn: Number(parts[1]), index: Number(parts[2]) })
    parsedCalls.set(c, parsed)
  }
  return parsed
}
const parsedCalls = new Map<Call, { readonly run: Run; readonly turn: number; readonly index: number }>()
export const runOf = (c: Call): Run => parseCall(c).run
export const turnOf = (c: Call): number => parseCall(c).turn

/** Agent.tla `CallsOf(r, n, k)` (sorted). */
export function callsOf(r: Run, n: number, k: number): readonly Call[] {
  const key = `${r}.${n}.${k}`
  let calls = callsCache.get(key)
  if (calls === undefined) {
    calls = Object.freeze(Array.from({ length: k }, (_, i) => callId(r, n, i + 1)).sort())
    callsCache.set(key, calls)
  }
  return calls
}
const callsCache = new Map<string, readonly Call[]>()

/** Agent.tla `Calls` (sorted). */
export function allCalls(k: AgentConstants = MC): readonly Call[] {
  let calls = allCallsCache.get(k)
  if (calls === undefined) {
    calls = Object.freeze(k.runs.flatMap((r) => Array.from({ length: k.turnsMax }, (_, n) => callsOf(r, n + 1, k.maxCallsPerTurn)).flat()).sort())
    allCallsCache.set(k, calls)
  }
  return calls
}
const allCallsCache = new WeakMap<AgentConstants, readonly Call[]>()

export const startedRecord = (r: Run): AgentRecord => ({ type: "started", run: r })
export const turnRecord = (r: Run, n: number, k: number): AgentRecord => ({ type: "turn", run: r, turn: n, calls: k })
export const waitingRecord = (c: Call): AgentRecord => ({ type: "waiting", run: runOf(c), call: c })
export const answeredRecord = (c: Call): AgentRecord => ({ type: "answered", run: runOf(c), call: c })
export const settledRecord = (c: Call): AgentRecord => ({ type: "settled", run: runOf(c), call: c })
export const endRecord = (r: Run, st: FinalState): AgentRecord => ({ type: st, run: r })

/** TLA+ record equality (field by field). */
export const sameRecord = (a: AgentRecord, b: AgentRecord): boolean => canonical(a) === canonical(b)

// ---------------------------------------------------------------------------------------------
// The run fold (Agent.tla `InitFold`, `Step`, `Fold`, `RunStatus`)
// ---------------------------------------------------------------------------------------------

/** Agent.tla's fold value: what the Agent machine knows of one run. */
export interface RunFold {
  readonly status: RunState
  readonly turns: number
  /** calls of the last turn not settled yet (sorted) */
  readonly pending: readonly Call[]
  /** calls the last turn proposed */
  readonly lastCalls: number
  /** the call a person is asked about ({@link noCall} unless waiting) */
  readonly awaiting: Call
}

export const initFold: RunFold = Object.freeze({ status: "idle", turns: 0, pending: Object.freeze([]) as readonly Call[], lastCalls: 0, awaiting: noCall })

/** Agent.tla `Step(st, x)`; `null` is `Refused` (the record breaks the lifecycle). */
export function step(st: RunFold, x: AgentRecord, k: AgentConstants = MC): RunFold | null {
  switch (x.type) {
    case "started":
      return st.status === "idle" ? { ...st, status: "thinking" } : null
    case "turn":
      return st.status === "thinking" && x.turn === st.turns + 1 && x.turn <= k.turnsMax
        ? { status: "acting", turns: x.turn, pending: callsOf(x.run, x.turn, x.calls), lastCalls: x.calls, awaiting: noCall }
        : null
    case "settled": {
      if ((st.status !== "acting" && st.status !== "waiting") || !st.pending.includes(x.call)) return null
      const pending = st.pending.filter((c) => c !== x.call)
      if (st.status === "waiting" && x.call !== st.awaiting) return { ...st, pending }
      return { ...st, status: pending.length === 0 ? "thinking" : "acting", pending, awaiting: noCall }
    }
    case "waiting":
      return st.status === "acting" && st.pending.includes(x.call) ? { ...st, status: "waiting", awaiting: x.call } : null
    case "answered":
      return st.status === "waiting" && x.call === st.awaiting ? { ...st, status: "acting", awaiting: noCall } : null
    case "done":
      return st.status === "acting" && st.pending.length === 0 && st.lastCalls === 0 ? { ...st, status: "done" } : null
    case "cancelled":
    case "failed":
    case "timedOut":
      return st.status === "thinking" || (st.status === "acting" && st.pending.length === 0) ? { ...st, status: x.type } : null
  }
}

/** Agent.tla `Fold(seq, r)`: run r's records of `seq` folded (others skipped); `null` = `Refused`. */
export function runFold(seq: readonly AgentRecord[], r: Run, k: AgentConstants = MC): RunFold | null {
  let st: RunFold | null = initFold
  for (const x of seq) {
    if (x.run !== r) continue
    st = step(st, x, k)
    if (st === null) return null
  }
  return st
}

/** Agent.tla `RunStatus(seq, r)`: r's lifecycle state in `seq`, "refused" if its records break the lifecycle. */
export const statusIn = (seq: readonly AgentRecord[], r: Run, k: AgentConstants = MC): RunState | "refused" => runFold(seq, r, k)?.status ?? "refused"

/** `log \o buf`: everything written, durable or not (the loop's view). */
export const journal = (s: AgentState): readonly AgentRecord[] => (s.buf.length === 0 ? s.log : [...s.log, ...s.buf])

/**
 * Agent.tla `Live(r)`: the fold of `log \o buf` (the loop's view of run r); `null` if refused (never
 * in a reachable state: `LifecycleInv`). Actions treat a refused run as disabled.
 */
export function live(s: AgentState, r: Run, k: AgentConstants = MC): RunFold | null {
  // Memoised per state object (states are never mutated): `next` asks for the same fold many times.
  let folds = liveCache.get(s)
  if (folds === undefined) {
    folds = new Map()
    liveCache.set(s, folds)
  }
  const key = `${k.turnsMax}:${r}`
  if (!folds.has(key)) folds.set(key, runFold(journal(s), r, k))
  return folds.get(key) ?? null
}
const liveCache = new WeakMap<AgentState, Map<string, RunFold | null>>()

/**
 * The run's state as the session's run fold sees it: `RunStatus(log \o buf, r)`, one of the eight
 * {@link RunState}s in every reachable state ("refused" only for a journal `LifecycleInv` rejects).
 */
export const runStatus = (s: AgentState, r: Run, k: AgentConstants = MC): RunState | "refused" => live(s, r, k)?.status ?? "refused"

/** Agent.tla `Started(r)`: r has durably started. */
export const isStarted = (s: AgentState, r: Run, k: AgentConstants = MC): boolean => statusIn(s.log, r, k) !== "idle"

/** Agent.tla `Ended(r)`: r has durably ended (its final record is in `log`). */
export const isEnded = (s: AgentState, r: Run, k: AgentConstants = MC): boolean => isFinal(statusIn(s.log, r, k))

/** Agent.tla `TurnDurable(r, n)`. */
export const turnDurable = (s: AgentState, r: Run, n: number): boolean => s.log.some((x) => x.type === "turn" && x.run === r && x.turn === n)

/** Agent.tla `InFlight(r)`. */
export const inFlight = (s: AgentState, r: Run): boolean => s.asked.some((q) => q.run === r)

/** Agent.tla `CanEnd(r)`: thinking, or acting with nothing pending. */
export function canEnd(s: AgentState, r: Run, k: AgentConstants = MC): boolean {
  const st = live(s, r, k)
  return st !== null && (st.status === "thinking" || (st.status === "acting" && st.pending.length === 0))
}

const addSorted = <T extends string>(set: readonly T[], x: T): readonly T[] => (set.includes(x) ? set : [...set, x].sort())
const compareRequests = (a: Request, b: Request): number => (a.run < b.run ? -1 : a.run > b.run ? 1 : a.turn - b.turn)
const sameRequest = (a: Request, b: Request): boolean => a.run === b.run && a.turn === b.turn
const isRun = (r: Run, k: AgentConstants): boolean => k.runs.includes(r)
const isCall = (c: Call, k: AgentConstants): boolean => {
  const { run, turn, index } = parseCall(c)
  return (
    isRun(run, k) &&
    Number.isInteger(turn) &&
    turn >= 1 &&
    turn <= k.turnsMax &&
    Number.isInteger(index) &&
    index >= 1 &&
    index <= k.maxCallsPerTurn &&
    c === callId(run, turn, index)
  )
}

/** Agent.tla `Write(x)`: appends one batch to the buffer. */
const write = (s: AgentState, x: AgentRecord): AgentState => ({ ...s, buf: [...s.buf, x] })

// ---------------------------------------------------------------------------------------------
// Actions (same names and guards as Agent.tla)
// ---------------------------------------------------------------------------------------------

export function Init(_k: AgentConstants = MC): AgentState {
  return { log: [], buf: [], open: [], asked: [], overBudget: [], crashes: 0, up: true }
}

export function StartRun(s: AgentState, { r }: ActionArgs["StartRun"], k: AgentConstants = MC): AgentState | null {
  if (!s.up || !isRun(r, k) || live(s, r, k)?.status !== "idle") return null
  const othersIdle = k.runs.every((q) => {
    if (q === r) return true
    const st = live(s, q, k)?.status
    return st === "idle" || (st !== undefined && isFinal(st))
  })
  if (!othersIdle) return null
  return write(s, startedRecord(r))
}

export function AskModel(s: AgentState, { r }: ActionArgs["AskModel"], k: AgentConstants = MC): AgentState | null {
  const st = live(s, r, k)
  if (!s.up || st?.status !== "thinking" || st.turns >= k.turnsMax || s.overBudget.includes(r) || inFlight(s, r)) return null
  return { ...s, asked: [...s.asked, { run: r, turn: st.turns + 1 }].sort(compareRequests) }
}

export function RecordTurn(s: AgentState, { r, k: calls }: ActionArgs["RecordTurn"], k: AgentConstants = MC): AgentState | null {
  const st = live(s, r, k)
  if (!s.up || st?.status !== "thinking" || !Number.isInteger(calls) || calls < 0 || calls > k.maxCallsPerTurn) return null
  const request: Request = { run: r, turn: st.turns + 1 }
  if (request.turn > k.turnsMax || s.overBudget.includes(r) || !s.asked.some((q) => sameRequest(q, request))) return null
  return { ...write(s, turnRecord(r, request.turn, calls)), asked: s.asked.filter((q) => !sameRequest(q, request)) }
}

export function StartCall(s: AgentState, { c }: ActionArgs["StartCall"], k: AgentConstants = MC): AgentState | null {
  const r = runOf(c)
  const st = live(s, r, k)
  if (!s.up || (st?.status !== "acting" && st?.status !== "waiting") || !st.pending.includes(c) || c === st.awaiting) return null
  if (s.open.includes(c) || s.overBudget.includes(r) || !turnDurable(s, r, turnOf(c))) return null
  return { ...s, open: addSorted(s.open, c) }
}

export function SettleCall(s: AgentState, { c }: ActionArgs["SettleCall"], k: AgentConstants = MC): AgentState | null {
  const st = live(s, runOf(c), k)
  if (!s.up || (st?.status !== "acting" && st?.status !== "waiting") || !st.pending.includes(c)) return null
  return write(s, settledRecord(c))
}

export function Wait(s: AgentState, { c }: ActionArgs["Wait"], k: AgentConstants = MC): AgentState | null {
  const r = runOf(c)
  const st = live(s, r, k)
  if (!s.up || st?.status !== "acting" || !st.pending.includes(c) || s.open.includes(c) || s.overBudget.includes(r)) return null
  const question = waitingRecord(c)
  if (journal(s).some((x) => sameRecord(x, question))) return null
  return write(s, question)
}

export function Answer(s: AgentState, { c }: ActionArgs["Answer"], k: AgentConstants = MC): AgentState | null {
  const st = live(s, runOf(c), k)
  if (!s.up || st?.status !== "waiting" || st.awaiting !== c) return null
  const question = waitingRecord(c)
  if (!s.log.some((x) => sameRecord(x, question))) return null
  return write(s, answeredRecord(c))
}

export function Finish(s: AgentState, { r }: ActionArgs["Finish"], k: AgentConstants = MC): AgentState | null {
  const st = live(s, r, k)
  if (!s.up || st?.status !== "acting" || st.pending.length > 0 || st.lastCalls !== 0) return null
  return write(s, endRecord(r, "done"))
}

/** Agent.tla `End(r, s)`: the final record; a model request in flight is abandoned. */
function end(s: AgentState, r: Run, final: FinalState): AgentState {
  return { ...write(s, endRecord(r, final)), asked: s.asked.filter((q) => q.run !== r) }
}

export function Cancel(s: AgentState, { r }: ActionArgs["Cancel"], k: AgentConstants = MC): AgentState | null {
  if (!s.up || !canEnd(s, r, k)) return null
  return end(s, r, "cancelled")
}

export function Fail(s: AgentState, { r }: ActionArgs["Fail"], k: AgentConstants = MC): AgentState | null {
  if (!s.up || !canEnd(s, r, k)) return null
  const st = live(s, r, k)
  const turnsSpent = st?.status === "thinking" && st.turns === k.turnsMax
  if (!s.overBudget.includes(r) && !inFlight(s, r) && !turnsSpent) return null
  return end(s, r, "failed")
}

export function TimeOut(s: AgentState, { r }: ActionArgs["TimeOut"], k: AgentConstants = MC): AgentState | null {
  if (!s.up || !canEnd(s, r, k) || (!s.overBudget.includes(r) && !inFlight(s, r))) return null
  return end(s, r, "timedOut")
}

export function Exhaust(s: AgentState, { r }: ActionArgs["Exhaust"], k: AgentConstants = MC): AgentState | null {
  if (!isRun(r, k) || !isStarted(s, r, k) || isFinal(runStatus(s, r, k)) || s.overBudget.includes(r)) return null
  return { ...s, overBudget: addSorted(s.overBudget, r) }
}

export function Flush(s: AgentState, _args: ActionArgs["Flush"] = {}): AgentState | null {
  if (!s.up || s.buf.length === 0) return null
  const open = s.open.filter((c) => !s.buf.some((x) => x.type === "settled" && x.call === c && x.run === runOf(c)))
  return { ...s, log: [...s.log, ...s.buf], buf: [], open }
}

export function Crash(s: AgentState, _args: ActionArgs["Crash"] = {}, k: AgentConstants = MC): AgentState | null {
  if (!s.up || s.crashes >= k.maxCrashes) return null
  return { ...s, up: false, buf: [], asked: [], crashes: s.crashes + 1 }
}

export function Restart(s: AgentState, _args: ActionArgs["Restart"] = {}): AgentState | null {
  if (s.up) return null
  return { ...s, up: true }
}

/**
 * Agent.tla `Next`: every enabled step, one per action and binding of its existential parameters
 * (in the order of Next's disjuncts). Distinct bindings may lead to the same state.
 */
export function next(s: AgentState, k: AgentConstants = MC): Step[] {
  const steps: Step[] = []
  const calls = allCalls(k)
  const perRun = <A extends "StartRun" | "AskModel" | "Finish" | "Cancel" | "Fail" | "TimeOut" | "Exhaust">(
    action: A,
    f: (s: AgentState, args: { readonly r: Run }, k: AgentConstants) => AgentState | null
  ): void => {
    for (const r of k.runs) {
      const state = f(s, { r }, k)
      if (state) steps.push({ action, args: { r }, state } as Step)
    }
  }
  const perCall = <A extends "StartCall" | "SettleCall" | "Wait" | "Answer">(
    action: A,
    f: (s: AgentState, args: { readonly c: Call }, k: AgentConstants) => AgentState | null
  ): void => {
    for (const c of calls) {
      const state = f(s, { c }, k)
      if (state) steps.push({ action, args: { c }, state } as Step)
    }
  }
  perRun("StartRun", StartRun)
  perRun("AskModel", AskModel)
  for (const r of k.runs) {
    for (let n = 0; n <= k.maxCallsPerTurn; n++) {
      const state = RecordTurn(s, { r, k: n }, k)
      if (state) steps.push({ action: "RecordTurn", args: { r, k: n }, state })
    }
  }
  perCall("StartCall", StartCall)
  perCall("SettleCall", SettleCall)
  perCall("Wait", Wait)
  perCall("Answer", Answer)
  perRun("Finish", Finish)
  perRun("Cancel", Cancel)
  perRun("Fail", Fail)
  perRun("TimeOut", TimeOut)
  perRun("Exhaust", Exhaust)
  const flushed = Flush(s)
  if (flushed) steps.push({ action: "Flush", args: {}, state: flushed })
  const crashed = Crash(s, {}, k)
  if (crashed) steps.push({ action: "Crash", args: {}, state: crashed })
  const restarted = Restart(s)
  if (restarted) steps.push({ action: "Restart", args: {}, state: restarted })
  return steps
}

/** Applies an action by name (refinement and trace checks); `null` when it is disabled. */
export function apply<A extends ActionName>(s: AgentState, action: A, args: ActionArgs[A], k: AgentConstants = MC): AgentState | null {
  const f = actions[action] as (s: AgentState, args: ActionArgs[A], k: AgentConstants) => AgentState | null
  return f(s, args, k)
}

export const actions: { readonly [A in ActionName]: (s: AgentState, args: ActionArgs[A], k?: AgentConstants) => AgentState | null } = {
  StartRun,
  AskModel,
  RecordTurn,
  StartCall,
  SettleCall,
  Wait,
  Answer,
  Finish,
  Cancel,
  Fail,
  TimeOut,
  Exhaust,
  Flush,
  Crash: (s, args, k) => Crash(s, args, k),
  Restart: (s, args) => Restart(s, args)
}

// ---------------------------------------------------------------------------------------------
// Invariants (same names as Agent.tla)
// ---------------------------------------------------------------------------------------------

const isNat = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0
const inRange = (n: unknown, lo: number, hi: number): boolean => isNat(n) && n >= lo && n <= hi

/** Agent.tla `Records`: exact field sets and value ranges. */
function isRecord(x: unknown, k: AgentConstants): x is AgentRecord {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false
  const o = x as Record<string, unknown>
  const fields = Object.keys(o).sort().join(",")
  const runOk = typeof o.run === "string" && isRun(o.run, k)
  switch (o.type) {
    case "started":
    case "done":
    case "cancelled":
    case "failed":
    case "timedOut":
      return fields === "run,type" && runOk
    case "turn":
      return fields === "calls,run,turn,type" && runOk && inRange(o.turn, 1, k.turnsMax) && inRange(o.calls, 0, k.maxCallsPerTurn)
    case "waiting":
    case "answered":
    case "settled":
      return fields === "call,run,type" && runOk && typeof o.call === "string" && isCall(o.call, k)
    default:
      return false
  }
}

/** A sorted array of distinct strings, each satisfying `member`. */
const isSortedSet = (set: unknown, member: (x: string) => boolean): boolean =>
  Array.isArray(set) && set.every((x, i) => typeof x === "string" && member(x) && (i === 0 || (set[i - 1] as string) < x))

function isRequestSet(set: unknown, k: AgentConstants): boolean {
  if (!Array.isArray(set)) return false
  return set.every((q, i) => {
    if (typeof q !== "object" || q === null || Object.keys(q).sort().join(",") !== "run,turn") return false
    const { run, turn } = q as Request
    const prev = set[i - 1] as Request | undefined
    return typeof run === "string" && isRun(run, k) && inRange(turn, 1, k.turnsMax) && (prev === undefined || compareRequests(prev, q as Request) < 0)
  })
}

export function TypeInv(s: AgentState, k: AgentConstants = MC): boolean {
  return (
    Array.isArray(s.log) &&
    s.log.every((x) => isRecord(x, k)) &&
    Array.isArray(s.buf) &&
    s.buf.every((x) => isRecord(x, k)) &&
    journal(s).every((x) => !("call" in x) || x.run === runOf(x.call)) &&
    isSortedSet(s.open, (c) => isCall(c, k)) &&
    isRequestSet(s.asked, k) &&
    isSortedSet(s.overBudget, (r) => isRun(r, k)) &&
    inRange(s.crashes, 0, k.maxCrashes) &&
    typeof s.up === "boolean" &&
    (s.up || (s.buf.length === 0 && s.asked.length === 0))
  )
}

export function LifecycleInv(s: AgentState, k: AgentConstants = MC): boolean {
  return k.runs.every((r) => [s.log, journal(s)].every((seq) => runFold(seq, r, k) !== null))
}

export function OneTerminalInv(s: AgentState, _k: AgentConstants = MC): boolean {
  const J = journal(s)
  return J.every((x, i) => !isFinal(x.type) || J.slice(i + 1).every((y) => y.run !== x.run))
}

export function TurnWalInv(s: AgentState, _k: AgentConstants = MC): boolean {
  return s.open.every((c) => {
    const { run, turn, index } = parseCall(c)
    return (
      s.log.some((x) => x.type === "turn" && x.run === run && x.turn === turn && index >= 1 && index <= x.calls) &&
      !s.log.some((x) => x.type === "settled" && x.call === c)
    )
  })
}

export function NoReaskInv(s: AgentState, k: AgentConstants = MC): boolean {
  const J = journal(s)
  return s.asked.every((q) => {
    const st = live(s, q.run, k)
    return (
      !J.some((x) => x.type === "turn" && x.run === q.run && x.turn === q.turn) &&
      st?.status === "thinking" &&
      q.turn === st.turns + 1 &&
      s.asked.every((q2) => q2.run !== q.run || sameRequest(q2, q))
    )
  })
}

export function BudgetInv(s: AgentState, k: AgentConstants = MC): boolean {
  const J = journal(s)
  return k.runs.every((r) => J.filter((x) => x.type === "turn" && x.run === r).length <= k.turnsMax) && s.overBudget.every((r) => isStarted(s, r, k))
}

export function TerminalSettledInv(s: AgentState, _k: AgentConstants = MC): boolean {
  return [s.log, journal(s)].every((seq) =>
    seq.every(
      (end, i) =>
        !isFinal(end.type) ||
        seq
          .slice(0, i)
          .every(
            (x, j) =>
              x.type !== "turn" ||
              x.run !== end.run ||
              callsOf(x.run, x.turn, x.calls).every((c) => seq.slice(j + 1, i).some((y) => y.type === "settled" && y.call === c && y.run === runOf(c)))
          )
    )
  )
}

export function SingleRunInv(s: AgentState, k: AgentConstants = MC): boolean {
  const J = journal(s)
  const active = k.runs.filter((r) => {
    const st = runStatus(s, r, k)
    return st !== "idle" && !isFinal(st)
  })
  return (
    active.length <= 1 && J.every((x, j) => x.type !== "started" || J.slice(0, j).every((y) => J.slice(0, j).some((z) => z.run === y.run && isFinal(z.type))))
  )
}

export const invariants: Readonly<Record<InvariantName, (s: AgentState, k?: AgentConstants) => boolean>> = {
  TypeInv,
  LifecycleInv,
  OneTerminalInv,
  TurnWalInv,
  NoReaskInv,
  BudgetInv,
  TerminalSettledInv,
  SingleRunInv
}

// Canonical serialisation (state identity, as TLC's fingerprint is value identity): shared by the models.
export { canonical }

const recordKey = (x: AgentRecord): string => {
  switch (x.type) {
    case "turn":
      return `turn:${x.run}:${x.turn}:${x.calls}`
    case "waiting":
    case "answered":
    case "settled":
      return `${x.type}:${x.run}:${x.call}`
    default:
      return `${x.type}:${x.run}`
  }
}

/**
 * A compact serialisation of a well-typed state (`TypeInv`): two well-typed states have the same key
 * iff they are equal, as with {@link canonical}, whatever the order of their fields. Several times
 * faster than `canonical`, for the exhaustive search (run names must not contain `:`, `,` or `|`).
 */
export function stateKey(s: AgentState): string {
  return [
    s.log.map(recordKey).join(","),
    s.buf.map(recordKey).join(","),
    s.open.join(","),
    s.asked.map((q) => `${q.run}:${q.turn}`).join(","),
    s.overBudget.join(","),
    s.crashes,
    s.up
  ].join("|")
}
