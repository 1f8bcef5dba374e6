// Exhaustive exploration of models/authority.ts for the constants of spec/MCAuthority.cfg, and for a
// second set with a chain of three capabilities (transitive attenuation).
//
// The counts below are what TLC must report for `MCAuthority.cfg` (distinct states; TLC's "states
// generated" should be 1 + TRANSITIONS, IgnoreDecision's self-loops included, and its search depth
// DEPTH). spec/README.md records the same numbers, and this test checks that it does. If the spec
// changes, change the model, re-run, and update the numbers here and in the README together.
//
// Liveness (DecisionProp) is checked as follows, for both constant sets: every step that is not a
// self-loop increases a measure (so the state graph has no cycle other than IgnoreDecision's
// self-loops, which are stuttering steps), and in every reachable state where a call awaits approval,
// an action with weak fairness in Spec (Tick, Restart, or Expire of that call) is enabled and changes
// the state. spec/README.md states exactly what this proves.
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import {
  type ActionName,
  Approve,
  Attenuate,
  type AuthorityConstants,
  type AuthorityRecord,
  type AuthorityState,
  Authorize,
  actionNames,
  approvedRecord,
  authorizedRecord,
  awaitingRecord,
  type CallStatus,
  type CapRecord,
  type Check,
  Crash,
  callStates,
  callStatus,
  canonical,
  covers,
  Deny,
  decided,
  deniedRecord,
  Expire,
  expiredRecord,
  finalStatuses,
  hashes,
  hashOf,
  IgnoreDecision,
  Init,
  type InvariantName,
  invariantNames,
  invariants,
  isExhausted,
  isRevoked,
  MC,
  narrower,
  next,
  proposedRecord,
  RejectApproval,
  RequestApproval,
  Restart,
  Revoke,
  rejectedRecord,
  rootCap,
  runtime,
  Start,
  type Step,
  startedRecord,
  stateKey,
  Tick,
  uses,
  verified,
  Withdraw
} from "../../models/authority.ts"
import * as ToolCall from "../../models/toolCall.ts"

const DISTINCT_STATES = 135426
/** Labelled transitions: one per (state, action, parameter binding), IgnoreDecision's self-loops included. */
const TRANSITIONS = 1155314
/** The transitions by action, in the order of Next's disjuncts (they add up to TRANSITIONS). */
const TRANSITIONS_BY_ACTION: Readonly<Record<ActionName, number>> = {
  Authorize: 3472,
  Deny: 15700,
  RequestApproval: 5616,
  Approve: 5616,
  RejectApproval: 5616,
  Expire: 13944,
  Withdraw: 19560,
  IgnoreDecision: 716656,
  Start: 33948,
  Attenuate: 25704,
  Revoke: 133848,
  Tick: 85350,
  Crash: 45142,
  Restart: 45142
}
/** TLC's convention: the initial state is at depth 1. */
const DEPTH = 17

/**
 * A chain of three capabilities over one call (root → child → grandchild): a grandchild can claim
 * what the root grants but its parent does not (transitive widening: c1 when the child dropped it, or
 * c1 without the approval the child added). No crash, one use, time 0..2.
 */
const CHAIN: AuthorityConstants = {
  ...MC,
  calls: ["c1"],
  capabilities: ["child", "grandchild", "root"],
  rootGrants: ["c1"],
  rootApproval: [],
  rootUses: 1,
  maxUses: 1,
  maxTime: 2,
  maxCrashes: 0
}
const CHAIN_STATES = 7810
const CHAIN_TRANSITIONS = 39860
const CHAIN_DEPTH = 12

/** Fail fast instead of hanging if a change makes the space explode. */
const STATES_MAX = 500_000

interface Visit {
  readonly state: AuthorityState
  readonly depth: number
  /** how the BFS first reached this state (for readable counterexamples) */
  readonly via: { readonly from: string; readonly action: ActionName; readonly args: object } | null
}

