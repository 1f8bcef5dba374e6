/**
 * Trace validation for spec/ToolCall.tla (design §6, as in CCF and etcd): a trace the runtime
 * emitted (`Trace.Step`s, one per TLA+ action it took) is accepted only if models/toolCall.ts can
 * consume every step of it, in order, from `Init`.
 *
 * The mapping from the trace to the model:
 * - implementation call ids become model calls `c1, c2, …` in order of first appearance (a
 *   `Recover` step's `inDoubt` ids must have appeared before); the constants' semantics sets must
 *   say what each call's tool is: build them with {@link constantsFor} from the tools of the run;
 * - each step is the model action of the same name with `c` (and `retryable` for `Fail`); it must
 *   be enabled in the current model state, and what it journals must agree with the step's
 *   arguments: the attempt of the record it appends (Start, Retry, Rerun: the new attempt; the
 *   outcome actions: the attempt they close; Reject: 0), the current attempt for `Execute`, and
 *   for `Reconcile` / `CloseUnknown` the kind of outcome (a `retryable` argument means a failed
 *   record, none a succeeded one);
 * - the implementation cannot emit `Crash` (the process that would emit it died): before a
 *   `Recover` step, `Crash` is taken when the model is up. Every writer open emits `Recover`, the
 *   first one included, so `maxCrashes` must be at least the number of opens of the run;
 * - steps of other specs are skipped.
 *
 * @example
 *   const steps: Array<Trace.Step> = []
 *   // … run with Effect.provide(Trace.layerMemory(steps)) …
 *   const result = checkToolCallTrace(steps, constantsFor([{ callId: "a", semantics: "idempotent" }]))
 *   if (!result.ok) throw new Error(explain(result))
 */
import {
  type ActionName,
  actionNames,
  attempt,
  type Call,
  Cancel,
  CloseUnknown,
  Compensate,
  Crash,
  callState,
  canonical,
  Execute,
  Fail,
  Init,
  latest,
  Propose,
  Reconcile,
  Recover,
  Reject,
  Rerun,
  Retry,
  Start,
  Succeed,
  TimeOut,
  type ToolCallConstants,
  type ToolCallRecord,
  type ToolCallState
} from "../../models/toolCall.ts"
import type * as Trace from "../../src/trace/Trace.ts"

/** One model step the checker took (Crash steps it inserted included). */
export interface Taken {
  readonly action: ActionName
  readonly args: { readonly c?: Call; readonly retryable?: boolean }
  /** index of the trace step it consumes (the Recover it precedes, for an inserted Crash) */
  readonly at: number
  readonly inserted: boolean
}

export type CheckResult =
  | {
      readonly ok: true
      /** Init, then the state after each model step taken */
      readonly states: ReadonlyArray<ToolCallState>
      readonly taken: ReadonlyArray<Taken>
      /** implementation call id → model call */
      readonly calls: ReadonlyMap<string, Call>
    }
  | {
      readonly ok: false
      /** index of the refused trace step */
      readonly at: number
      readonly step: Trace.Step
      readonly reason: string
      /** the model state the step was tried in */
      readonly modelState: ToolCallState
      readonly calls: ReadonlyMap<string, Call>
    }

/** What a call's tool is, for building the constants (an unknown tool: any semantics, e.g. "unsafe"). */
export interface CallKind {
  readonly callId: string
  readonly semantics: "readOnly" | "idempotent" | "compensatable" | "unsafe"
  /** the tool offers `reconcile(key)` */
  readonly reconcile?: boolean
}

/**
 * Constants for a run: the calls in the order they first appear in its trace (c1, c2, …), each
 * in the semantics set of its tool. `maxAttempts` must be the rerunnable tools' `retry.attemptsMax`
 * (the model shares one bound among all calls); `maxCrashes` at least the number of writer opens.
 */
