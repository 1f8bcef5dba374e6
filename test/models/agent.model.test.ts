// Exhaustive exploration of models/agent.ts for the constants of spec/MCAgent.cfg, and for a second
// set with two runs (SingleRunInv).
//
// The counts below are what TLC must report for `MCAgent.cfg` (distinct states; TLC's "states
// generated" should be 1 + TRANSITIONS and its search depth DEPTH). spec/README.md records the
// same numbers, and this test checks that it does. If the spec changes, change the model, re-run,
// and update the numbers here and in the README together.
//
// Liveness (Termination) is checked as follows, for both constant sets: every step increases a
// measure (so the state graph has no cycle: Crash/Restart are bounded by MaxCrashes and counted in
// the measure), and in every reachable state where a run has durably started but not durably
// ended, an action with weak fairness in Spec is enabled. Hence a behaviour takes finitely many
// non-stuttering steps, and the state it stutters in has every started run ended: under Fairness,
// Termination holds for these constants. spec/README.md states exactly what this proves.
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import {
  type ActionName,
  type AgentConstants,
  type AgentRecord,
  type AgentState,
  Answer,
  AskModel,
  actionNames,
  allCalls,
  Cancel,
  Crash,
  callId,
  canEnd,
  canonical,
  Exhaust,
  Fail,
  Finish,
  Flush,
  Init,
  type InvariantName,
  invariantNames,
  invariants,
  isEnded,
  isStarted,
  live,
  MC,
  next,
  RecordTurn,
  Restart,
  runOf,
  runStates,
  runStatus,
  SettleCall,
  StartCall,
  StartRun,
  stateKey,
  TimeOut,
  Wait
} from "../../models/agent.ts"

const DISTINCT_STATES = 310511
/** Labelled transitions: one per (state, action, parameter binding). */
const TRANSITIONS = 740229
/** The transitions by action, in the order of Next's disjuncts (they add up to TRANSITIONS). */
const TRANSITIONS_BY_ACTION: Readonly<Record<ActionName, number>> = {
  StartRun: 2,
  AskModel: 627,
  RecordTurn: 1881,
  StartCall: 10716,
  SettleCall: 78420,
  Wait: 7125,
  Answer: 6156,
  Finish: 1380,
  Cancel: 61050,
  Fail: 59720,
  TimeOut: 30969,
  Exhaust: 68580,
  Flush: 256147,
  Crash: 138904,
  Restart: 18552
}
/** TLC's convention: the initial state is at depth 1. */
const DEPTH = 29

/** Two runs, so that SingleRunInv and OneTerminalInv across runs are exercised (one turn of one call: two turns explode). */
const TWO_RUNS: AgentConstants = { runs: ["r1", "r2"], turnsMax: 1, maxCallsPerTurn: 1, maxCrashes: 1 }
const TWO_RUNS_STATES = 29459
const TWO_RUNS_TRANSITIONS = 62572
const TWO_RUNS_DEPTH = 23

/** Fail fast instead of hanging if a change makes the space explode. */
const STATES_MAX = 1_000_000

interface Visit {
  readonly state: AgentState
  readonly depth: number
  /** how the BFS first reached this state (for readable counterexamples) */
  readonly via: { readonly from: string; readonly action: ActionName; readonly args: object } | null
}

