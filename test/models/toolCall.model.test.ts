// Exhaustive exploration of models/toolCall.ts for the constants of spec/MCToolCall.cfg.
//
// The counts below are what TLC must report for `MCToolCall.cfg` (distinct states; TLC's "states
// generated" should be 1 + TRANSITIONS and its search depth DEPTH). spec/README.md records the
// same three numbers, and this test checks that it does. If the spec changes, change the model,
// re-run, and update the numbers here and in the README together.
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import {
  type ActionName,
  actionNames,
  attempt,
  type CallState,
  Cancel,
  CloseUnknown,
  Compensate,
  Crash,
  callState,
  canFollow,
  canonical,
  Execute,
  Fail,
  type FailReason,
  Init,
  type InvariantName,
  invariantNames,
  invariants,
  isOpen,
  keyOf,
  MC,
  next,
  Propose,
  Reconcile,
  Recover,
  Reject,
  Rerun,
  Retry,
  rejectedRecord,
  Start,
  Succeed,
  settled,
  TimeOut,
  type ToolCallConstants,
  type ToolCallRecord,
  type ToolCallState
} from "../../models/toolCall.ts"

const DISTINCT_STATES = 43482
/** Labelled transitions: one per (state, action, parameter binding). */
const TRANSITIONS = 127225
/** The transitions by action, in the order of Next's disjuncts (they add up to TRANSITIONS). */
const TRANSITIONS_BY_ACTION: Readonly<Record<ActionName, number>> = {
  Propose: 4771,
  Start: 4771,
  Reject: 4771,
  Execute: 7003,
  Succeed: 7003,
  Fail: 28012,
  TimeOut: 14006,
  Cancel: 14006,
  Retry: 1272,
  Compensate: 2108,
  Crash: 17004,
  Recover: 12558,
  Rerun: 960,
  Reconcile: 3520,
  CloseUnknown: 5460
}
/** TLC's convention: the initial state is at depth 1. */
const DEPTH = 21
/** Fail fast instead of hanging if a change makes the space explode. */
const STATES_MAX = 500_000

interface Visit {
  readonly state: ToolCallState
  readonly depth: number
  /** how the BFS first reached this state (for readable counterexamples) */
  readonly via: { readonly from: string; readonly action: ActionName; readonly args: object } | null
}

