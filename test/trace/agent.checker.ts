/**
 * Trace validation for spec/Agent.tla (design §6, as in CCF and etcd): a trace the runtime emitted
 * (`Trace.Step`s) is accepted only if models/agent.ts can take every step of it, in order, from
 * `Init`, with the hidden steps (below) placed somewhere.
 *
 * What the checker reads:
 * - the Agent steps the runtime emits: the session emits `StartRun`, `RecordTurn`, `Finish`,
 *   `Wait`, `Answer`, `Cancel`, `Fail`, `TimeOut` when it sequences the record, and `SettleCall`
 *   when it folds the tool-call record that settles a call of a run (`traceRun` in
 *   src/session/Session.ts); the loop emits `AskModel` before the model call and `Exhaust` when it
 *   first notices (once per process) that a run is over budget (src/agent/Agent.ts);
 * - the ToolCall steps of a run's calls: `Start` (and `Retry`, `Rerun`) is the write of
 *   `tool.call.started`; `Execute` and the outcomes of an attempt (`Succeed`, `Fail`, `TimeOut`,
 *   `Cancel` with attempt >= 1) are emitted only once that record is durable; `Recover` (every
 *   writer open) with the calls found in doubt;
 * - every other step is skipped (other specs, other calls).
 *
 * The mapping to the model:
 * - implementation run ids become model runs `r1, r2, …` in order of first appearance; a call id
 *   is `${runId}_t${turn}_c${i}` (the loop's naming rule, `record` in Agent.ts), model call
 *   `callId(r, turn, i)`; a call id that is not of this form is not a run's call (skipped);
 * - `RecordTurn` is `RecordTurn(r, k)` with k = the number of call ids, which must be the turn's
 *   ids in order; `AskModel` and `RecordTurn` must name the turn the model asks for (turns + 1);
 * - `StartCall(c)` is not a step of the trace: it is taken at the flush that makes c's
 *   `tool.call.started` durable (the Agent spec's StartCall is ToolCall's Start: the started record
 *   durable, then the tool runs). A start lost in a crash is no StartCall;
 * - a repeated `Exhaust` for a run already over budget is stuttering (each process traces it once);
 * - the first `Recover` is the first open of the session (nothing happens); every later one is a
 *   `Crash` (inserted) and a `Restart`, and the calls it finds in doubt must be the model's `open`
 *   calls (started durably, no durable outcome). So `maxCrashes` must be at least the number of
 *   re-opens. (A call whose last durable outcome is a retryable failure is open in the model and
 *   not in doubt in the implementation: the rule assumes tools that are not retried, as in the
 *   tests; a clean re-open is a Crash with nothing buffered.)
 *
 * The rule for `Flush` (the group commit is not traced): a Flush may happen before any step. The
 * checker keeps every candidate state, flushed before the step and not, and a trace is accepted
 * if one candidate takes all of it. What forces a flush: the model's own guards (`Answer` needs
 * the question durable, `Exhaust` a durably started run, `StartCall` its turn), and `Execute` or
 * an attempt's outcome of a call (its started record is durable, and so is everything before it
 * in the journal). What forbids one: a crash after which the implementation re-does a step (a
 * turn asked again after a restart means the turn record was not durable at the crash). Since
 * Flush empties the buffer, the candidates differ only in where the last flush before each crash
 * was: a handful per step.
 *
 * @example
 *   const steps: Array<Trace.Step> = []
 *   // … run the agent with Effect.provide(Trace.layerMemory(steps)) …
 *   const result = checkAgentTrace(steps, { runs: ["r1"], turnsMax: 3, maxCallsPerTurn: 2, maxCrashes: 1 })
 *   if (!result.ok) throw new Error(explainAgent(result))
 */
import {
  type ActionName,
  type AgentConstants,
  type AgentState,
  apply,
  type Call,
  Crash,
  callId,
  canonical,
  Init,
  live,
  type Run,
  stateKey
} from "../../models/agent.ts"
import type * as Trace from "../../src/trace/Trace.ts"

/** One model step a candidate took (Flush, StartCall and Crash included: those are inserted). */
export interface AgentTaken {
  readonly action: ActionName
  readonly args: { readonly r?: Run; readonly c?: Call; readonly k?: number }
  /** index of the trace step it consumes, or precedes (for an inserted step) */
  readonly at: number
  readonly inserted: boolean
}