interface Exploration {
  readonly k: AgentConstants
  readonly visits: Map<string, Visit>
  readonly transitions: number
  readonly perAction: Map<ActionName, number>
  readonly selfLoops: Map<ActionName, number>
  /** "Action from -> to" for the run an action is about (its r, or the run of its c) */
  readonly lifecycle: Set<string>
  /** actions that changed some run's live state although they are about no run (Flush, Restart) */
  readonly silentChanges: string[]
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
 * A measure every step increases. Between crashes: records (durable ones count twice as much as
 * buffered ones, so Flush increases it even though open calls may leave `open`), model requests,
 * open calls, exhausted budgets. Crash and Restart move to the next phase (2 per crash), weighted
 * above anything a phase can add. So the state graph has no cycle.
 */
function progress(s: AgentState): number {
  const phase = 2 * s.crashes - (s.up ? 0 : 1)
  return 10_000 * phase + 4 * s.log.length + 2 * s.buf.length + s.asked.length + s.open.length + s.overBudget.length
}

const runOfStep = (args: object): string | undefined => ("r" in args ? (args.r as string) : "c" in args ? runOf(args.c as string) : undefined)

/** Breadth-first search keyed by `stateKey` (value identity, as TLC's fingerprints). */
function explore(k: AgentConstants): Exploration {
  const init = deepFreeze(Init(k))
  const visits = new Map<string, Visit>([[stateKey(init), { state: init, depth: 1, via: null }]])
  const queue: string[] = [stateKey(init)]
  const perAction = new Map<ActionName, number>()
  const selfLoops = new Map<ActionName, number>()
  const lifecycle = new Set<string>()
  const silentChanges: string[] = []
  const terminal: string[] = []
  const notProgressing: string[] = []
  let transitions = 0
  let depth = 1
  for (let i = 0; i < queue.length; i++) {
    const key = queue[i] as string
    const visit = visits.get(key) as Visit
    depth = Math.max(depth, visit.depth)
    const steps = next(visit.state, k)
    if (steps.length === 0) terminal.push(key)
    for (const step of steps) {
      transitions++
      perAction.set(step.action, (perAction.get(step.action) ?? 0) + 1)
      const to = stateKey(step.state)
      if (to === key) selfLoops.set(step.action, (selfLoops.get(step.action) ?? 0) + 1)
      if (progress(step.state) <= progress(visit.state)) notProgressing.push(`${key} --${step.action}--> ${to}`)
      const r = runOfStep(step.args)
      if (r !== undefined) lifecycle.add(`${step.action} ${runStatus(visit.state, r, k)} -> ${runStatus(step.state, r, k)}`)
      else if (step.action !== "Crash") {
        for (const q of k.runs) if (runStatus(visit.state, q, k) !== runStatus(step.state, q, k)) silentChanges.push(`${key} --${step.action}--> ${to}`)
      }
      if (!visits.has(to)) {
        visits.set(to, { state: deepFreeze(step.state), depth: visit.depth + 1, via: { from: key, action: step.action, args: step.args } })
        queue.push(to)
        if (visits.size > STATES_MAX) throw new Error(`state space exceeds ${STATES_MAX} states`)
      }
    }
  }
  return { k, visits, transitions, perAction, selfLoops, lifecycle, silentChanges, terminal, notProgressing, depth }
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

/** Is `s` (equal by value) a reachable state of the exploration? */
function reachable(e: Exploration, s: AgentState): boolean {
  const visit = e.visits.get(stateKey(s))
  return visit !== undefined && canonical(visit.state) === canonical(s)
}

/**
 * The first action with weak fairness in Spec that Termination rests on and that is enabled for run
 * r in s, among Restart, Flush, Exhaust(r), TimeOut(r) and SettleCall(c) for the calls of r; or
 * undefined. (Spec also has weak fairness of AskModel and Finish, the loop's own progress;
 * Termination does not need it: the budgets alone bound every run.)
 */
function fairEnabled(s: AgentState, r: string, k: AgentConstants): string | undefined {
  if (Restart(s)) return "Restart"
  if (Flush(s)) return "Flush"
  if (Exhaust(s, { r }, k)) return "Exhaust"
  if (TimeOut(s, { r }, k)) return "TimeOut"
  return allCalls(k).find((c) => runOf(c) === r && SettleCall(s, { c }, k) !== null)
}

/** The states where a run has durably started but not durably ended and no fair action is enabled for it. */
function unfair(e: Exploration): string[] {
  const stuck: string[] = []
  for (const [key, { state }] of e.visits) {
    for (const r of e.k.runs) {
      if (isStarted(state, r, e.k) && !isEnded(state, r, e.k) && fairEnabled(state, r, e.k) === undefined)
        stuck.push(`${r} in ${key}\nreached by ${trace(e.visits, key)}`)
    }
  }
  return stuck
}

/** Every lifecycle step an action takes for its run (Crash aside: it can undo any buffered step). */
const LIFECYCLE = [
  "StartRun idle -> thinking",
  "AskModel thinking -> thinking",
  "RecordTurn thinking -> acting",
  "StartCall acting -> acting",
  "StartCall waiting -> waiting",
  "SettleCall acting -> acting",
  "SettleCall acting -> thinking",
  "SettleCall waiting -> waiting",
  "SettleCall waiting -> acting",
  "SettleCall waiting -> thinking",
  "Wait acting -> waiting",
  "Answer waiting -> acting",
  "Finish acting -> done",
  ...["Cancel", "Fail", "TimeOut"].flatMap((a) => {
    const to = a === "Cancel" ? "cancelled" : a === "Fail" ? "failed" : "timedOut"
    return [`${a} thinking -> ${to}`, `${a} acting -> ${to}`]
  }),
  "Exhaust thinking -> thinking",
  "Exhaust acting -> acting",
  "Exhaust waiting -> waiting"
].sort()

const explored = explore(MC)
const twoRuns = explore(TWO_RUNS)

describe("Agent model, exhaustive for MCAgent.cfg", () => {
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
    const start = readme.indexOf("\n## Agent\n")
    const end = readme.indexOf("\n## ", start + 1)
    const section = readme.slice(start, end === -1 ? undefined : end)
    const recorded = (label: RegExp): string | undefined => new RegExp(`${label.source}\\s*\\**(\\d+)`).exec(section)?.[1]
    expect(recorded(/Distinct states \(MCAgent\.cfg\):/), "distinct states").toBe(String(DISTINCT_STATES))
    expect(recorded(/Transitions \(MCAgent\.cfg\):/), "transitions").toBe(String(TRANSITIONS))
    expect(recorded(/Depth \(MCAgent\.cfg\):/), "depth").toBe(String(DEPTH))
    expect(recorded(/Distinct states \(two runs\):/), "two runs: distinct states").toBe(String(TWO_RUNS_STATES))
    expect(recorded(/Transitions \(two runs\):/), "two runs: transitions").toBe(String(TWO_RUNS_TRANSITIONS))
    expect(recorded(/Depth \(two runs\):/), "two runs: depth").toBe(String(TWO_RUNS_DEPTH))
    const byAction = Object.fromEntries(
      [...section.matchAll(/Transitions per action:([^.]*)\./g)].flatMap((m) => [...(m[1] ?? "").matchAll(/`(\w+)` (\d+)/g)].map((a) => [a[1], Number(a[2])]))
    )
    expect(byAction, "transitions by action").toEqual(TRANSITIONS_BY_ACTION)
  })

  it.each(invariantNames)("%s holds in every reachable state", (name) => {
    const check = invariants[name]
    for (const [key, { state }] of explored.visits) {
      if (!check(state, MC)) expect.fail(`${name} violated by ${key}\nreached by ${trace(explored.visits, key)}`)
    }
  })

  it("takes every action of Next at least once (no dead action), and none is a self-loop", () => {
    for (const action of actionNames) expect(explored.perAction.get(action) ?? 0, action).toBeGreaterThan(0)
    expect([...explored.selfLoops.keys()]).toEqual([])
  })

  it("reaches every run state, and takes exactly the lifecycle's steps (the machine's transitions)", () => {
    const seen = new Set([...explored.visits.values()].map(({ state }) => runStatus(state, "r1")))
    expect([...seen].sort()).toEqual([...runStates].sort())
    expect([...explored.lifecycle].sort()).toEqual(LIFECYCLE)
    expect(explored.silentChanges.slice(0, 3), "Flush and Restart change no run's state").toEqual([])
  })

  it("ends only in finished states: up, no crash left, nothing buffered, the run durably ended (why CHECK_DEADLOCK is off)", () => {
    expect(explored.terminal.length).toBeGreaterThan(0)
    for (const key of explored.terminal) {
      const { state } = explored.visits.get(key) as Visit
      expect(state, key).toMatchObject({ up: true, crashes: MC.maxCrashes, buf: [], asked: [], open: [] })
      for (const r of MC.runs) expect(isEnded(state, r), `${r} in ${key}`).toBe(true)
    }
  })

  it("satisfies Termination for these constants: no cycle, and a fair action is enabled wherever a started run has not ended", () => {
    expect(explored.notProgressing.slice(0, 3)).toEqual([])
    expect(unfair(explored).slice(0, 3)).toEqual([])
  })

  it("never mutates the state it is given (states are deep-frozen during the search)", () => {
    const last = [...explored.visits.values()].at(-1) as Visit
    expect(Object.isFrozen(last.state.log)).toBe(true)
    expect(Object.isFrozen(last.state.log[0])).toBe(true)
  })
})