interface Exploration {
  readonly K: AuthorityConstants
  readonly visits: Map<string, Visit>
  readonly transitions: number
  readonly perAction: Map<ActionName, number>
  readonly selfLoops: Map<ActionName, number>
  /** "Action from -> to" for the call an action is about */
  readonly lifecycle: Set<string>
  /** steps of actions about no call (or about another call) that changed a call's status */
  readonly silentChanges: string[]
  /** states whose only successors are self-loops */
  readonly finished: string[]
  /** edges that are not self-loops along which `progress` does not increase */
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
 * A measure every step but IgnoreDecision's self-loops increases by one: records, minted nodes,
 * revoked nodes, the clock, and the crash/restart phase (Crash adds 2 - 1, Restart 1). So the state
 * graph has no other cycle.
 */
function progress(s: AuthorityState): number {
  const records = Object.values(s.log).reduce((n, seq) => n + seq.length, 0)
  const phase = 2 * s.crashes - (s.up ? 0 : 1)
  return records + Object.keys(s.caps).length + s.revoked.length + s.now + phase
}

/** Breadth-first search keyed by `stateKey` (value identity, as TLC's fingerprints); `onStep` sees every transition. */
function explore(K: AuthorityConstants, onStep?: (from: AuthorityState, step: Step) => void): Exploration {
  const init = deepFreeze(Init(K))
  const visits = new Map<string, Visit>([[stateKey(init), { state: init, depth: 1, via: null }]])
  const queue: string[] = [stateKey(init)]
  const perAction = new Map<ActionName, number>()
  const selfLoops = new Map<ActionName, number>()
  const lifecycle = new Set<string>()
  const silentChanges: string[] = []
  const finished: string[] = []
  const notProgressing: string[] = []
  let transitions = 0
  let depth = 1
  for (let i = 0; i < queue.length; i++) {
    const key = queue[i] as string
    const visit = visits.get(key) as Visit
    depth = Math.max(depth, visit.depth)
    const steps = next(visit.state, K)
    if (steps.every((step) => step.state === visit.state)) finished.push(key)
    for (const step of steps) {
      onStep?.(visit.state, step)
      transitions++
      perAction.set(step.action, (perAction.get(step.action) ?? 0) + 1)
      const to = stateKey(step.state)
      if (to === key) {
        selfLoops.set(step.action, (selfLoops.get(step.action) ?? 0) + 1)
      } else if (progress(step.state) <= progress(visit.state)) {
        notProgressing.push(`${key} --${step.action}--> ${to}`)
      }
      const about = "c" in step.args ? (step.args.c as string) : undefined
      for (const c of K.calls) {
        const before = callStatus(visit.state, c)
        const after = callStatus(step.state, c)
        if (c === about) lifecycle.add(`${step.action} ${before} -> ${after}`)
        else if (before !== after) silentChanges.push(`${c}: ${key} --${step.action}--> ${to}`)
      }
      if (!visits.has(to)) {
        visits.set(to, { state: deepFreeze(step.state), depth: visit.depth + 1, via: { from: key, action: step.action, args: step.args } })
        queue.push(to)
        if (visits.size > STATES_MAX) throw new Error(`state space exceeds ${STATES_MAX} states`)
      }
    }
  }
  return { K, visits, transitions, perAction, selfLoops, lifecycle, silentChanges, finished, notProgressing, depth }
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
function reachable(e: Exploration, s: AuthorityState): boolean {
  const visit = e.visits.get(stateKey(s))
  return visit !== undefined && canonical(visit.state) === canonical(s)
}

/**
 * The first action with weak fairness in Spec that DecisionProp rests on and that is enabled in s
 * and changes it, for call c: Tick, Restart, Expire(c); or undefined.
 */
function fairEnabled(s: AuthorityState, c: string, K: AuthorityConstants): string | undefined {
  if (Tick(s, {}, K)) return "Tick"
  if (Restart(s)) return "Restart"
  if (Expire(s, { c }, K)) return "Expire"
  return undefined
}

/** The states where a call awaits approval and no fair action is enabled for it. */
function unfair(e: Exploration): string[] {
  const stuck: string[] = []
  for (const [key, { state }] of e.visits) {
    for (const c of e.K.calls) {
      if (callStatus(state, c) === "awaitingApproval" && fairEnabled(state, c, e.K) === undefined)
        stuck.push(`${c} in ${key}\nreached by ${trace(e.visits, key)}`)
    }
  }
  return stuck
}

/** Every lifecycle step an action takes for its call: the authority edges of the ToolCall machine. */
const LIFECYCLE = [
  "Authorize proposed -> authorized",
  "Deny proposed -> denied",
  "RequestApproval authorized -> awaitingApproval",
  "Approve awaitingApproval -> approved",
  "RejectApproval awaitingApproval -> rejected",
  "Expire awaitingApproval -> expired",
  "Withdraw awaitingApproval -> rejected",
  "Start authorized -> started",
  "Start approved -> started",
  ...callStates.map((st) => `IgnoreDecision ${st} -> ${st}`)
].sort()

// ------------------------------------------------------------------------------------------------
// The refinement of ToolCall.tla's edge from proposed to started: every step of this model, projected
// on the calls, is a stuttering step or a step of models/toolCall.ts (README, "What it refines").
// ------------------------------------------------------------------------------------------------

/** ToolCall.tla's constants for the same calls: unsafe ones (semantics play no part before a start). */
const TOOLCALL: ToolCall.ToolCallConstants = {
  calls: MC.calls,
  readOnlyCalls: [],
  idempotentCalls: [],
  compensatableCalls: [],
  unsafeCalls: MC.calls,
  hasReconcile: [],
  maxAttempts: 1,
  maxCrashes: MC.maxCrashes
}

/**
 * The refinement mapping on the variables this edge touches (`log`, `crashes`, `up`): proposed,
 * authorized, awaitingApproval, approved ↦ `[proposed]`; denied, rejected, expired ↦ `[proposed,
 * RejectedRecord]`; started ↦ `[proposed, started 1]`. (`running`, `executed` and `effected` belong to
 * what follows the start: no action mapped here reads them.)
 */
function toToolCall(s: AuthorityState): Pick<ToolCall.ToolCallState, "log" | "crashes" | "up"> {
  const log = Object.fromEntries(
    MC.calls.map((c) => {
      const proposed: ToolCall.ToolCallRecord = { type: "proposed", key: ToolCall.keyOf(c) }
      const st = callStatus(s, c)
      if (st === "denied" || st === "rejected" || st === "expired") return [c, [proposed, ToolCall.rejectedRecord]]
      if (st === "started") return [c, [proposed, { type: "started", attempt: 1, key: ToolCall.keyOf(c) }]]
      return [c, [proposed]]
    })
  )
  return { log, crashes: s.crashes, up: s.up }
}

const asToolCallState = (p: Pick<ToolCall.ToolCallState, "log" | "crashes" | "up">): ToolCall.ToolCallState => ({
  ...ToolCall.Init(TOOLCALL),
  ...p
})

/** The ToolCall.tla action each action of this spec is ("stutter": none). */
function toolCallLabel(action: ActionName): string {
  switch (action) {
    case "Deny":
    case "RejectApproval":
    case "Expire":
    case "Withdraw":
      return "Reject"
    case "Start":
      return "Start"
    case "Crash":
      return "Crash"
    case "Restart":
      return "Recover"
    default:
      return "stutter"
  }
}

/** The ToolCall.tla step each action of this spec is (undefined: a stuttering step). */
function toolCallStep(step: Step, from: ToolCall.ToolCallState): { readonly action: string; readonly state: ToolCall.ToolCallState | null } | undefined {
  const c = "c" in step.args ? (step.args.c as string) : ""
  switch (step.action) {
    case "Deny":
    case "RejectApproval":
    case "Expire":
    case "Withdraw":
      return { action: "Reject", state: ToolCall.Reject(from, { c }, TOOLCALL) }
    case "Start":
      return { action: "Start", state: ToolCall.Start(from, { c }, TOOLCALL) }
    case "Crash":
      return { action: "Crash", state: ToolCall.Crash(from, {}, TOOLCALL) }
    case "Restart":
      return { action: "Recover", state: ToolCall.Recover(from) }
    default:
      return undefined
  }
}

const refinement = { failures: [] as string[], taken: new Map<string, number>() }

/** The mapping depends on the calls' states, `crashes` and `up` only. */
const mappingKey = (s: AuthorityState): string => `${MC.calls.map((c) => callStatus(s, c)).join(",")}|${s.crashes}|${s.up}`
const mapped = new Map<string, string>()
/** canonical(toToolCall(s)), memoised by `mappingKey`. */
function mappedOf(s: AuthorityState): string {
  const key = mappingKey(s)
  let m = mapped.get(key)
  if (m === undefined) {
    m = canonical(toToolCall(s))
    mapped.set(key, m)
  }
  return m
}
const toolCallSteps = new Map<string, string>()

function checkRefinement(from: AuthorityState, step: Step): void {
  const label = toolCallLabel(step.action)
  refinement.taken.set(label, (refinement.taken.get(label) ?? 0) + 1)
  if (step.state === from) return
  const fromKey = mappingKey(from)
  const toKey = mappingKey(step.state)
  if (label === "stutter" && fromKey === toKey) return
  const after = mappedOf(step.state)
  let reached: string
  if (label === "stutter") {
    reached = mappedOf(from)
  } else {
    // The ToolCall step depends on the mapped state and the call only: memoised.
    const memo = `${step.action}:${"c" in step.args ? step.args.c : ""}:${fromKey}`
    let r = toolCallSteps.get(memo)
    if (r === undefined) {
      const res = toolCallStep(step, asToolCallState(toToolCall(from)))
      r = res?.state ? canonical({ log: res.state.log, crashes: res.state.crashes, up: res.state.up }) : "disabled"
      toolCallSteps.set(memo, r)
    }
    reached = r
  }
  if (reached !== after && refinement.failures.length < 3)
    refinement.failures.push(`${step.action}(${canonical(step.args)}) as ToolCall ${label}: ${reached} instead of ${after}, from ${stateKey(from)}`)
}

const explored = explore(MC, checkRefinement)
const chained = explore(CHAIN)

describe("Authority model, exhaustive for MCAuthority.cfg", () => {
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
    const start = readme.indexOf("\n## Authority\n")
    expect(start, "spec/README.md has an Authority section").toBeGreaterThan(-1)
    const end = readme.indexOf("\n## ", start + 1)
    const section = readme.slice(start, end === -1 ? undefined : end)
    const recorded = (label: RegExp): string | undefined => new RegExp(`${label.source}\\s*\\**(\\d+)`).exec(section)?.[1]
    expect(recorded(/Distinct states \(MCAuthority\.cfg\):/), "distinct states").toBe(String(DISTINCT_STATES))
    expect(recorded(/Transitions \(MCAuthority\.cfg\):/), "transitions").toBe(String(TRANSITIONS))
    expect(recorded(/Depth \(MCAuthority\.cfg\):/), "depth").toBe(String(DEPTH))
    expect(recorded(/Distinct states \(chain\):/), "chain: distinct states").toBe(String(CHAIN_STATES))
    expect(recorded(/Transitions \(chain\):/), "chain: transitions").toBe(String(CHAIN_TRANSITIONS))
    expect(recorded(/Depth \(chain\):/), "chain: depth").toBe(String(CHAIN_DEPTH))
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

  it("takes every action of Next at least once (no dead action); only IgnoreDecision is a self-loop, and always", () => {
    for (const action of actionNames) expect(explored.perAction.get(action) ?? 0, action).toBeGreaterThan(0)
    expect([...explored.selfLoops.keys()]).toEqual(["IgnoreDecision"])
    expect(explored.selfLoops.get("IgnoreDecision")).toBe(explored.perAction.get("IgnoreDecision"))
  })

  it("reaches every call state for every call, and takes exactly the lifecycle's steps (the single path into started)", () => {
    for (const c of MC.calls) {
      const seen = new Set([...explored.visits.values()].map(({ state }) => callStatus(state, c)))
      expect([...seen].sort(), c).toEqual([...callStates].sort())
    }
    expect([...explored.lifecycle].sort()).toEqual(LIFECYCLE)
    // The transitions into started, enumerated: Start, from authorized or approved, nothing else.
    expect([...explored.lifecycle].filter((e) => e.endsWith("-> started") && !e.startsWith("IgnoreDecision")).sort()).toEqual([
      "Start approved -> started",
      "Start authorized -> started"
    ])
    expect(explored.silentChanges.slice(0, 3), "capability, clock and process steps change no call's state").toEqual([])
  })

  it("counts or ignores every decision, never both, never neither (every other decision is an IgnoreDecision)", () => {
    // Approve, RejectApproval and IgnoreDecision read `up`, `now` and the call's records only (not the
    // capabilities): one state per distinct (now, call, records) suffices.
    const done = new Set<string>()
    for (const [key, { state }] of explored.visits) {
      if (!state.up) continue
      for (const c of MC.calls) {
        const seen = `${state.now}|${c}|${canonical(state.log[c])}`
        if (done.has(seen)) continue
        done.add(seen)
        for (const p of MC.principals) {
          const yes = Approve(state, { c, p }) !== null
          expect(RejectApproval(state, { c, p }) !== null, `${c} ${p} in ${key}`).toBe(yes)
          for (const h of hashes(MC)) {
            const counted = yes && h === hashOf(c)
            expect(IgnoreDecision(state, { c, p, h }) !== null, `${c} ${p} ${h} in ${key}`).toBe(!counted)
          }
        }
      }
    }
  })

  it("refuses every widened child: such a node is minted, verification fails, and it never authorizes a call", () => {
    let widened = 0
    for (const { state } of explored.visits.values()) {
      const childRec = state.caps.child
      if (childRec === undefined || verified(state, "child")) continue
      widened++
      for (const c of MC.calls) {
        expect(covers(state, "child", c)).toBe(false)
        expect(state.log[c]?.some((r) => r.type === "authorized" && r.cap === "child")).toBe(false)
      }
    }
    expect(widened).toBeGreaterThan(0)
  })

  it("ends only in finished states: up, at MaxTime, no crash left, every node minted and revoked, no call awaiting (why CHECK_DEADLOCK is off)", () => {
    expect(explored.finished.length).toBeGreaterThan(0)
    for (const key of explored.finished) {
      const { state } = explored.visits.get(key) as Visit
      expect(state, key).toMatchObject({ up: true, now: MC.maxTime, crashes: MC.maxCrashes, revoked: [...MC.capabilities].sort() })
      expect(Object.keys(state.caps).sort(), key).toEqual([...MC.capabilities].sort())
      for (const c of MC.calls) {
        const st = callStatus(state, c)
        // An authorized call whose capability demands an approval cannot ask once the deadline would
        // pass MaxTime: a bound of the model (RequestApproval's guard), not a deadlock of the spec.
        expect(finalStatuses.has(st) || st === "authorized", `${c} in ${key}`).toBe(true)
      }
    }
  })

  it("satisfies DecisionProp for these constants: no cycle but stuttering, and a fair action is enabled wherever a call awaits approval", () => {
    expect(explored.notProgressing.slice(0, 3)).toEqual([])
    expect(unfair(explored).slice(0, 3)).toEqual([])
  })

  it("refines ToolCall.tla's edge: every step is a stuttering step or ToolCall's Reject, Start, Crash or Recover on the mapping", () => {
    expect(refinement.failures).toEqual([])
    expect([...refinement.taken.keys()].sort()).toEqual(["Crash", "Recover", "Reject", "Start", "stutter"])
  })

  it("never mutates the state it is given (states are deep-frozen during the search)", () => {
    const last = [...explored.visits.values()].at(-1) as Visit
    expect(Object.isFrozen(last.state.log)).toBe(true)
    expect(Object.isFrozen(last.state.log.c1)).toBe(true)
    expect(Object.isFrozen(last.state.caps)).toBe(true)
  })
})

describe("Authority model, exhaustive for a chain of three capabilities (transitive attenuation)", () => {
  it("reaches the recorded counts", () => {
    expect([chained.visits.size, chained.transitions, chained.depth]).toEqual([CHAIN_STATES, CHAIN_TRANSITIONS, CHAIN_DEPTH])
  })

  it.each(invariantNames)("%s holds in every reachable state", (name) => {
    const check = invariants[name]
    for (const [key, { state }] of chained.visits) {
      if (!check(state, CHAIN)) expect.fail(`${name} violated by ${key}\nreached by ${trace(chained.visits, key)}`)
    }
  })

  it("mints grandchildren wider than their parent but within the root (a call, or an approval dropped), and refuses them", () => {
    const transitive = { calls: 0, approval: 0 }
    for (const { state } of chained.visits.values()) {
      const child = state.caps.child
      const grandchild = state.caps.grandchild
      if (child === undefined || grandchild?.parent !== "child" || !verified(state, "child", CHAIN)) continue
      if (!narrower(grandchild, rootCap(CHAIN))) continue
      const widerCalls = grandchild.calls.some((c) => !child.calls.includes(c))
      const droppedApproval = grandchild.calls.some((c) => child.approval.includes(c) && !grandchild.approval.includes(c))
      if (widerCalls) transitive.calls++
      if (droppedApproval) transitive.approval++
      if (widerCalls || droppedApproval) {
        expect(verified(state, "grandchild", CHAIN)).toBe(false)
        expect(covers(state, "grandchild", "c1", CHAIN)).toBe(false)
        expect(state.log.c1?.some((r) => r.type === "authorized" && r.cap === "grandchild")).toBe(false)
      }
    }
    expect(transitive.calls).toBeGreaterThan(0)
    expect(transitive.approval).toBeGreaterThan(0)
  })

  it("takes the same lifecycle steps, and satisfies DecisionProp (same check)", () => {
    expect(chained.silentChanges.slice(0, 3)).toEqual([])
    expect([...chained.lifecycle].sort()).toEqual(LIFECYCLE)
    expect(chained.notProgressing.slice(0, 3)).toEqual([])
    expect(unfair(chained).slice(0, 3)).toEqual([])
  })
})

// ------------------------------------------------------------------------------------------------
// Scenarios: named paths through the model, readable as the protocol.
// ------------------------------------------------------------------------------------------------

/** Applies an action that must be enabled. */
function must(s: AuthorityState | null): AuthorityState {
  expect(s).not.toBeNull()
  return s as AuthorityState
}

const types = (s: AuthorityState, c: string): string[] => (s.log[c] ?? []).map((r) => r.type)

/** c2 authorized by the root and awaiting approval at time 0 (deadline 1). */
const awaiting = (): AuthorityState => must(RequestApproval(must(Authorize(Init(), { c: "c2", k: "root" })), { c: "c2" }))

const narrowChild = (s: AuthorityState, g: string[], a: string[], u = 1): AuthorityState => must(Attenuate(s, { k: "root", ch: "child", g, a, u }))

describe("Authority model, scenarios", () => {
  it("c1 is authorized and starts at once; c2 needs alice's yes, mallory's does not count", () => {
    let s = must(Authorize(Init(), { c: "c1", k: "root" }))
    expect(RequestApproval(s, { c: "c1" }), "the root demands no approval for c1").toBeNull()
    s = must(Start(s, { c: "c1" }))
    expect(types(s, "c1")).toEqual(["proposed", "authorized", "started"])
    s = must(Authorize(s, { c: "c2", k: "root" }))
    expect(Start(s, { c: "c2" }), "c2 needs an approval first").toBeNull()
    s = must(RequestApproval(s, { c: "c2" }))
    expect(s.log.c2?.at(-1)).toEqual({ type: "awaitingApproval", hash: hashOf("c2"), approvers: ["alice"], deadline: 1 })
    expect(Approve(s, { c: "c2", p: "mallory" })).toBeNull()
    expect(IgnoreDecision(s, { c: "c2", p: "mallory", h: hashOf("c2") })).toBe(s)
    expect(IgnoreDecision(s, { c: "c2", p: "alice", h: hashOf("c2") }), "alice's yes in time counts").toBeNull()
    expect(IgnoreDecision(s, { c: "c2", p: "alice", h: hashOf("c1") }), "for other arguments").toBe(s)
    s = must(Approve(s, { c: "c2", p: "alice" }))
    expect(s.log.c2?.at(-1)).toEqual(approvedRecord("alice", hashOf("c2"), 0))
    expect(IgnoreDecision(s, { c: "c2", p: "alice", h: hashOf("c2") }), "a second decision").toBe(s)
    expect(RejectApproval(s, { c: "c2", p: "alice" })).toBeNull()
    s = must(Start(s, { c: "c2" }))
    expect(types(s, "c2")).toEqual(["proposed", "authorized", "awaitingApproval", "approved", "started"])
    expect(uses(s, "root")).toBe(2)
    for (const name of invariantNames) expect(invariants[name](s), name).toBe(true)
  })

  it("approve and expire at the same instant: at the deadline only the expiry counts, and an expired call never starts", () => {
    const s = must(Tick(awaiting()))
    expect(s.now).toBe(1)
    expect(Approve(s, { c: "c2", p: "alice" })).toBeNull()
    expect(RejectApproval(s, { c: "c2", p: "alice" })).toBeNull()
    expect(IgnoreDecision(s, { c: "c2", p: "alice", h: hashOf("c2") })).toBe(s)
    const expired = must(Expire(s, { c: "c2" }))
    expect(expired.log.c2?.at(-1)).toEqual(expiredRecord(1))
    expect(Start(expired, { c: "c2" })).toBeNull()
    expect(Expire(expired, { c: "c2" })).toBeNull()
    // Before the deadline there is nothing to expire.
    expect(Expire(awaiting(), { c: "c2" })).toBeNull()
  })

  it("the runtime withdraws a request (run cancelled or out of budget): before or after the deadline, the call's one decision, final", () => {
    const s = awaiting()
    const withdrawn = must(Withdraw(s, { c: "c2" }))
    expect(withdrawn.log.c2?.at(-1)).toEqual(rejectedRecord(runtime))
    expect(MC.principals).not.toContain(runtime)
    expect(callStatus(withdrawn, "c2")).toBe("rejected")
    expect(decided(withdrawn, "c2")).toBe(true)
    // Final: no start, no counted decision, no expiry, no second withdrawal; a late decision is ignored.
    expect(Start(withdrawn, { c: "c2" })).toBeNull()
    expect(Approve(withdrawn, { c: "c2", p: "alice" })).toBeNull()
    expect(RejectApproval(withdrawn, { c: "c2", p: "alice" })).toBeNull()
    expect(Expire(must(Tick(withdrawn)), { c: "c2" })).toBeNull()
    expect(Withdraw(withdrawn, { c: "c2" })).toBeNull()
    expect(IgnoreDecision(withdrawn, { c: "c2", p: "alice", h: hashOf("c2") })).toBe(withdrawn)
    // After the deadline too (not a person's decision), but not once a decision came first.
    expect(must(Withdraw(must(Tick(s)), { c: "c2" })).log.c2?.at(-1)).toEqual(rejectedRecord(runtime))
    expect(Withdraw(must(Approve(s, { c: "c2", p: "alice" })), { c: "c2" })).toBeNull()
    expect(Withdraw(must(RejectApproval(s, { c: "c2", p: "alice" })), { c: "c2" })).toBeNull()
    expect(Withdraw(must(Expire(must(Tick(s)), { c: "c2" })), { c: "c2" })).toBeNull()
    // Only while awaiting approval, and only while up.
    expect(Withdraw(Init(), { c: "c2" })).toBeNull()
    expect(Withdraw(must(Authorize(Init(), { c: "c2", k: "root" })), { c: "c2" })).toBeNull()
    expect(Withdraw(must(Crash(s)), { c: "c2" })).toBeNull()
    for (const name of invariantNames) expect(invariants[name](withdrawn), name).toBe(true)
  })

  it("a crash while awaiting keeps the deadline: the remaining time is honoured, and time passes while down", () => {
    let s = must(Restart(must(Crash(awaiting()))))
    expect(s.log.c2?.at(-1)).toMatchObject({ type: "awaitingApproval", deadline: 1 })
    expect(must(Approve(s, { c: "c2", p: "alice" })).log.c2?.at(-1)).toEqual(approvedRecord("alice", hashOf("c2"), 0))
    // Down past the deadline: nothing is decided while down; after the restart it expires.
    s = must(Tick(must(Crash(awaiting()))))
    expect(Expire(s, { c: "c2" }), "down").toBeNull()
    s = must(Restart(s))
    expect(Approve(s, { c: "c2", p: "alice" })).toBeNull()
    expect(types(must(Expire(s, { c: "c2" })), "c2").at(-1)).toBe("expired")
  })

  it("a narrower child covers less; a child that drops c2's approval is a widening, refused, and the call is denied", () => {
    let s = narrowChild(Init(), ["c1"], [])
    expect(verified(s, "child")).toBe(true)
    expect(Authorize(s, { c: "c2", k: "child" }), "not granted").toBeNull()
    expect(must(Deny(s, { c: "c2" })).log.c2?.at(-1)).toEqual(deniedRecord)
    // A child may demand more approvals than its parent.
    s = narrowChild(Init(), ["c1", "c2"], ["c1", "c2"], 2)
    expect(verified(s, "child")).toBe(true)
    expect(must(RequestApproval(must(Authorize(s, { c: "c1", k: "child" })), { c: "c1" })).log.c1?.at(-1)).toMatchObject({ type: "awaitingApproval" })
    // c2 without approval: the root covers c2 only with one.
    s = narrowChild(Init(), ["c2"], [])
    expect(verified(s, "child")).toBe(false)
    expect(Authorize(s, { c: "c2", k: "child" })).toBeNull()
    expect(Deny(s, { c: "c2" })).not.toBeNull()
    // The root still covers it, with the approval.
    expect(must(Authorize(s, { c: "c2", k: "root" })).log.c2?.at(-1)).toEqual(authorizedRecord("root"))
  })

  it("a child claiming more uses than its parent is a widening, refused (MaxUses 3)", () => {
    const K: AuthorityConstants = { ...MC, maxUses: 3 }
    const s = must(Attenuate(Init(K), { k: "root", ch: "child", g: ["c1"], a: [], u: 3 }, K))
    expect(verified(s, "child", K)).toBe(false)
    expect(Authorize(s, { c: "c1", k: "child" }, K)).toBeNull()
    expect(Deny(s, { c: "c1" }, K)).not.toBeNull()
    expect(verified(must(Attenuate(Init(K), { k: "root", ch: "child", g: ["c1"], a: [], u: 2 }, K)), "child", K)).toBe(true)
  })

  it("uses through a child count against the root: a one-use child runs out after one call", () => {
    let s = narrowChild(Init(), ["c1", "c2"], ["c2"], 1)
    s = must(Authorize(s, { c: "c1", k: "child" }))
    expect([uses(s, "child"), uses(s, "root")]).toEqual([1, 1])
    expect(isExhausted(s, "child")).toBe(true)
    expect(Authorize(s, { c: "c2", k: "child" })).toBeNull()
    s = must(Authorize(s, { c: "c2", k: "root" }))
    expect(uses(s, "root")).toBe(2)
    expect(isExhausted(s, "root")).toBe(true)
  })

  it("revoking the root revokes every node derived from it, even one derived afterwards; an authorized call is not recalled", () => {
    let s = must(Authorize(Init(), { c: "c1", k: "root" }))
    s = must(Revoke(s, { k: "root" }))
    s = narrowChild(s, ["c2"], ["c2"])
    expect(isRevoked(s, "child")).toBe(true)
    expect(Authorize(s, { c: "c2", k: "child" })).toBeNull()
    expect(Authorize(s, { c: "c2", k: "root" })).toBeNull()
    expect(Deny(s, { c: "c2" })).not.toBeNull()
    // The check is at Authorize: c1 still starts (see spec/README.md, Known gaps).
    expect(must(Start(s, { c: "c1" })).log.c1?.at(-1)).toEqual(startedRecord)
    // Revoking the child alone leaves the root.
    const childOnly = must(Revoke(narrowChild(Init(), ["c1"], []), { k: "child" }))
    expect([isRevoked(childOnly, "child"), isRevoked(childOnly, "root")]).toEqual([true, false])
  })

  it("an expired root covers nothing: every call is denied", () => {
    const s = must(Tick(must(Tick(Init()))))
    expect(s.now).toBe(MC.rootExpiry)
    for (const c of MC.calls) {
      expect(Authorize(s, { c, k: "root" })).toBeNull()
      expect(Deny(s, { c })).not.toBeNull()
    }
    expect(Deny(Init(), { c: "c1" }), "a valid root covers both calls").toBeNull()
  })

  it("a grandchild wider than its parent is refused even though the root grants it (CHAIN)", () => {
    for (const [child, grandchild] of [
      [
        { g: [], a: [] },
        { g: ["c1"], a: ["c1"] }
      ], // the child dropped c1; the grandchild claims it back, even with an approval
      [
        { g: ["c1"], a: ["c1"] },
        { g: ["c1"], a: [] }
      ] // the child added an approval; the grandchild drops it
    ] as const) {
      let s = must(Attenuate(Init(CHAIN), { k: "root", ch: "child", ...child, u: 1 }, CHAIN))
      s = must(Attenuate(s, { k: "child", ch: "grandchild", ...grandchild, u: 1 }, CHAIN))
      expect(verified(s, "child", CHAIN)).toBe(true)
      expect(narrower(s.caps.grandchild as CapRecord, rootCap(CHAIN)), "within the root").toBe(true)
      expect(verified(s, "grandchild", CHAIN)).toBe(false)
      expect(Authorize(s, { c: "c1", k: "grandchild" }, CHAIN)).toBeNull()
      expect(Deny(s, { c: "c1" }, CHAIN)).not.toBeNull()
    }
  })

  it("the approval request is made only while its deadline is within the modelled time (a bound of the model)", () => {
    const authorized = must(Authorize(must(Tick(Init())), { c: "c2", k: "root" }))
    expect(must(RequestApproval(must(Tick(authorized)), { c: "c2" })).log.c2?.at(-1)).toMatchObject({ deadline: MC.maxTime })
    expect(RequestApproval(must(Tick(must(Tick(authorized)))), { c: "c2" })).toBeNull()
  })
})

// ------------------------------------------------------------------------------------------------
// Each invariant can fail: hand-made broken states, each a small edit of a legal state.
// ------------------------------------------------------------------------------------------------

const okCheck = (cap: string): Check => ({ cap, verified: true, covered: true, revoked: false, expired: false, exhausted: false })

/**
 * A legal, reachable state: a one-use child covering c1 (with the root's approval on c2), c1
 * authorized by the child and started, c2 authorized by the root and awaiting alice (deadline 1).
 */
const childRec: CapRecord = { parent: "root", calls: ["c1"], approval: [], expiry: MC.rootExpiry, uses: 1 }
const legal: AuthorityState = {
  log: {
    c1: [proposedRecord, authorizedRecord("child"), startedRecord],
    c2: [proposedRecord, authorizedRecord("root"), awaitingRecord("c2", 1)]
  },
  caps: { root: rootCap(), child: childRec },
  revoked: [],
  now: 0,
  checked: { c1: okCheck("child"), c2: okCheck("root") },
  crashes: 0,
  up: true
}

const withLog = (c: string, records: AuthorityRecord[]): AuthorityState["log"] => ({ ...legal.log, [c]: records })
const c2Path = (...more: AuthorityRecord[]): AuthorityRecord[] => [proposedRecord, authorizedRecord("root"), awaitingRecord("c2", 1), ...more]

const broken: ReadonlyArray<{ inv: InvariantName; why: string; state: AuthorityState }> = [
  { inv: "TypeInv", why: "the clock beyond MaxTime", state: { ...legal, now: MC.maxTime + 1 } },
  { inv: "TypeInv", why: "a node that is not a capability", state: { ...legal, caps: { ...legal.caps, other: childRec } } },
  { inv: "TypeInv", why: "the root's grants changed", state: { ...legal, caps: { ...legal.caps, root: { ...rootCap(), approval: [] } } } },
  { inv: "TypeInv", why: "a node claiming more uses than MaxUses", state: { ...legal, caps: { ...legal.caps, child: { ...childRec, uses: 3 } } } },
  {
    inv: "TypeInv",
    why: "a revoked node that was never minted",
    state: { ...legal, caps: { root: rootCap() }, log: { c1: [proposedRecord], c2: legal.log.c2 ?? [] }, checked: { c2: okCheck("root") }, revoked: ["child"] }
  },
  {
    inv: "TypeInv",
    why: "a record with an unknown field",
    state: { ...legal, log: withLog("c1", [proposedRecord, { type: "denied", why: "x" } as unknown as AuthorityRecord]) }
  },
  {
    inv: "TypeInv",
    why: "a deadline beyond MaxTime",
    state: { ...legal, log: withLog("c2", [proposedRecord, authorizedRecord("root"), awaitingRecord("c2", 4)]) }
  },
  {
    inv: "TypeInv",
    why: "a check whose flag is not a boolean",
    state: { ...legal, checked: { ...legal.checked, c1: { ...okCheck("child"), revoked: 0 as unknown as boolean } } }
  },
  {
    inv: "TypeInv",
    why: "an approval by the runtime (it only withdraws)",
    state: { ...legal, log: withLog("c2", c2Path(approvedRecord(runtime, hashOf("c2"), 0))) }
  },
  {
    inv: "AuthorityInv",
    why: "c1 authorized while its capability was revoked",
    state: { ...legal, checked: { ...legal.checked, c1: { ...okCheck("child"), revoked: true } } }
  },
  {
    inv: "AuthorityInv",
    why: "c1 authorized by an expired capability",
    state: { ...legal, checked: { ...legal.checked, c1: { ...okCheck("child"), expired: true } } }
  },
  {
    inv: "AuthorityInv",
    why: "a one-use child used twice (c2 authorized by it too)",
    state: {
      ...legal,
      caps: { ...legal.caps, child: { ...childRec, calls: ["c1", "c2"], approval: ["c2"] } },
      log: withLog("c2", [proposedRecord, authorizedRecord("child")]),
      checked: { c1: okCheck("child"), c2: okCheck("child") }
    }
  },
  {
    inv: "AuthorityInv",
    why: "c2 started on an approval for other arguments",
    state: { ...legal, log: withLog("c2", c2Path(approvedRecord("alice", hashOf("c1"), 0), startedRecord)) }
  },
  {
    inv: "AuthorityInv",
    why: "the check recorded names another capability than the authorized record",
    state: { ...legal, checked: { ...legal.checked, c1: okCheck("root") } }
  },
  {
    inv: "AttenuationInv",
    why: "a child that drops c2's approval authorized c2",
    state: {
      ...legal,
      caps: { ...legal.caps, child: { ...childRec, calls: ["c1", "c2"], approval: [], uses: 2 } },
      log: withLog("c2", [proposedRecord, authorizedRecord("child"), startedRecord]),
      checked: { c1: okCheck("child"), c2: okCheck("child") }
    }
  },
  {
    inv: "AttenuationInv",
    why: "a child that outlives its parent was accepted",
    state: { ...legal, caps: { ...legal.caps, child: { ...childRec, expiry: MC.rootExpiry + 1 } } }
  },
  {
    inv: "ExpiryInv",
    why: "an approval accepted at its deadline",
    state: { ...legal, now: 1, log: withLog("c2", c2Path(approvedRecord("alice", hashOf("c2"), 1))) }
  },
  { inv: "ExpiryInv", why: "an expiry before the deadline", state: { ...legal, log: withLog("c2", c2Path(expiredRecord(1))) } },
  {
    inv: "ExpiryInv",
    why: "an expiry with another deadline than the request's",
    state: { ...legal, now: 2, log: withLog("c2", c2Path(expiredRecord(2))) }
  },
  {
    inv: "OneDecisionInv",
    why: "a no by mallory counted",
    state: { ...legal, log: withLog("c2", c2Path(rejectedRecord("mallory"))) }
  },
  {
    inv: "OneDecisionInv",
    why: "a withdrawal after a counted no",
    state: { ...legal, log: withLog("c2", c2Path(rejectedRecord("alice"), rejectedRecord(runtime))) }
  },
  {
    inv: "OneDecisionInv",
    why: "a withdrawal with no request",
    state: { ...legal, log: withLog("c2", [proposedRecord, authorizedRecord("root"), rejectedRecord(runtime)]) }
  },
  {
    inv: "OneDecisionInv",
    why: "two approval requests",
    state: { ...legal, log: withLog("c2", [proposedRecord, authorizedRecord("root"), awaitingRecord("c2", 1), awaitingRecord("c2", 1)]) }
  },
  {
    inv: "OneDecisionInv",
    why: "a decision with no request",
    state: { ...legal, log: withLog("c2", [proposedRecord, authorizedRecord("root"), rejectedRecord("alice")]) }
  },
  {
    inv: "SinglePathInv",
    why: "c2 started from authorized although the root demands an approval",
    state: { ...legal, log: withLog("c2", [proposedRecord, authorizedRecord("root"), startedRecord]) }
  },
  {
    inv: "SinglePathInv",
    why: "a record after started",
    state: { ...legal, log: withLog("c1", [proposedRecord, authorizedRecord("child"), startedRecord, startedRecord]) }
  },
  {
    inv: "SinglePathInv",
    why: "denied after authorized",
    state: { ...legal, log: withLog("c1", [proposedRecord, authorizedRecord("child"), deniedRecord]) }
  },
  {
    inv: "SinglePathInv",
    why: "an approval request although the capability demands none",
    state: { ...legal, log: withLog("c1", [proposedRecord, authorizedRecord("child"), awaitingRecord("c1", 1)]) }
  }
]

describe("Authority invariants can fail", () => {
  it("accepts the legal baseline the broken states are edited from, which is reachable", () => {
    for (const name of invariantNames) expect(invariants[name](legal, MC), name).toBe(true)
    expect(reachable(explored, legal)).toBe(true)
  })

  it("has at least one broken state per invariant", () => {
    expect(new Set(broken.map((b) => b.inv))).toEqual(new Set(invariantNames))
  })

  it.each(broken)("$inv rejects: $why", ({ inv, state }) => {
    expect(invariants[inv](state, MC)).toBe(false)
    expect(reachable(explored, state)).toBe(false)
    // Apart from TypeInv's own cases, the break is semantic: the state is well typed.
    if (inv !== "TypeInv") expect(invariants.TypeInv(state, MC)).toBe(true)
  })

  it("decided and the status fold agree with the records", () => {
    const s = { ...legal, log: withLog("c2", c2Path(rejectedRecord("alice"))) }
    expect(decided(s, "c2")).toBe(true)
    expect(decided(legal, "c2")).toBe(false)
    const statuses: CallStatus[] = MC.calls.map((c) => callStatus(legal, c))
    expect(statuses).toEqual(["started", "awaitingApproval"])
  })
})