export type AgentCheckResult =
  | {
      readonly ok: true
      /** the steps of one candidate that took the whole trace (the most flushed one) */
      readonly taken: ReadonlyArray<AgentTaken>
      /** its state at the end */
      readonly state: AgentState
      /** the end states of every candidate that took the whole trace (flushed after the last step, and not) */
      readonly states: ReadonlyArray<AgentState>
      /** implementation run id → model run */
      readonly runs: ReadonlyMap<string, Run>
      /** the largest number of candidates kept at once */
      readonly widest: number
    }
  | {
      readonly ok: false
      /** index of the refused trace step */
      readonly at: number
      readonly step: Trace.Step
      /** why each candidate refused it (deduplicated) */
      readonly reason: string
      /** the candidates' states before the step */
      readonly modelStates: ReadonlyArray<AgentState>
      readonly runs: ReadonlyMap<string, Run>
    }

interface Candidate {
  readonly state: AgentState
  /** calls whose tool.call.started is written and not durable: StartCall at the next flush */
  readonly starting: ReadonlyArray<Call>
  readonly taken: ReadonlyArray<AgentTaken>
}

/** The loop's call ids: `${runId}_t${turn}_c${i}`. */
const callPattern = /^(.+)_t(\d+)_c(\d+)$/

/** Steps of the ToolCall spec that say an attempt's started record is durable (the executor writes them after it). */
const afterStart = new Set(["Execute", "Succeed", "Fail", "TimeOut", "Cancel"])
/** Steps of the ToolCall spec that write a started record. */
const starts = new Set(["Start", "Retry", "Rerun"])

type Outcome = { readonly ok: true; readonly cand: Candidate } | { readonly ok: false; readonly reason: string }

const keyOf = (c: Candidate) => `${stateKey(c.state)}#${c.starting.join(",")}`