describe("Agent model, exhaustive for two runs (runs r1, r2; one turn of one call; one crash)", () => {
  it("reaches the recorded counts", () => {
    expect([twoRuns.visits.size, twoRuns.transitions, twoRuns.depth]).toEqual([TWO_RUNS_STATES, TWO_RUNS_TRANSITIONS, TWO_RUNS_DEPTH])
  })

  it.each(invariantNames)("%s holds in every reachable state", (name) => {
    const check = invariants[name]
    for (const [key, { state }] of twoRuns.visits) {
      if (!check(state, TWO_RUNS)) expect.fail(`${name} violated by ${key}\nreached by ${trace(twoRuns.visits, key)}`)
    }
  })

  it("runs one after the other, in either order, each ending in every final state", () => {
    const ends = new Set<string>()
    for (const { state } of twoRuns.visits.values()) {
      const statuses = TWO_RUNS.runs.map((r) => runStatus(state, r, TWO_RUNS))
      const firstDone = state.log.find((x) => x.type === "started")?.run
      if (statuses.every((st) => ["done", "cancelled", "failed", "timedOut"].includes(st)) && state.buf.length === 0)
        ends.add(`${firstDone}:${statuses.join(",")}`)
    }
    expect(ends.size).toBe(2 * 4 * 4)
  })

  it("satisfies Termination for these constants too (same check)", () => {
    expect(twoRuns.notProgressing.slice(0, 3)).toEqual([])
    for (const key of twoRuns.terminal) {
      const { state } = twoRuns.visits.get(key) as Visit
      for (const r of TWO_RUNS.runs) expect(isEnded(state, r, TWO_RUNS), `${r} in ${key}`).toBe(true)
    }
    expect(unfair(twoRuns).slice(0, 3)).toEqual([])
  })
})