export function constantsFor(kinds: ReadonlyArray<CallKind>, bounds: { readonly maxAttempts?: number; readonly maxCrashes?: number } = {}): ToolCallConstants {
  const names = kinds.map((_, i) => `c${i + 1}`)
  const where = (p: (k: CallKind) => boolean) => names.filter((_, i) => p(kinds[i] as CallKind))
  return {
    calls: names,
    readOnlyCalls: where((k) => k.semantics === "readOnly"),
    idempotentCalls: where((k) => k.semantics === "idempotent"),
    compensatableCalls: where((k) => k.semantics === "compensatable"),
    unsafeCalls: where((k) => k.semantics === "unsafe"),
    hasReconcile: where((k) => k.reconcile === true && (k.semantics === "compensatable" || k.semantics === "unsafe")),
    maxAttempts: bounds.maxAttempts ?? 3,
    maxCrashes: bounds.maxCrashes ?? 4
  }
}

/** The implementation call ids of a trace's ToolCall steps, in order of first appearance. */
export function callIdsOf(steps: ReadonlyArray<Trace.Step>): Array<string> {
  const ids: Array<string> = []
  for (const step of steps) {
    const id = step.spec === "ToolCall" ? step.args.call : undefined
    if (typeof id === "string" && !ids.includes(id)) ids.push(id)
  }
  return ids
}

type PerCall = (s: ToolCallState, args: { readonly c: Call }, k: ToolCallConstants) => ToolCallState | null

const perCall: Readonly<Record<Exclude<ActionName, "Fail" | "Crash" | "Recover">, PerCall>> = {
  Propose,
  Start,
  Reject,
  Execute: (s, args) => Execute(s, args),
  Succeed: (s, args) => Succeed(s, args),
  TimeOut: (s, args) => TimeOut(s, args),
  Cancel: (s, args) => Cancel(s, args),
  Retry,
  Compensate,
  Rerun,
  Reconcile,
  CloseUnknown
}

/** The attempt the step's record carries, as the model has it (undefined: the action journals no attempt). */
function attemptOfStep(action: ActionName, before: ToolCallState, after: ToolCallState, c: Call): number | undefined {
  switch (action) {
    case "Execute":
      return attempt(before, c)
    case "Start":
    case "Retry":
    case "Rerun":
      return attempt(after, c)
    case "Succeed":
    case "Fail":
    case "TimeOut":
    case "Cancel":
    case "Reconcile":
    case "CloseUnknown":
    case "Reject": {
      const r = latest(after, c) as ToolCallRecord
      return r.type === "proposed" ? undefined : r.attempt
    }
    default:
      return undefined
  }
}