/** Accepts `steps` iff the model (constants `k`) can take every step, with Flush, StartCall and Crash placed as described above. */
export function checkAgentTrace(steps: ReadonlyArray<Trace.Step>, k: AgentConstants): AgentCheckResult {
  const runs = new Map<string, Run>()
  let cands: Array<Candidate> = [{ state: Init(k), starting: [], taken: [] }]
  let opened = false
  let widest = 1

  const runOf = (id: unknown): Run | string => {
    if (typeof id !== "string") return `no run argument`
    const known = runs.get(id)
    if (known !== undefined) return known
    const next = k.runs[runs.size]
    if (next === undefined) return `run ${id} is run number ${runs.size + 1}, but the constants have only ${k.runs.length} runs`
    runs.set(id, next)
    return next
  }
  const isRun = (x: Run | string): x is Run => k.runs.includes(x)
  /** The model call of an implementation call id; undefined if it is not a call of a known run; an error if there is no id. */
  const callOf = (id: unknown): Call | undefined | { readonly error: string } => {
    if (typeof id !== "string") return { error: "no call argument" }
    const m = callPattern.exec(id)
    if (m === null) return undefined
    const r = runs.get(m[1] as string)
    if (r === undefined) return undefined
    return callId(r, Number(m[2]), Number(m[3]))
  }

  const take = (cand: Candidate, action: ActionName, args: AgentTaken["args"], at: number, inserted: boolean): Outcome => {
    const next = apply(cand.state, action, args as never, k)
    if (next === null) return { ok: false, reason: `${action}(${Object.values(args).join(", ")}) is not enabled: ${describe(cand.state, k)}` }
    return { ok: true, cand: { ...cand, state: next, taken: [...cand.taken, { action, args, at, inserted }] } }
  }

  /** The group commit: buffered records become durable, then the calls whose started record was among them start. */
  const flush = (cand: Candidate, at: number): Outcome => {
    let out: Outcome = { ok: true, cand }
    if (cand.state.buf.length > 0) out = take(cand, "Flush", {}, at, true)
    for (const c of cand.starting) {
      if (!out.ok) return out
      out = take(out.cand, "StartCall", { c }, at, true)
      if (!out.ok) return { ok: false, reason: `the flush of ${c}'s started record: ${out.reason}` }
    }
    return out.ok ? { ok: true, cand: { ...out.cand, starting: [] } } : out
  }
  const flushable = (cand: Candidate) => cand.state.up && (cand.state.buf.length > 0 || cand.starting.length > 0)

  for (const [at, step] of steps.entries()) {
    let apply1: ((cand: Candidate) => Outcome) | undefined
    if (step.spec === "ToolCall") {
      if (step.action === "Recover") {
        const inDoubt = step.args.inDoubt
        if (!Array.isArray(inDoubt)) return refuse(at, step, `Recover has no inDoubt list`, cands, runs)
        if (!opened) {
          // The first open of the session: no process ran before it.
          opened = true
          if (inDoubt.length > 0) return refuse(at, step, `the first open finds calls in doubt: ${inDoubt.join(", ")}`, cands, runs)
          continue
        }
        const claimed: Array<Call> = []
        for (const id of inDoubt) {
          const c = callOf(id)
          if (c !== undefined && typeof c !== "string" && "error" in c) return refuse(at, step, `Recover: ${c.error}`, cands, runs)
          if (typeof c === "string") claimed.push(c)
        }
        claimed.sort()
        apply1 = (cand) => {
          let out: Outcome = { ok: true, cand }
          if (cand.state.up) {
            const crashed = Crash(cand.state, {}, k)
            if (crashed === null) return { ok: false, reason: `Crash (inserted before Recover) is disabled: crashes = ${cand.state.crashes} = maxCrashes` }
            out = { ok: true, cand: { state: crashed, starting: [], taken: [...cand.taken, { action: "Crash", args: {}, at, inserted: true }] } }
          }
          out = take(out.cand, "Restart", {}, at, false)
          if (!out.ok) return out
          if (canonical(claimed) !== canonical(out.cand.state.open)) {
            return {
              ok: false,
              reason: `Recover: the implementation finds [${claimed.join(", ")}] in doubt, the model's open calls are [${out.cand.state.open.join(", ")}]`
            }
          }
          return out
        }
      } else {
        const c = callOf(step.args.call)
        if (c === undefined) continue
        if (typeof c !== "string") return refuse(at, step, `${step.action}: ${c.error}`, cands, runs)
        if (starts.has(step.action)) {
          // Written, not durable yet: the model's StartCall waits for the flush (unless the call is open already: a rerun).
          apply1 = (cand) =>
            cand.state.open.includes(c) || cand.starting.includes(c) ? { ok: true, cand } : { ok: true, cand: { ...cand, starting: [...cand.starting, c] } }
        } else if (afterStart.has(step.action) && Number(step.args.attempt ?? 0) >= 1) {
          apply1 = (cand) =>
            cand.starting.includes(c)
              ? { ok: false, reason: `${step.action}(${c}) says its started record is durable, but it was not flushed yet` }
              : cand.state.open.includes(c)
                ? { ok: true, cand }
                : { ok: false, reason: `${step.action}(${c}) of an attempt that never started (${c} is not open)` }
        } else continue
      }
    } else if (step.spec === "Agent") {
      const action = step.action as ActionName
      const a = step.args
      switch (action) {
        case "StartRun":
        case "AskModel":
        case "RecordTurn":
        case "Finish":
        case "Cancel":
        case "Fail":
        case "TimeOut":
        case "Exhaust": {
          const r = runOf(a.run)
          if (!isRun(r)) return refuse(at, step, r, cands, runs)
          apply1 = (cand) => {
            const st = live(cand.state, r, k)
            if (action === "Exhaust" && cand.state.overBudget.includes(r)) return { ok: true, cand } // traced again by a later process
            if (action === "AskModel" && st !== null && a.turn !== st.turns + 1)
              return { ok: false, reason: `AskModel(${r}) asks for turn ${a.turn}, the model's next turn is ${st.turns + 1}` }
            if (action === "RecordTurn") {
              const ids = a.calls
              if (!Array.isArray(ids)) return { ok: false, reason: "RecordTurn has no calls list" }
              if (st !== null && a.turn !== st.turns + 1)
                return { ok: false, reason: `RecordTurn(${r}) records turn ${a.turn}, the model's next turn is ${st.turns + 1}` }
              const expected = ids.map((_, i) => `${a.run}_t${a.turn}_c${i + 1}`)
              if (canonical(ids) !== canonical(expected)) return { ok: false, reason: `RecordTurn's call ids ${ids.join(", ")} are not ${expected.join(", ")}` }
              return take(cand, action, { r, k: ids.length }, at, false)
            }
            return take(cand, action, { r }, at, false)
          }
          break
        }
        case "SettleCall":
        case "Wait":
        case "Answer": {
          const c = callOf(a.call)
          if (c === undefined || typeof c !== "string")
            return refuse(at, step, `${action}: ${JSON.stringify(a.call)} is not a call of a known run`, cands, runs)
          apply1 = (cand) => take(cand, action, { c }, at, false)
          break
        }
        default:
          return refuse(at, step, `${step.action} is not a step the runtime emits for spec/Agent.tla`, cands, runs)
      }
    } else continue

    // Every candidate, flushed before the step or not, tries the step.
    const next = new Map<string, Candidate>()
    const reasons = new Set<string>()
    const tried: Array<Candidate> = []
    for (const cand of cands) {
      tried.push(cand)
      if (flushable(cand)) {
        const flushed = flush(cand, at)
        if (flushed.ok) tried.push(flushed.cand)
        else reasons.add(flushed.reason)
      }
    }
    for (const cand of tried) {
      const out = (apply1 as (cand: Candidate) => Outcome)(cand)
      if (out.ok) next.set(keyOf(out.cand), out.cand)
      else reasons.add(out.reason)
    }
    if (next.size === 0) return refuse(at, step, [...reasons].join("; or "), cands, runs)
    cands = [...next.values()]
    widest = Math.max(widest, cands.length)
  }
  // The most flushed candidate reads best.
  const best = cands.reduce((a, b) => (b.state.buf.length < a.state.buf.length ? b : a))
  // The end states: a group commit may also have happened after the last step.
  const ends = new Map(cands.map((c) => [keyOf(c), c.state]))
  for (const cand of cands) {
    const flushed = flushable(cand) ? flush(cand, steps.length) : undefined
    if (flushed?.ok === true) ends.set(keyOf(flushed.cand), flushed.cand.state)
  }
  return { ok: true, taken: best.taken, state: best.state, states: [...ends.values()], runs, widest }
}