// ------------------------------------------------------------------------------------------------
// Scenarios: named paths through the model, readable as the protocol.
// ------------------------------------------------------------------------------------------------

/** Applies an action that must be enabled. */
function must(s: AgentState | null): AgentState {
  expect(s).not.toBeNull()
  return s as AgentState
}

const c1 = callId("r1", 1, 1)
const c2 = callId("r1", 1, 2)

/** r1 started, asked, and its first turn (k calls) recorded: in the buffer only. */
const turnOne = (k: number): AgentState => must(RecordTurn(must(AskModel(must(StartRun(Init(), { r: "r1" })), { r: "r1" })), { r: "r1", k }))

describe("Agent model, scenarios", () => {
  it("answers in two turns: calls run once the turn is durable, then the model answers without calls", () => {
    let s = turnOne(2)
    expect(runStatus(s, "r1")).toBe("acting")
    expect(live(s, "r1")?.pending).toEqual([c1, c2])
    expect(StartCall(s, { c: c1 }), "the turn is only buffered").toBeNull()
    s = must(Flush(s))
    s = must(StartCall(must(StartCall(s, { c: c1 })), { c: c2 }))
    expect(StartCall(s, { c: c1 }), "once").toBeNull()
    s = must(SettleCall(s, { c: c2 }))
    expect(runStatus(s, "r1")).toBe("acting")
    s = must(SettleCall(s, { c: c1 }))
    expect(runStatus(s, "r1")).toBe("thinking")
    s = must(AskModel(s, { r: "r1" }))
    expect(s.asked).toEqual([{ run: "r1", turn: 2 }])
    s = must(RecordTurn(s, { r: "r1", k: 0 }))
    s = must(Flush(must(Finish(s, { r: "r1" }))))
    expect(runStatus(s, "r1")).toBe("done")
    expect(s.open).toEqual([]) // the settlements are durable
    expect(next(s).map((step) => step.action)).toEqual(["Crash"])
    for (const name of invariantNames) expect(invariants[name](s), name).toBe(true)
  })

  it("a crash loses a buffered turn: no call of it ever started, and the model is asked for the same turn again", () => {
    let s = must(AskModel(must(Flush(must(StartRun(Init(), { r: "r1" })))), { r: "r1" }))
    s = must(RecordTurn(s, { r: "r1", k: 1 }))
    expect(AskModel(s, { r: "r1" }), "turn 1 is written (buffered): never asked again").toBeNull()
    expect(StartCall(s, { c: c1 })).toBeNull()
    s = must(Restart(must(Crash(s))))
    expect(s.log).toEqual([started()])
    expect(runStatus(s, "r1")).toBe("thinking")
    expect(s.open).toEqual([])
    expect(must(AskModel(s, { r: "r1" })).asked).toEqual([{ run: "r1", turn: 1 }])
  })

  it("a call in flight at a crash stays open (in doubt) until recovery settles it; it is never started again", () => {
    let s = must(StartCall(must(Flush(turnOne(1))), { c: c1 }))
    s = must(Restart(must(Crash(must(SettleCall(s, { c: c1 }))))))
    expect(runStatus(s, "r1")).toBe("acting") // the settlement was only buffered
    expect(s.open).toEqual([c1])
    expect(StartCall(s, { c: c1 })).toBeNull()
    expect(Wait(s, { c: c1 })).toBeNull()
    s = must(SettleCall(s, { c: c1 }))
    expect(runStatus(s, "r1")).toBe("thinking")
    expect(must(Flush(s)).open).toEqual([])
  })

  it("waits for a person about one call while the other runs; the question survives a crash once durable", () => {
    let s = must(Flush(turnOne(2)))
    s = must(StartCall(s, { c: c2 }))
    s = must(Wait(s, { c: c1 }))
    expect(runStatus(s, "r1")).toBe("waiting")
    expect(Answer(s, { c: c1 }), "the question is not durable yet").toBeNull()
    expect(StartCall(s, { c: c1 }), "not while asked about").toBeNull()
    s = must(SettleCall(s, { c: c2 }))
    expect(runStatus(s, "r1")).toBe("waiting")
    s = must(Restart(must(Crash(must(Flush(s))))))
    expect(runStatus(s, "r1")).toBe("waiting")
    expect(Wait(s, { c: c1 }), "asked once per call").toBeNull()
    s = must(Answer(s, { c: c1 }))
    expect(runStatus(s, "r1")).toBe("acting")
    s = must(StartCall(must(Flush(s)), { c: c1 }))
    s = must(SettleCall(s, { c: c1 }))
    expect(runStatus(s, "r1")).toBe("thinking")
    // A "no", or a question nobody answers in time: the call is rejected (settled) while waiting.
    const rejected = must(SettleCall(must(Wait(must(Flush(turnOne(2))), { c: c1 })), { c: c1 }))
    expect(runStatus(rejected, "r1")).toBe("acting")
    expect(live(rejected, "r1")).toMatchObject({ pending: [c2], awaiting: "" })
  })

  it("cancels only once every call of the turn is settled", () => {
    let s = must(StartCall(must(Flush(turnOne(2))), { c: c1 }))
    expect(canEnd(s, "r1")).toBe(false)
    expect(Cancel(s, { r: "r1" })).toBeNull()
    s = must(SettleCall(must(SettleCall(s, { c: c1 })), { c: c2 }))
    s = must(Cancel(s, { r: "r1" }))
    expect(runStatus(s, "r1")).toBe("cancelled")
    expect(next(s).map((step) => step.action)).toEqual(["Flush", "Crash"])
  })

  it("after its budget runs out a run asks nothing and starts nothing: it settles its calls and times out or fails", () => {
    let s = must(Exhaust(must(Flush(turnOne(2))), { r: "r1" }))
    expect(StartCall(s, { c: c1 })).toBeNull()
    expect(Wait(s, { c: c1 })).toBeNull()
    expect(TimeOut(s, { r: "r1" }), "calls pending").toBeNull()
    s = must(SettleCall(must(SettleCall(s, { c: c1 })), { c: c2 }))
    expect(AskModel(s, { r: "r1" })).toBeNull()
    expect(must(TimeOut(s, { r: "r1" })).buf.at(-1)).toEqual({ type: "timedOut", run: "r1" })
    expect(must(Fail(s, { r: "r1" })).buf.at(-1)).toEqual({ type: "failed", run: "r1" })
    // Exhaust needs a durable start: time counts from the journal.
    expect(Exhaust(must(StartRun(Init(), { r: "r1" })), { r: "r1" })).toBeNull()
  })

  it("fails once its turns are spent; a model error or stall ends it only while a request is in flight", () => {
    let s = must(StartRun(Init(), { r: "r1" }))
    expect(Fail(s, { r: "r1" }), "no request, budget left").toBeNull()
    expect(TimeOut(s, { r: "r1" })).toBeNull()
    s = must(AskModel(s, { r: "r1" }))
    expect(must(TimeOut(s, { r: "r1" })).asked, "the stalled request is abandoned").toEqual([])
    for (let n = 1; n <= MC.turnsMax; n++) {
      s = must(SettleCall(must(RecordTurn(n === 1 ? s : must(AskModel(s, { r: "r1" })), { r: "r1", k: 1 })), { c: callId("r1", n, 1) }))
    }
    expect(live(s, "r1")).toMatchObject({ status: "thinking", turns: MC.turnsMax })
    expect(AskModel(s, { r: "r1" })).toBeNull()
    expect(TimeOut(s, { r: "r1" })).toBeNull()
    expect(runStatus(must(Fail(s, { r: "r1" })), "r1")).toBe("failed")
  })

  it("starts a second run only once the first has ended (two runs)", () => {
    const k = TWO_RUNS
    let s = must(StartRun(Init(k), { r: "r1" }, k))
    expect(StartRun(s, { r: "r2" }, k)).toBeNull()
    s = must(Cancel(s, { r: "r1" }, k))
    s = must(StartRun(s, { r: "r2" }, k))
    expect(TWO_RUNS.runs.map((r) => runStatus(s, r, k))).toEqual(["cancelled", "thinking"])
    // A crash loses both buffered records: r1 is thinking again, r2 idle.
    s = must(Flush(must(StartRun(Init(k), { r: "r1" }, k))))
    s = must(Restart(must(Crash(must(StartRun(must(Cancel(s, { r: "r1" }, k)), { r: "r2" }, k)), {}, k))))
    expect(TWO_RUNS.runs.map((r) => runStatus(s, r, k))).toEqual(["thinking", "idle"])
    expect(StartRun(s, { r: "r2" }, k)).toBeNull()
  })
})