/** Accepts `steps` iff the model (with constants `k`) can take every one of them in order. */
export function checkToolCallTrace(steps: ReadonlyArray<Trace.Step>, k: ToolCallConstants): CheckResult {
  const calls = new Map<string, Call>()
  let state = Init(k)
  const states: Array<ToolCallState> = [state]
  const taken: Array<Taken> = []
  const refuse = (at: number, reason: string): CheckResult => ({ ok: false, at, step: steps[at] as Trace.Step, reason, modelState: state, calls })
  const modelCall = (id: string): Call | undefined => {
    const known = calls.get(id)
    if (known !== undefined) return known
    const next = k.calls[calls.size]
    if (next !== undefined) calls.set(id, next)
    return next
  }
  const take = (action: ActionName, args: Taken["args"], next: ToolCallState, at: number, inserted = false) => {
    state = next
    states.push(next)
    taken.push({ action, args, at, inserted })
  }

  for (const [at, step] of steps.entries()) {
    if (step.spec !== "ToolCall") continue
    const action = step.action as ActionName
    if (!actionNames.includes(action)) return refuse(at, `${step.action} is not an action of spec/ToolCall.tla`)

    if (action === "Crash") return refuse(at, "the implementation cannot emit Crash (the process that would emit it is dead)")
    if (action === "Recover") {
      if (state.up) {
        const crashed = Crash(state, {}, k)
        if (crashed === null)
          return refuse(at, `Crash (inserted before Recover) is disabled: crashes = ${state.crashes} = maxCrashes; pass a larger maxCrashes`)
        take("Crash", {}, crashed, at, true)
      }
      const recovered = Recover(state)
      if (recovered === null) return refuse(at, "Recover is disabled")
      const inDoubt = step.args.inDoubt
      if (inDoubt !== undefined) {
        if (!Array.isArray(inDoubt) || !inDoubt.every((x) => typeof x === "string"))
          return refuse(at, `Recover's inDoubt is not a list of call ids: ${JSON.stringify(inDoubt)}`)
        const unseen = inDoubt.filter((id) => !calls.has(id as string))
        if (unseen.length > 0) return refuse(at, `Recover names calls in doubt that the trace never proposed: ${unseen.join(", ")}`)
        const claimed = inDoubt.map((id) => calls.get(id as string) as Call).sort()
        const model = k.calls.filter((c) => callState(recovered, c) === "inDoubt")
        if (canonical(claimed) !== canonical(model)) {
          return refuse(at, `Recover: the implementation finds [${claimed.join(", ")}] in doubt, the model [${model.join(", ")}]`)
        }
      }
      take("Recover", {}, recovered, at)
      continue
    }

    const id = step.args.call
    if (typeof id !== "string") return refuse(at, `${action} has no call argument`)
    const c = modelCall(id)
    if (c === undefined) return refuse(at, `call ${id} is call number ${calls.size + 1}, but the constants have only ${k.calls.length} calls`)

    let next: ToolCallState | null
    let args: Taken["args"]
    if (action === "Fail") {
      const retryable = step.args.retryable
      if (typeof retryable !== "boolean") return refuse(at, `Fail(${id}) has no boolean retryable argument`)
      args = { c, retryable }
      next = Fail(state, { c, retryable }, k)
    } else {
      args = { c }
      next = perCall[action](state, { c }, k)
    }
    if (next === null) {
      return refuse(
        at,
        `${action}(${id} = ${c}) is not enabled: ${c} is ${callState(state, c)} at attempt ${attempt(state, c)}${state.up ? "" : ", the process is down"}`
      )
    }

    const expected = attemptOfStep(action, state, next, c)
    const claimed = step.args.attempt
    if (expected !== undefined && claimed !== undefined && claimed !== expected) {
      return refuse(at, `${action}(${id} = ${c}) names attempt ${JSON.stringify(claimed)}, the model's is ${expected}`)
    }
    if (expected !== undefined && claimed === undefined && action !== "Reject") return refuse(at, `${action}(${id}) has no attempt argument`)
    if (action === "Reconcile") {
      const outcome = (latest(next, c) as ToolCallRecord).type
      const claimedOutcome = step.args.retryable === undefined ? "succeeded" : "failed"
      if (outcome !== claimedOutcome) {
        return refuse(
          at,
          `Reconcile(${id} = ${c}) journaled ${claimedOutcome}, but the model's world says ${outcome} (executed[${c}] = ${state.executed[`key:${c}`] ?? 0})`
        )
      }
    }
    if ((action === "CloseUnknown" || action === "Reject") && step.args.retryable === true)
      return refuse(at, `${action}(${id}) is retryable, the model's is not`)
    take(action, args, next, at)
  }
  return { ok: true, states, taken, calls }
}

/** A readable account of a refusal (for assertion messages). */
export function explain(result: CheckResult): string {
  if (result.ok) return `accepted: ${result.taken.map((t) => `${t.action}${t.args.c ? `(${t.args.c})` : ""}`).join(" ")}`
  const ids = [...result.calls].map(([id, c]) => `${id}=${c}`).join(", ")
  return `trace step ${result.at} ${result.step.action}(${JSON.stringify(result.step.args)}) refused: ${result.reason}\n  calls: ${ids}\n  model state: ${canonical(result.modelState)}`
}