interface Exploration {
  readonly visits: Map<string, Visit>
  readonly transitions: number
  readonly perAction: Map<ActionName, number>
  readonly selfLoops: Map<ActionName, number>
  /** states without a successor */
  readonly terminal: string[]
  /** edges along which `progress` does not increase (must be none: the graph is acyclic) */
  readonly notProgressing: string[]
  readonly depth: number
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/**
 * A measure every step increases: journal length, executions, and the crash/recover phase
 * (`Crash` adds 2 - 1, `Recover` adds 1). It makes the state graph acyclic, so every behaviour
 * has finitely many non-stuttering steps.
 */
function progress(s: ToolCallState): number {
  const records = Object.values(s.log).reduce((n, seq) => n + seq.length, 0)
  const executions = Object.values(s.executed).reduce((n, x) => n + x, 0)
  return records + executions + 2 * s.crashes + (s.up ? 1 : 0)
}

/** Breadth-first search keyed by the canonical (sorted-key) serialisation of each state. */
function explore(): Exploration {
  const init = deepFreeze(Init(MC))
  const visits = new Map<string, Visit>([[canonical(init), { state: init, depth: 1, via: null }]])
  const queue: string[] = [canonical(init)]
  const perAction = new Map<ActionName, number>()
  const selfLoops = new Map<ActionName, number>()
  const terminal: string[] = []
  const notProgressing: string[] = []
  let transitions = 0
  let depth = 1
  for (let i = 0; i < queue.length; i++) {
    const key = queue[i] as string
    const visit = visits.get(key) as Visit
    depth = Math.max(depth, visit.depth)
    const steps = next(visit.state, MC)
    if (steps.length === 0) terminal.push(key)
    for (const step of steps) {
      transitions++
      perAction.set(step.action, (perAction.get(step.action) ?? 0) + 1)
      const k = canonical(step.state)
      if (k === key) selfLoops.set(step.action, (selfLoops.get(step.action) ?? 0) + 1)
      if (progress(step.state) <= progress(visit.state)) notProgressing.push(`${key} --${step.action}--> ${k}`)
      if (!visits.has(k)) {
        visits.set(k, {
          state: deepFreeze(step.state),
          depth: visit.depth + 1,
          via: { from: key, action: step.action, args: step.args }
        })
        queue.push(k)
        if (visits.size > STATES_MAX) throw new Error(`state space exceeds ${STATES_MAX} states`)
      }
    }
  }
  return { visits, transitions, perAction, selfLoops, terminal, notProgressing, depth }
}

/** The action path from Init to a state, for failure messages. */
function trace(visits: Map<string, Visit>, key: string): string {
  const steps: string[] = []
  let visit = visits.get(key)
  while (visit?.via) {
    steps.unshift(`${visit.via.action}(${canonical(visit.via.args)})`)
    visit = visits.get(visit.via.from)
  }
  return ["Init", ...steps].join(" -> ")
}

const explored = explore()
const reachable = [...explored.visits.entries()]

/** The call states a finished behaviour may end in (nothing is enabled for the call any more). */
const finished: ReadonlySet<CallState> = new Set(["succeeded", "failed", "cancelled", "timedOut", "compensated"])

describe("ToolCall model, exhaustive for MCToolCall.cfg", () => {
  it("reaches exactly the distinct-state count", () => {
    expect(explored.visits.size).toBe(DISTINCT_STATES)
  })

  it("has the expected number of transitions and search depth", () => {
    expect(explored.transitions).toBe(TRANSITIONS)
    expect(explored.depth).toBe(DEPTH)
  })

  it("has the expected number of transitions per action", () => {
    expect(Object.keys(TRANSITIONS_BY_ACTION)).toEqual([...actionNames])
    expect(Object.values(TRANSITIONS_BY_ACTION).reduce((n, x) => n + x, 0)).toBe(TRANSITIONS)
    expect(Object.fromEntries(explored.perAction)).toEqual(TRANSITIONS_BY_ACTION)
  })

  it("agrees with the counts recorded in spec/README.md", () => {
    const readme = readFileSync(new URL("../../spec/README.md", import.meta.url), "utf8")
    const recorded = (label: RegExp): string | undefined => new RegExp(`${label.source}\\s*\\**(\\d+)`).exec(readme)?.[1]
    expect(recorded(/Distinct states \(MCToolCall\.cfg\):/), "distinct states").toBe(String(DISTINCT_STATES))
    expect(recorded(/Transitions \(MCToolCall\.cfg\):/), "transitions").toBe(String(TRANSITIONS))
    expect(recorded(/Depth \(MCToolCall\.cfg\):/), "depth").toBe(String(DEPTH))
    // The by-action list of the ToolCall section: "`Propose` 6020, `Start` 6020, ...".
    const section = readme.slice(readme.indexOf("## ToolCall"))
    const byAction = Object.fromEntries(
      [...section.matchAll(/By action:([^.]*)\./g)].flatMap((m) => [...(m[1] ?? "").matchAll(/`(\w+)` (\d+)/g)].map((a) => [a[1], Number(a[2])]))
    )
    expect(byAction, "transitions by action").toEqual(TRANSITIONS_BY_ACTION)
  })

  it.each(invariantNames)("%s holds in every reachable state", (name) => {
    const check = invariants[name]
    for (const [key, { state }] of reachable) {
      if (!check(state, MC)) {
        expect.fail(`${name} violated by ${key}\nreached by ${trace(explored.visits, key)}`)
      }
    }
  })

  it("takes every action of Next at least once (no dead action)", () => {
    for (const action of actionNames) {
      expect(explored.perAction.get(action) ?? 0, action).toBeGreaterThan(0)
    }
  })

  it("has no self-loop: every enabled action changes the state", () => {
    expect([...explored.selfLoops.keys()]).toEqual([])
  })

  it("reaches every call state, including in doubt, for every call", () => {
    for (const c of MC.calls) {
      const seen = new Set(reachable.map(([, { state }]) => callState(state, c)))
      const expected: CallState[] = ["absent", "proposed", "started", "inDoubt", "succeeded", "failed", "cancelled", "timedOut"]
      if (MC.compensatableCalls.includes(c)) expected.push("compensated")
      expect([...seen].sort(), c).toEqual(expected.sort())
    }
  })

  it("ends only in finished states: up, no crash left, every call closed (why CHECK_DEADLOCK is off)", () => {
    expect(explored.terminal.length).toBeGreaterThan(0)
    for (const key of explored.terminal) {
      const { state } = explored.visits.get(key) as Visit
      expect(state.up, key).toBe(true)
      expect(state.crashes, key).toBe(MC.maxCrashes)
      for (const c of MC.calls) expect(finished.has(callState(state, c)), `${c} in ${key}`).toBe(true)
    }
  })

  it("establishes the premises of OutcomeProp under the fairness of Spec", () => {
    // 1. Every step increases `progress`: the graph is acyclic, so a behaviour ends by stuttering
    //    forever in some state.
    expect(explored.notProgressing.slice(0, 3)).toEqual([])
    // 2. In every state with an open call, an action with weak fairness makes progress for it:
    //    Recover while down; TimeOut while it runs; exactly one of Rerun, Reconcile, CloseUnknown
    //    while it is in doubt (the resolution is a function of the tool's semantics). A behaviour
    //    cannot stutter forever there, so every open call eventually has an outcome.
    for (const [key, { state }] of reachable) {
      for (const c of MC.calls) {
        if (!isOpen(state, c)) continue
        if (!state.up) {
          expect(Recover(state)?.up, key).toBe(true)
        } else if (callState(state, c) === "started") {
          expect(TimeOut(state, { c }), `${c} in ${key}`).not.toBeNull()
        } else {
          const resolutions = [Rerun(state, { c }), Reconcile(state, { c }), CloseUnknown(state, { c })].filter((s) => s !== null)
          expect(resolutions.length, `${c} in ${key}`).toBe(1)
        }
      }
    }
  })

  it("never mutates the state it is given (states are deep-frozen during the search)", () => {
    // explore() froze every state before expanding it: reaching this point means no action wrote
    // into its input. Check that the freezing really covered the nested data.
    const [, { state }] = reachable[reachable.length - 1] as [string, Visit]
    expect(Object.isFrozen(state.log)).toBe(true)
    expect(Object.isFrozen(state.log.c1)).toBe(true)
    expect(Object.isFrozen(state.executed)).toBe(true)
  })
})

// ------------------------------------------------------------------------------------------------
// Scenarios: named paths through the model, readable as the protocol.
// ------------------------------------------------------------------------------------------------

/** Applies an action that must be enabled. */
function must(s: ToolCallState | null): ToolCallState {
  expect(s).not.toBeNull()
  return s as ToolCallState
}

/** Proposes and starts c: its started record is durable and it runs. */
const begin = (s: ToolCallState, c: string, k: ToolCallConstants = MC): ToolCallState => must(Start(must(Propose(s, { c }, k)), { c }, k))

const types = (s: ToolCallState, c: string): string[] => (s.log[c] ?? []).map((r) => r.type)

describe("ToolCall model, scenarios", () => {
  it("three calls: a crash after c1 succeeded and c2, c3 started; recovery resolves each by its semantics and keeps c1's result", () => {
    let s = begin(Init(), "c1")
    s = must(Succeed(must(Execute(s, { c: "c1" })), { c: "c1" }))
    s = begin(s, "c2")
    s = must(Execute(s, { c: "c2" }))
    s = begin(s, "c3")
    s = must(Execute(s, { c: "c3" }))
    s = must(Crash(s))
    expect(s).toMatchObject({ up: false, running: [], effected: [], crashes: 1 })
    expect(MC.calls.map((c) => callState(s, c))).toEqual(["succeeded", "inDoubt", "inDoubt"])
    expect(settled(s)).toBe(false)
    // Nothing is resolved while down.
    expect(Rerun(s, { c: "c2" })).toBeNull()
    expect(Reconcile(s, { c: "c3" })).toBeNull()
    s = must(Recover(s))
    // c2 (idempotent) is re-run; c3 (compensatable, reconcile) is reconciled; no other choice.
    expect(Reconcile(s, { c: "c2" })).toBeNull()
    expect(CloseUnknown(s, { c: "c2" })).toBeNull()
    expect(Rerun(s, { c: "c3" })).toBeNull()
    expect(CloseUnknown(s, { c: "c3" })).toBeNull()
    s = must(Rerun(s, { c: "c2" }))
    expect(s.log.c2?.slice(-2)).toEqual([
      { type: "failed", attempt: 1, retryable: true, reason: "unknown" },
      { type: "started", attempt: 2, key: keyOf("c2") }
    ])
    s = must(Reconcile(s, { c: "c3" }))
    expect(s.log.c3?.at(-1)).toEqual({ type: "succeeded", attempt: 1 })
    // The rerun executes the idempotent effect again under the same key; allowed for it.
    s = must(Succeed(must(Execute(s, { c: "c2" })), { c: "c2" }))
    expect(s.executed).toEqual({ [keyOf("c1")]: 1, [keyOf("c2")]: 2, [keyOf("c3")]: 1 })
    expect(types(s, "c1")).toEqual(["proposed", "started", "succeeded"]) // untouched by recovery
    expect(MC.calls.map((c) => callState(s, c))).toEqual(["succeeded", "succeeded", "succeeded"])
    expect(settled(s)).toBe(true)
    for (const name of invariantNames) expect(invariants[name](s, MC), name).toBe(true)
  })

  it("a retry after a transient failure keeps the key and executes the idempotent effect at most MaxAttempts times", () => {
    let s = begin(Init(), "c2")
    s = must(Fail(must(Execute(s, { c: "c2" })), { c: "c2", retryable: true }))
    s = must(Retry(s, { c: "c2" }))
    expect(s.log.c2?.at(-1)).toEqual({ type: "started", attempt: 2, key: keyOf("c2") })
    expect(s.running).toEqual(["c2"])
    s = must(Fail(must(Execute(s, { c: "c2" })), { c: "c2", retryable: true }))
    expect(attempt(s, "c2")).toBe(MC.maxAttempts)
    expect(Retry(s, { c: "c2" })).toBeNull() // out of attempts
    expect(s.executed[keyOf("c2")]).toBe(MC.maxAttempts)
    const keys = (s.log.c2 ?? []).flatMap((r) => (r.type === "started" ? [r.key] : []))
    expect(keys).toEqual([keyOf("c2"), keyOf("c2")])
    // A non-retryable error is final, and an unsafe tool is never retried, retryable or not.
    expect(Retry(must(Fail(begin(Init(), "c2"), { c: "c2", retryable: false })), { c: "c2" })).toBeNull()
    expect(Retry(must(Fail(begin(Init(), "c1"), { c: "c1", retryable: true })), { c: "c1" })).toBeNull()
    expect(Retry(must(Fail(begin(Init(), "c3"), { c: "c3", retryable: true })), { c: "c3" })).toBeNull()
  })

  it("an unsafe call in doubt is never re-run: it is closed unknown, or reconciled if its tool can", () => {
    const inDoubt = (k: ToolCallConstants, effect: boolean): ToolCallState => {
      let s = begin(Init(k), "c1", k)
      if (effect) s = must(Execute(s, { c: "c1" }))
      return must(Recover(must(Crash(s, {}, k))))
    }
    // MC: c1 has no reconcile: closed as failed "unknown", whatever happened in the world.
    for (const effect of [false, true]) {
      const s = inDoubt(MC, effect)
      expect(callState(s, "c1")).toBe("inDoubt")
      expect(Rerun(s, { c: "c1" })).toBeNull()
      expect(Reconcile(s, { c: "c1" })).toBeNull()
      expect(Execute(s, { c: "c1" })).toBeNull() // its attempt is not running any more
      const closed = must(CloseUnknown(s, { c: "c1" }))
      expect(closed.log.c1?.at(-1)).toEqual({ type: "failed", attempt: 1, retryable: false, reason: "unknown" })
      expect(closed.executed[keyOf("c1")]).toBe(effect ? 1 : 0)
      expect(next(closed).filter((step) => "c" in step.args && step.args.c === "c1")).toEqual([]) // final
    }
    // With a reconcile function, the world decides the outcome.
    const withReconcile: ToolCallConstants = { ...MC, hasReconcile: ["c1", "c3"] }
    const ran = must(Reconcile(inDoubt(withReconcile, true), { c: "c1" }, withReconcile))
    expect(ran.log.c1?.at(-1)).toEqual({ type: "succeeded", attempt: 1 })
    const didNot = must(Reconcile(inDoubt(withReconcile, false), { c: "c1" }, withReconcile))
    expect(didNot.log.c1?.at(-1)).toEqual({ type: "failed", attempt: 1, retryable: false, reason: "error" })
    expect(CloseUnknown(inDoubt(withReconcile, true), { c: "c1" }, withReconcile)).toBeNull()
  })

  it("a timeout or cancel racing an executed effect still gives exactly one outcome", () => {
    for (const close of [TimeOut, Cancel] as const) {
      const executed = must(Execute(begin(Init(), "c3"), { c: "c3" }))
      const s = must(close(executed, { c: "c3" }))
      expect(types(s, "c3")).toEqual(["proposed", "started", close === TimeOut ? "timedOut" : "cancelled"])
      expect(s.executed[keyOf("c3")]).toBe(1) // the world keeps the effect
      expect(s).toMatchObject({ running: [], effected: [] })
      // The tool's late success, a second close, or another execution are all refused.
      expect(Succeed(s, { c: "c3" })).toBeNull()
      expect(Fail(s, { c: "c3", retryable: false })).toBeNull()
      expect(TimeOut(s, { c: "c3" })).toBeNull()
      expect(Cancel(s, { c: "c3" })).toBeNull()
      expect(Execute(s, { c: "c3" })).toBeNull()
      // Before the effect: the effect can no longer happen.
      const early = must(close(begin(Init(), "c3"), { c: "c3" }))
      expect(Execute(early, { c: "c3" })).toBeNull()
      expect(early.executed[keyOf("c3")]).toBe(0)
    }
  })

  it("a call rejected before it starts (bad input, unknown tool) is closed at attempt 0: nothing runs, nothing follows, no crash puts it in doubt", () => {
    expect(Reject(Init(), { c: "c1" })).toBeNull() // not proposed yet
    let s = must(Propose(Init(), { c: "c1" }))
    s = must(Reject(s, { c: "c1" }))
    expect(s.log.c1).toEqual([proposed("c1"), { type: "failed", attempt: 0, retryable: false, reason: "rejected" }])
    expect(s.log.c1?.at(-1)).toEqual(rejectedRecord)
    expect(callState(s, "c1")).toBe("failed")
    expect(attempt(s, "c1")).toBe(0) // no attempt was ever started
    expect(s).toMatchObject({ running: [], effected: [], executed: { [keyOf("c1")]: 0 } })
    // Final: no second rejection, no start, no effect, no retry (even for an idempotent tool).
    expect(Reject(s, { c: "c1" })).toBeNull()
    expect(Start(s, { c: "c1" })).toBeNull()
    expect(Execute(s, { c: "c1" })).toBeNull()
    expect(next(s).filter((step) => "c" in step.args && step.args.c === "c1")).toEqual([])
    const idempotent = must(Reject(must(Propose(Init(), { c: "c2" })), { c: "c2" }))
    expect(Retry(idempotent, { c: "c2" })).toBeNull()
    // A crash leaves it failed, not in doubt: recovery has nothing to resolve.
    const recovered = must(Recover(must(Crash(s))))
    expect(callState(recovered, "c1")).toBe("failed")
    expect(settled(recovered)).toBe(true)
    expect([Rerun(recovered, { c: "c1" }), Reconcile(recovered, { c: "c1" }), CloseUnknown(recovered, { c: "c1" })]).toEqual([null, null, null])
    // Only a proposed call can be rejected: not while down, not once started.
    expect(Reject(must(Crash(must(Propose(Init(), { c: "c1" })))), { c: "c1" })).toBeNull()
    expect(Reject(begin(Init(), "c1"), { c: "c1" }), "started").toBeNull()
    for (const name of invariantNames) expect(invariants[name](s, MC), name).toBe(true)
    // The lifecycle: the rejection (exactly that record) follows the proposal, and nothing follows it.
    expect(canFollow(proposed("c1"), rejectedRecord)).toBe(true)
    expect(canFollow(undefined, rejectedRecord)).toBe(false)
    expect(canFollow(started("c1", 1), rejectedRecord)).toBe(false)
    expect(canFollow(proposed("c1"), failed(0, true, "rejected"))).toBe(false)
    expect(canFollow(proposed("c1"), failed(1, false, "rejected"))).toBe(false)
    expect(canFollow(rejectedRecord, started("c1", 1))).toBe(false)
    expect(canFollow(rejectedRecord, compensated(0))).toBe(false)
  })

  it("succeeds only after the effect, and only a started attempt's effect runs (the WAL)", () => {
    let s = must(Propose(Init(), { c: "c2" }))
    expect(Execute(s, { c: "c2" })).toBeNull() // proposed: no durable started yet
    s = must(Start(s, { c: "c2" }))
    expect(Succeed(s, { c: "c2" })).toBeNull() // nothing happened yet
    s = must(Execute(s, { c: "c2" }))
    expect(Execute(s, { c: "c2" })).toBeNull() // once per attempt
    expect(must(Succeed(s, { c: "c2" })).log.c2?.at(-1)).toEqual({ type: "succeeded", attempt: 1 })
    expect(Start(s, { c: "c2" })).toBeNull() // started once; later attempts come from Retry or Rerun
    expect(Propose(s, { c: "c2" })).toBeNull()
  })

  it("compensates a success of a compensatable tool once, reconciled successes included; never an unsafe one", () => {
    let s = must(Succeed(must(Execute(begin(Init(), "c3"), { c: "c3" })), { c: "c3" }))
    s = must(Compensate(s, { c: "c3" }))
    expect(types(s, "c3")).toEqual(["proposed", "started", "succeeded", "compensated"])
    expect(Compensate(s, { c: "c3" })).toBeNull()
    const reconciled = must(Reconcile(must(Recover(must(Crash(must(Execute(begin(Init(), "c3"), { c: "c3" })))))), { c: "c3" }))
    expect(must(Compensate(reconciled, { c: "c3" })).log.c3?.at(-1)).toEqual({ type: "compensated", attempt: 1 })
    const unsafe = must(Succeed(must(Execute(begin(Init(), "c1"), { c: "c1" })), { c: "c1" }))
    expect(Compensate(unsafe, { c: "c1" })).toBeNull()
    expect(Compensate(must(Fail(begin(Init(), "c3"), { c: "c3", retryable: false })), { c: "c3" })).toBeNull()
  })

  it("a crash during recovery: the rerun attempt ends in doubt too, and out of attempts it is closed unknown", () => {
    let s = must(Execute(begin(Init(), "c2"), { c: "c2" }))
    s = must(Recover(must(Crash(s))))
    s = must(Rerun(s, { c: "c2" }))
    s = must(Execute(s, { c: "c2" }))
    s = must(Recover(must(Crash(s))))
    expect(callState(s, "c2")).toBe("inDoubt")
    expect(attempt(s, "c2")).toBe(MC.maxAttempts)
    expect(Rerun(s, { c: "c2" })).toBeNull()
    s = must(CloseUnknown(s, { c: "c2" }))
    expect(s.log.c2).toEqual([
      { type: "proposed", key: keyOf("c2") },
      { type: "started", attempt: 1, key: keyOf("c2") },
      { type: "failed", attempt: 1, retryable: true, reason: "unknown" },
      { type: "started", attempt: 2, key: keyOf("c2") },
      { type: "failed", attempt: 2, retryable: false, reason: "unknown" }
    ])
    expect(s.executed[keyOf("c2")]).toBe(2)
    expect(Crash(s)).toBeNull() // MaxCrashes = 2
    expect(settled(s)).toBe(true)
  })
})

// ------------------------------------------------------------------------------------------------
// Each invariant can fail: hand-made broken states, each a small edit of a legal state.
// ------------------------------------------------------------------------------------------------

const proposed = (c: string): ToolCallRecord => ({ type: "proposed", key: keyOf(c) })
const started = (c: string, a: number, key = keyOf(c)): ToolCallRecord => ({ type: "started", attempt: a, key })
const succeeded = (a: number): ToolCallRecord => ({ type: "succeeded", attempt: a })
const failed = (a: number, retryable: boolean, reason: FailReason = "error"): ToolCallRecord => ({ type: "failed", attempt: a, retryable, reason })
const compensated = (a: number): ToolCallRecord => ({ type: "compensated", attempt: a })

/** A legal state: c1 succeeded, c2 runs and its effect happened, c3 is proposed (so it could still start or be rejected). */
const legal: ToolCallState = {
  log: {
    c1: [proposed("c1"), started("c1", 1), succeeded(1)],
    c2: [proposed("c2"), started("c2", 1)],
    c3: [proposed("c3")]
  },
  running: ["c2"],
  executed: { [keyOf("c1")]: 1, [keyOf("c2")]: 1, [keyOf("c3")]: 0 },
  effected: ["c2"],
  crashes: 0,
  up: true
}

const withLog = (c: string, records: ToolCallRecord[]): ToolCallState["log"] => ({ ...legal.log, [c]: records })
const withExecuted = (c: string, n: number): ToolCallState["executed"] => ({ ...legal.executed, [keyOf(c)]: n })

const broken: ReadonlyArray<{ inv: InvariantName; why: string; state: ToolCallState }> = [
  { inv: "TypeInv", why: "crashes beyond MaxCrashes", state: { ...legal, crashes: 3 } },
  { inv: "TypeInv", why: "a running call that is not a call", state: { ...legal, running: ["c2", "c4"] } },
  { inv: "TypeInv", why: "executed lacks a key", state: { ...legal, executed: { [keyOf("c1")]: 1, [keyOf("c2")]: 1 } } },
  { inv: "TypeInv", why: "a negative execution count", state: { ...legal, executed: withExecuted("c3", -1) } },
  { inv: "TypeInv", why: "log lacks a call", state: { ...legal, log: { c1: legal.log.c1 ?? [], c2: legal.log.c2 ?? [] } } },
  { inv: "TypeInv", why: "an attempt beyond MaxAttempts", state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 3)]) } },
  {
    inv: "TypeInv",
    why: "a record with an unknown field",
    state: { ...legal, log: withLog("c2", [proposed("c2"), { ...started("c2", 1), call: "c2" } as unknown as ToolCallRecord]) }
  },
  {
    inv: "TypeInv",
    why: "a failed record without a reason",
    state: { ...legal, log: withLog("c1", [proposed("c1"), started("c1", 1), { type: "failed", attempt: 1, retryable: false } as unknown as ToolCallRecord]) }
  },
  { inv: "TypeInv", why: "a key that is no call's", state: { ...legal, log: withLog("c3", [{ type: "proposed", key: "key:c9" }]) } },
  { inv: "TypeInv", why: "a retryable rejection", state: { ...legal, log: withLog("c3", [proposed("c3"), failed(0, true, "rejected")]) } },
  {
    inv: "TypeInv",
    why: "a rejection of a started attempt (reason rejected, attempt 1)",
    state: { ...legal, log: withLog("c1", [proposed("c1"), started("c1", 1), failed(1, false, "rejected")]) }
  },
  { inv: "TypeInv", why: "attempt 0 with another reason than rejected", state: { ...legal, log: withLog("c3", [proposed("c3"), failed(0, false, "error")]) } },
  { inv: "TypeInv", why: "a started record with attempt 0", state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 0)]) } },
  {
    inv: "WalInv",
    why: "an effect ran with no durable started (c3 is only proposed)",
    state: { ...legal, executed: withExecuted("c3", 1) }
  },
  {
    inv: "WalInv",
    why: "the effect ran twice in one attempt",
    state: { ...legal, executed: withExecuted("c2", 2) }
  },
  {
    inv: "WalInv",
    why: "a running call whose latest record is its outcome",
    state: { ...legal, running: ["c1", "c2"] }
  },
  {
    inv: "WalInv",
    why: "the effect of a rejected call ran (nothing was started)",
    state: { ...legal, log: withLog("c3", [proposed("c3"), rejectedRecord]), executed: withExecuted("c3", 1) }
  },
  { inv: "WalInv", why: "an effect outside a running attempt", state: { ...legal, effected: ["c1", "c2"] } },
  { inv: "WalInv", why: "a call runs while the process is down", state: { ...legal, up: false, crashes: 1 } },
  {
    inv: "PairingInv",
    why: "two outcomes for one attempt",
    state: { ...legal, log: withLog("c1", [proposed("c1"), started("c1", 1), succeeded(1), failed(1, false)]) }
  },
  {
    inv: "PairingInv",
    why: "an outcome with no started attempt",
    state: { ...legal, log: withLog("c3", [proposed("c3"), { type: "cancelled", attempt: 1 }]) }
  },
  {
    inv: "PairingInv",
    why: "an attempt left without an outcome when the next one started",
    state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 1), started("c2", 2)]), executed: withExecuted("c2", 1) }
  },
  {
    inv: "PairingInv",
    why: "settled (up, nothing running) with a started attempt that has no outcome and is not the latest record",
    state: {
      ...legal,
      log: withLog("c2", [proposed("c2"), started("c2", 1), started("c2", 2), failed(2, false)]),
      running: [],
      effected: []
    }
  },
  {
    inv: "PairingInv",
    why: "a rejection after a start: an outcome of no attempt, and attempt 1 left without one",
    state: { ...legal, log: withLog("c3", [proposed("c3"), started("c3", 1), rejectedRecord]) }
  },
  { inv: "PairingInv", why: "a rejection with no proposal right before it", state: { ...legal, log: withLog("c3", [rejectedRecord]) } },
  {
    inv: "AtMostOnceInv",
    why: "an unsafe call retried: started twice, its effect ran twice under one key",
    state: {
      ...legal,
      log: withLog("c1", [proposed("c1"), started("c1", 1), failed(1, true), started("c1", 2), succeeded(2)]),
      executed: withExecuted("c1", 2)
    }
  },
  {
    inv: "AtMostOnceInv",
    why: "a compensatable call re-run in doubt, even though its effect never ran twice",
    state: {
      ...legal,
      log: withLog("c3", [proposed("c3"), started("c3", 1), failed(1, true, "unknown"), started("c3", 2), failed(2, false)]),
      executed: withExecuted("c3", 1)
    }
  },
  {
    inv: "AtMostOnceInv",
    why: "an idempotent effect ran more than MaxAttempts times",
    state: { ...legal, executed: withExecuted("c2", 3), log: withLog("c2", [proposed("c2"), started("c2", 1), failed(1, true), started("c2", 2)]) }
  },
  {
    inv: "KeyStableInv",
    why: "a retry under a new key",
    state: {
      ...legal,
      log: withLog("c2", [proposed("c2"), started("c2", 1), failed(1, true), started("c2", 2, keyOf("c3"))])
    }
  },
  { inv: "KeyStableInv", why: "a proposal with another call's key", state: { ...legal, log: withLog("c3", [proposed("c1")]) } },
  {
    inv: "KeyStableInv",
    why: "attempts not numbered 1, 2, ...",
    state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 2)]) }
  },
  {
    inv: "LifecycleInv",
    why: "a retry after a success",
    state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 1), succeeded(1), started("c2", 2)]) }
  },
  {
    inv: "LifecycleInv",
    why: "a retry after a non-retryable failure",
    state: { ...legal, log: withLog("c2", [proposed("c2"), started("c2", 1), failed(1, false), started("c2", 2)]) }
  },
  {
    inv: "LifecycleInv",
    why: "a rejected call that later starts",
    state: { ...legal, log: withLog("c3", [proposed("c3"), rejectedRecord, started("c3", 1)]) }
  },
  {
    inv: "LifecycleInv",
    why: "a rejection after a start",
    state: { ...legal, log: withLog("c3", [proposed("c3"), started("c3", 1), rejectedRecord]) }
  },
  { inv: "LifecycleInv", why: "a start with no proposal", state: { ...legal, log: withLog("c2", [started("c2", 1)]) } },
  {
    inv: "LifecycleInv",
    why: "a compensation of a failure",
    state: { ...legal, log: withLog("c3", [proposed("c3"), started("c3", 1), failed(1, false), compensated(1)]) }
  },
  {
    inv: "CompensationInv",
    why: "an unsafe tool compensated",
    state: { ...legal, log: withLog("c1", [proposed("c1"), started("c1", 1), succeeded(1), compensated(1)]) }
  },
  {
    inv: "CompensationInv",
    why: "compensated twice",
    state: {
      ...legal,
      log: withLog("c3", [proposed("c3"), started("c3", 1), succeeded(1), compensated(1), compensated(1)]),
      executed: withExecuted("c3", 1)
    }
  },
  {
    inv: "OutcomeInv",
    why: "a success the world does not have (a reconcile that did not read the world)",
    state: { ...legal, log: withLog("c3", [proposed("c3"), started("c3", 1), succeeded(1)]) }
  }
]

describe("ToolCall invariants can fail", () => {
  it("accepts the legal baseline the broken states are edited from", () => {
    for (const name of invariantNames) expect(invariants[name](legal, MC), name).toBe(true)
    expect(explored.visits.has(canonical(legal))).toBe(true)
  })

  it("has at least one broken state per invariant", () => {
    expect(new Set(broken.map((b) => b.inv))).toEqual(new Set(invariantNames))
  })

  it.each(broken)("$inv rejects: $why", ({ inv, state }) => {
    expect(invariants[inv](state, MC)).toBe(false)
    expect(explored.visits.has(canonical(state))).toBe(false)
    // Apart from TypeInv's own cases, the break is semantic: the state is well typed.
    if (inv !== "TypeInv") expect(invariants.TypeInv(state, MC)).toBe(true)
  })
})