// ------------------------------------------------------------------------------------------------
// Each invariant can fail: hand-made broken states, each a small edit of a legal state.
// ------------------------------------------------------------------------------------------------

const started = (r = "r1"): AgentRecord => ({ type: "started", run: r })
const turn = (n: number, calls: number, r = "r1"): AgentRecord => ({ type: "turn", run: r, turn: n, calls })
const settled = (c: string): AgentRecord => ({ type: "settled", run: runOf(c), call: c })
const waiting = (c: string): AgentRecord => ({ type: "waiting", run: runOf(c), call: c })
const answered = (c: string): AgentRecord => ({ type: "answered", run: runOf(c), call: c })
const ended = (type: "done" | "cancelled" | "failed" | "timedOut", r = "r1"): AgentRecord => ({ type, run: r })

/** A legal state: r1's first turn (two calls) is durable, both calls started, c2's settlement is buffered. */
const legal: AgentState = {
  log: [started(), turn(1, 2)],
  buf: [settled(c2)],
  open: [c1, c2],
  asked: [],
  overBudget: [],
  crashes: 0,
  up: true
}

/** A legal state of two runs: r1 cancelled (durable), r2 thinking (buffered). */
const legal2: AgentState = { log: [started("r1"), ended("cancelled", "r1")], buf: [started("r2")], open: [], asked: [], overBudget: [], crashes: 0, up: true }