function refuse(at: number, step: Trace.Step, reason: string, cands: ReadonlyArray<Candidate>, runs: ReadonlyMap<string, Run>): AgentCheckResult {
  return { ok: false, at, step, reason, modelStates: cands.map((c) => c.state), runs }
}

/** The run states and the variables a refusal is about, briefly. */
function describe(s: AgentState, k: AgentConstants): string {
  const runs = k.runs.map((r) => {
    const st = live(s, r, k)
    return st === null
      ? `${r} refused`
      : `${r} ${st.status} (turns ${st.turns}, pending [${st.pending.join(", ")}]${st.awaiting === "" ? "" : `, awaiting ${st.awaiting}`})`
  })
  const flags = [
    s.up ? "" : "down",
    s.buf.length > 0 ? `${s.buf.length} buffered` : "",
    s.open.length > 0 ? `open [${s.open.join(", ")}]` : "",
    s.asked.length > 0 ? `asked [${s.asked.map((q) => `${q.run}:${q.turn}`).join(", ")}]` : "",
    s.overBudget.length > 0 ? `over budget [${s.overBudget.join(", ")}]` : ""
  ].filter((x) => x !== "")
  return [...runs, ...flags].join(", ")
}

/** A readable account of a result (for assertion messages). */
export function explainAgent(result: AgentCheckResult): string {
  if (result.ok) return `accepted (${result.widest} candidates at most): ${takenNames(result.taken).join(" ")}`
  const runs = [...result.runs].map(([id, r]) => `${id}=${r}`).join(", ")
  return `trace step ${result.at} ${result.step.spec}.${result.step.action}(${JSON.stringify(result.step.args)}) refused: ${result.reason}\n  runs: ${runs}\n  candidate states: ${result.modelStates.map((s) => canonical(s)).join("\n    ")}`
}

/** The model steps a result took, as `Action(args)` strings (`*` marks inserted Flush, StartCall, Crash). */
export const takenNames = (taken: ReadonlyArray<AgentTaken>): Array<string> =>
  taken.map(
    (t) =>
      `${t.inserted ? "*" : ""}${t.action}${(t.args.r ?? t.args.c) ? `(${[t.args.r ?? t.args.c, t.args.k].filter((x) => x !== undefined).join(",")})` : ""}`
  )