const broken: ReadonlyArray<{ inv: InvariantName; why: string; state: AgentState; k?: AgentConstants }> = [
  { inv: "TypeInv", why: "crashes beyond MaxCrashes", state: { ...legal, crashes: 2 } },
  { inv: "TypeInv", why: "an open call of a turn beyond TurnsMax", state: { ...legal, open: [c1, c2, callId("r1", 3, 1)] } },
  { inv: "TypeInv", why: "a turn with more calls than MaxCallsPerTurn", state: { ...legal, log: [started(), turn(1, 3)] } },
  { inv: "TypeInv", why: "a request for a turn beyond TurnsMax", state: { ...legal, asked: [{ run: "r1", turn: 3 }] } },
  { inv: "TypeInv", why: "a record with an unknown field", state: { ...legal, log: [started(), { ...turn(1, 2), entry: 4 } as unknown as AgentRecord] } },
  { inv: "TypeInv", why: "a record of an unknown run", state: { ...legal, buf: [settled(c2), started("r9")] } },
  { inv: "TypeInv", why: "open is not a sorted set", state: { ...legal, open: [c2, c1] } },
  { inv: "TypeInv", why: "buffered records while the process is down", state: { ...legal, up: false, crashes: 1 } },
  {
    inv: "TypeInv",
    why: "a settlement filed under another run than its call's",
    k: TWO_RUNS,
    state: { ...legal2, buf: [started("r2"), { type: "settled", run: "r2", call: callId("r1", 1, 1) }] }
  },
  { inv: "LifecycleInv", why: "a second turn while the first has calls pending", state: { ...legal, buf: [turn(2, 1)] } },
  { inv: "LifecycleInv", why: "turn 2 recorded as turn 1 again", state: { ...legal, log: [started(), turn(1, 0)], buf: [turn(1, 0)], open: [] } },
  { inv: "LifecycleInv", why: "a call settled twice", state: { ...legal, buf: [settled(c2), settled(c2)] } },
  { inv: "LifecycleInv", why: "an answer with no question", state: { ...legal, buf: [settled(c2), answered(c1)] } },
  { inv: "LifecycleInv", why: "a turn before the run started", state: { ...legal, log: [turn(1, 2)] } },
  {
    inv: "LifecycleInv",
    why: "done with a call pending (only in the durable log)",
    state: { ...legal, log: [started(), turn(1, 1), ended("done")], buf: [], open: [] }
  },
  {
    inv: "OneTerminalInv",
    why: "two terminal records for one run",
    state: { ...legal, log: [started(), turn(1, 2), settled(c1), settled(c2), ended("cancelled")], buf: [ended("failed")], open: [] }
  },
  {
    inv: "OneTerminalInv",
    why: "a record of the run after its end",
    state: { ...legal, log: [started(), turn(1, 0), ended("done")], buf: [waiting(callId("r1", 1, 1))], open: [] }
  },
  { inv: "TurnWalInv", why: "a call started while its turn is only buffered", state: { ...legal, log: [started()], buf: [turn(1, 2)], open: [c1] } },
  { inv: "TurnWalInv", why: "a call open although its outcome is durable", state: { ...legal, log: [...legal.log, settled(c2)], buf: [] } },
  { inv: "TurnWalInv", why: "an open call the turn does not propose", state: { ...legal, log: [started(), turn(1, 1)], buf: [], open: [c1, c2] } },
  {
    inv: "NoReaskInv",
    why: "the model asked for turn 1 while turn 1 is buffered (a loop that folds only the durable log)",
    state: { ...legal, log: [started()], buf: [turn(1, 2)], open: [], asked: [{ run: "r1", turn: 1 }] }
  },
  {
    inv: "NoReaskInv",
    why: "the model asked for turn 2 while turn 1's calls are pending",
    state: { ...legal, asked: [{ run: "r1", turn: 2 }] }
  },
  {
    inv: "NoReaskInv",
    why: "two requests in flight for one run",
    state: {
      ...legal,
      log: [started()],
      buf: [],
      open: [],
      asked: [
        { run: "r1", turn: 1 },
        { run: "r1", turn: 2 }
      ]
    }
  },
  {
    inv: "BudgetInv",
    why: "more turns than TurnsMax",
    state: { ...legal, log: [started(), turn(1, 0), turn(2, 0), turn(2, 0)], buf: [], open: [] }
  },
  {
    inv: "BudgetInv",
    why: "the budget of a run that has not durably started ran out",
    state: { ...legal, log: [], buf: [started()], open: [], overBudget: ["r1"] }
  },
  {
    inv: "TerminalSettledInv",
    why: "a run timed out with a call of its turn unsettled",
    state: { ...legal, log: [started(), turn(1, 2), settled(c2)], buf: [ended("timedOut")], open: [c1] }
  },
  {
    inv: "TerminalSettledInv",
    why: "a run cancelled while waiting, its awaited call unsettled (durable)",
    state: { ...legal, log: [started(), turn(1, 1), waiting(c1), ended("cancelled")], buf: [], open: [] }
  },
  {
    inv: "TerminalSettledInv",
    why: "a call settled only after the run's end",
    state: { ...legal, log: [started(), turn(1, 1), ended("failed"), settled(c1)], buf: [], open: [] }
  },
  {
    inv: "SingleRunInv",
    why: "a second run started while the first is active",
    k: TWO_RUNS,
    state: { ...legal2, log: [started("r1")], buf: [started("r2")] }
  },
  {
    inv: "SingleRunInv",
    why: "a run started before the first ended (even if it ended since)",
    k: TWO_RUNS,
    state: { ...legal2, log: [started("r1"), started("r2"), ended("cancelled", "r1")], buf: [] }
  }
]

describe("Agent invariants can fail", () => {
  it("accepts the legal baselines the broken states are edited from, both reachable", () => {
    for (const name of invariantNames) {
      expect(invariants[name](legal, MC), name).toBe(true)
      expect(invariants[name](legal2, TWO_RUNS), name).toBe(true)
    }
    expect(reachable(explored, legal)).toBe(true)
    expect(reachable(twoRuns, legal2)).toBe(true)
  })

  it("has at least one broken state per invariant", () => {
    expect(new Set(broken.map((b) => b.inv))).toEqual(new Set(invariantNames))
  })

  it.each(broken)("$inv rejects: $why", ({ inv, state, k = MC }) => {
    expect(invariants[inv](state, k)).toBe(false)
    expect(reachable(k === MC ? explored : twoRuns, state)).toBe(false)
    // Apart from TypeInv's own cases, the break is semantic: the state is well typed.
    if (inv !== "TypeInv") expect(invariants.TypeInv(state, k)).toBe(true)
  })
})
