// Exhaustive exploration of models/session.ts for the constants of spec/MCSession.cfg.
//
// The counts below are what TLC must report for `MCSession.cfg` (distinct states; TLC's "states
// generated" should be 1 + TRANSITIONS and its search depth DEPTH). spec/README.md records the
// same three numbers, and this test checks that it does. If the spec changes, change the model,
// re-run, and update the numbers here and in the README together.
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import {
  AcquireLease,
  type ActionName,
  Append,
  actionNames,
  active,
  Close,
  Crash,
  canonical,
  Expire,
  Flush,
  Fork,
  heads,
  Init,
  type InvariantName,
  invariantNames,
  invariants,
  MC,
  None,
  next,
  Recover,
  type SessionConstants,
  type SessionRecord,
  type SessionState,
  StaleWrite,
  Suspend,
  Switch,
  status
} from "../../models/session.ts"

const DISTINCT_STATES = 2123
/** Labelled transitions: one per (state, action, parameter binding), StaleWrite self-loops included. */
const TRANSITIONS = 6886
/** TLC's convention: the initial state is at depth 1. */
const DEPTH = 10
/** Fail fast instead of hanging if a change makes the space explode. */
const STATES_MAX = 500_000

interface Visit {
  readonly state: SessionState
  readonly depth: number
  /** how the BFS first reached this state (for readable counterexamples) */
  readonly via: { readonly from: string; readonly action: ActionName; readonly args: object } | null
}

interface Exploration {
  readonly visits: Map<string, Visit>
  readonly transitions: number
  readonly perAction: Map<ActionName, number>
  readonly selfLoops: Map<ActionName, number>
  readonly depth: number
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** Breadth-first search keyed by the canonical (sorted-key) serialisation of each state. */
function explore(): Exploration {
  const init = deepFreeze(Init(MC))
  const visits = new Map<string, Visit>([[canonical(init), { state: init, depth: 1, via: null }]])
  const queue: string[] = [canonical(init)]
  const perAction = new Map<ActionName, number>()
  const selfLoops = new Map<ActionName, number>()
  let transitions = 0
  let depth = 1
  for (let i = 0; i < queue.length; i++) {
    const key = queue[i] as string
    const visit = visits.get(key) as Visit
    depth = Math.max(depth, visit.depth)
    for (const step of next(visit.state, MC)) {
      transitions++
      perAction.set(step.action, (perAction.get(step.action) ?? 0) + 1)
      const k = canonical(step.state)
      if (k === key) selfLoops.set(step.action, (selfLoops.get(step.action) ?? 0) + 1)
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
  return { visits, transitions, perAction, selfLoops, depth }
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

describe("Session model, exhaustive for MCSession.cfg", () => {
  it("reaches exactly the distinct-state count", () => {
    expect(explored.visits.size).toBe(DISTINCT_STATES)
  })

  it("has the expected number of transitions and search depth", () => {
    expect(explored.transitions).toBe(TRANSITIONS)
    expect(explored.depth).toBe(DEPTH)
  })

  it("agrees with the counts recorded in spec/README.md", () => {
    const readme = readFileSync(new URL("../../spec/README.md", import.meta.url), "utf8")
    const recorded = (label: RegExp): string | undefined => new RegExp(`${label.source}\\s*\\**(\\d+)`).exec(readme)?.[1]
    expect(recorded(/Distinct states \(MCSession\.cfg\):/), "distinct states").toBe(String(DISTINCT_STATES))
    expect(recorded(/Transitions:/), "transitions").toBe(String(TRANSITIONS))
    expect(recorded(/Depth:/), "depth").toBe(String(DEPTH))
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

  it("has StaleWrite as its only self-loop: a refused write changes nothing", () => {
    expect([...explored.selfLoops.keys()]).toEqual(["StaleWrite"])
    expect(explored.selfLoops.get("StaleWrite")).toBe(explored.perAction.get("StaleWrite"))
  })

  it("has no deadlock, and the premises of the liveness properties hold", () => {
    for (const [key, { state }] of reachable) {
      const steps = next(state, MC)
      expect(steps.length, `deadlock at ${key}`).toBeGreaterThan(0)
      // BufferDrainsProp under WF(Flush): while buf is non-empty, Flush stays enabled and empties it.
      if (state.buf.length > 0) expect(Flush(state)?.buf, key).toEqual([])
      // RecoversProp under WF(Recover): while down, Recover stays enabled and opens the journal.
      if (!state.up) expect(Recover(state)?.up, key).toBe(true)
    }
  })

  it("never mutates the state it is given (states are deep-frozen during the search)", () => {
    // explore() froze every state before expanding it: reaching this point means no action wrote
    // into its input. Check that the freezing really covered the nested data.
    const [, { state }] = reachable[reachable.length - 1] as [string, Visit]
    expect(Object.isFrozen(state.log)).toBe(true)
    expect(Object.isFrozen(state.wEpoch)).toBe(true)
  })
})

// ------------------------------------------------------------------------------------------------
// Scenarios: named paths through the model, readable as the protocol.
// ------------------------------------------------------------------------------------------------

/** Applies an action that must be enabled. */
function must(s: SessionState | null): SessionState {
  expect(s).not.toBeNull()
  return s as SessionState
}

describe("Session model, scenarios", () => {
  it("refuses a writer whose lease was taken over, without changing anything", () => {
    let s = must(AcquireLease(Init(), { w: "w1" }))
    s = must(Expire(s))
    s = must(AcquireLease(s, { w: "w2" }))
    expect(s.wEpoch).toEqual({ w1: 1, w2: 2 })
    expect(Append(s, { w: "w1", b: "main" })).toBeNull()
    expect(StaleWrite(s, { w: "w1" })).toBe(s)
    expect(StaleWrite(s, { w: "w2" })).toBeNull()
    const written = must(Append(s, { w: "w2", b: "main" }))
    expect(written.buf).toEqual([{ type: "entry", id: 3, parent: 0, branch: "main", epoch: 2 }])
  })

  it("forks in O(1) and appends on the fork with the fork point as parent", () => {
    let s = must(AcquireLease(Init(), { w: "w1" }))
    s = must(Append(s, { w: "w1", b: "main" }))
    s = must(Fork(s, { w: "w1", b: "b1", at: 2 }))
    expect(Fork(s, { w: "w1", b: "b1", at: 0 })).toBeNull() // b1 exists
    s = must(Append(s, { w: "w1", b: "b1" }))
    expect(s.buf[2]).toEqual({ type: "entry", id: 4, parent: 2, branch: "b1", epoch: 1 })
    expect(heads([...s.log, ...s.buf])).toEqual({ main: 2, b1: 4 })
    expect(Append(s, { w: "w1", b: "main" })).toBeNull() // no room: MaxRecords = 4
  })

  it("cannot fork at a record that is not an entry, nor switch to a missing branch", () => {
    const s = must(AcquireLease(Init(), { w: "w1" }))
    expect(Fork(s, { w: "w1", b: "b1", at: 1 })).toBeNull() // record 1 is the lease
    expect(Switch(s, { w: "w1", b: "b1" })).toBeNull()
    const switched = must(Switch(must(Fork(s, { w: "w1", b: "b1", at: 0 })), { w: "w1", b: "b1" }))
    expect(active([...switched.log, ...switched.buf])).toBe("b1")
  })

  it("acknowledges only on flush; a crash keeps a prefix of the buffer and recovery cuts the tear", () => {
    let s = must(AcquireLease(Init(), { w: "w1" }))
    s = must(Append(s, { w: "w1", b: "main" }))
    s = must(Append(s, { w: "w1", b: "main" }))
    expect(s.acked).toEqual(s.log) // just the lease
    const crashed = must(Crash(s, { k: 1, torn: true }))
    expect(crashed.log.map((r) => r.type)).toEqual(["lease", "entry"])
    expect(crashed.acked).toEqual([{ type: "lease", epoch: 1 }])
    expect(crashed).toMatchObject({ buf: [], holder: None, wEpoch: { w1: 0, w2: 0 }, up: false })
    expect(Append(crashed, { w: "w1", b: "main" })).toBeNull()
    const recovered = must(Recover(crashed))
    expect(recovered).toMatchObject({ torn: false, up: true, epoch: 1 })
    // The next lease is a new epoch: epochs are never reused across a crash.
    expect(must(AcquireLease(recovered, { w: "w2" })).epoch).toBe(2)
  })

  it("walks the lifecycle: open, active, suspended, active under another writer, closed for good", () => {
    // lease, entry, suspend, lease, close: one record more than MC's MaxRecords = 4.
    const c: SessionConstants = { ...MC, maxRecords: 5 }
    let s = Init(c)
    expect(status(s.log)).toBe("open")
    expect(Append(s, { w: "w1", b: "main" }, c)).toBeNull() // nobody holds the lease
    s = must(AcquireLease(s, { w: "w1" }, c))
    expect(status(s.log)).toBe("active")
    s = must(Append(s, { w: "w1", b: "main" }, c))
    expect(Suspend(s, { w: "w1" }, c)).toBeNull() // its appends are not durable yet
    expect(Close(s, { w: "w1" }, c)).toBeNull()
    s = must(Flush(s))
    expect(Suspend(s, { w: "w2" }, c)).toBeNull() // only the holder suspends
    s = must(Suspend(s, { w: "w1" }, c))
    expect(s.log.at(-1)).toEqual({ type: "suspend", epoch: 1 })
    expect(s.acked).toEqual(s.log) // flushed alone, acknowledged
    expect(s).toMatchObject({ buf: [], holder: None, epoch: 1, wEpoch: { w1: 0, w2: 0 } })
    expect(status(s.log)).toBe("suspended")
    expect(StaleWrite(s, { w: "w1" })).toBeNull() // let go cleanly: not a stale writer
    expect(Append(s, { w: "w1", b: "main" }, c)).toBeNull()
    expect(Expire(s)).toBeNull()
    s = must(AcquireLease(s, { w: "w2" }, c))
    expect(s).toMatchObject({ epoch: 2, holder: "w2", wEpoch: { w1: 0, w2: 2 } })
    expect(status(s.log)).toBe("active")
    s = must(Close(s, { w: "w2" }, c))
    expect(s.log.map((r) => r.type)).toEqual(["lease", "entry", "suspend", "lease", "close"])
    expect(s.log.at(-1)).toEqual({ type: "close", epoch: 2 })
    expect(s).toMatchObject({ holder: None, wEpoch: { w1: 0, w2: 0 } })
    expect(status(s.log)).toBe("closed")
    // Closed is final: no writer ever again, even with room and epochs to spare.
    const roomy: SessionConstants = { ...c, maxRecords: 10, maxEpoch: 5 }
    expect(AcquireLease(s, { w: "w1" }, roomy)).toBeNull()
    expect(AcquireLease(s, { w: "w2" }, roomy)).toBeNull()
    expect(AcquireLease(must(Recover(must(Crash(s, { k: 0, torn: true })))), { w: "w1" }, roomy)).toBeNull()
    expect(next(s, roomy).map((step) => step.action)).toEqual(["Crash", "Crash"])
  })

  it("closes straight from active, and a suspended session can be closed only by a new holder", () => {
    let s = must(AcquireLease(Init(), { w: "w1" }))
    expect(must(Close(s, { w: "w1" })).log.map((r) => r.type)).toEqual(["lease", "close"])
    s = must(Suspend(s, { w: "w1" }))
    expect(Close(s, { w: "w1" })).toBeNull() // no holder: acquire first
    s = must(Close(must(AcquireLease(s, { w: "w1" })), { w: "w1" }))
    expect(s.log).toEqual([
      { type: "lease", epoch: 1 },
      { type: "suspend", epoch: 1 },
      { type: "lease", epoch: 2 },
      { type: "close", epoch: 2 }
    ])
  })

  it("does not let a stale writer suspend or close", () => {
    let s = must(AcquireLease(Init(), { w: "w1" }))
    s = must(Expire(s))
    s = must(AcquireLease(s, { w: "w2" }))
    expect(Suspend(s, { w: "w1" })).toBeNull()
    expect(Close(s, { w: "w1" })).toBeNull()
    expect(StaleWrite(must(Suspend(s, { w: "w2" })), { w: "w1" })).not.toBeNull() // w1 stays stale
  })

  it("does not let a holder with buffered records expire (flush first)", () => {
    const s = must(Append(must(AcquireLease(Init(), { w: "w1" })), { w: "w1", b: "main" }))
    expect(Expire(s)).toBeNull()
    expect(must(Expire(must(Flush(s)))).holder).toBe(None)
  })
})

// ------------------------------------------------------------------------------------------------
// Each invariant can fail: hand-made broken states, each a small edit of a legal state.
// ------------------------------------------------------------------------------------------------

const lease = (epoch: number): SessionRecord => ({ type: "lease", epoch })
const suspend = (epoch: number): SessionRecord => ({ type: "suspend", epoch })
const close = (epoch: number): SessionRecord => ({ type: "close", epoch })
const entry = (id: number, parent: number, branch: string, epoch = 1): SessionRecord => ({
  type: "entry",
  id,
  parent,
  branch,
  epoch
})

/** A legal state: w1 holds epoch 1, wrote one durable entry and buffered a second. */
const legal: SessionState = {
  log: [lease(1), entry(2, 0, "main")],
  buf: [entry(3, 2, "main")],
  torn: false,
  epoch: 1,
  holder: "w1",
  wEpoch: { w1: 1, w2: 0 },
  acked: [lease(1), entry(2, 0, "main")],
  up: true
}

const broken: ReadonlyArray<{ inv: InvariantName; why: string; state: SessionState }> = [
  { inv: "TypeInv", why: "epoch beyond MaxEpoch", state: { ...legal, epoch: 3 } },
  { inv: "TypeInv", why: "holder is not a writer", state: { ...legal, holder: "w3" } },
  { inv: "TypeInv", why: "wEpoch lacks a writer", state: { ...legal, wEpoch: { w1: 1 } } },
  {
    inv: "TypeInv",
    why: "record with an unknown field",
    state: { ...legal, buf: [{ ...entry(3, 2, "main"), extra: 1 } as unknown as SessionRecord] }
  },
  {
    inv: "TypeInv",
    why: "more records than MaxRecords",
    state: { ...legal, buf: [entry(3, 2, "main"), entry(4, 3, "main"), entry(5, 4, "main")] }
  },
  {
    inv: "TypeInv",
    why: "close record with a branch",
    state: { ...legal, buf: [], log: [lease(1), { ...close(1), branch: "main" } as unknown as SessionRecord], holder: None, wEpoch: { w1: 0, w2: 0 } }
  },
  {
    inv: "TypeInv",
    why: "suspend record without an epoch",
    state: { ...legal, buf: [{ type: "suspend" } as unknown as SessionRecord] }
  },
  {
    inv: "TreeInv",
    why: "parent is not the head of its branch (a sibling silently overwrote history)",
    state: { ...legal, buf: [entry(3, 0, "main")] }
  },
  {
    inv: "TreeInv",
    why: "parent does not precede the entry",
    state: { ...legal, log: [lease(1), entry(2, 3, "main")], acked: [lease(1)], buf: [entry(3, 2, "main")] }
  },
  { inv: "TreeInv", why: "id is not the position", state: { ...legal, buf: [entry(4, 2, "main")] } },
  {
    inv: "TreeInv",
    why: "fork of a branch that exists",
    state: { ...legal, buf: [{ type: "fork", branch: "main", at: 2, epoch: 1 }] }
  },
  {
    inv: "TreeInv",
    why: "fork at the lease record",
    state: { ...legal, buf: [{ type: "fork", branch: "b1", at: 1, epoch: 1 }] }
  },
  {
    inv: "BranchHeadsInv",
    why: "active branch does not exist",
    state: { ...legal, buf: [{ type: "switch", branch: "b1", epoch: 1 }] }
  },
  {
    inv: "BranchHeadsInv",
    why: "a head is not an entry",
    state: { ...legal, buf: [{ type: "fork", branch: "b1", at: 4, epoch: 1 }] }
  },
  {
    inv: "SingleWriterInv",
    why: "two writers hold the epoch in force",
    state: { ...legal, wEpoch: { w1: 1, w2: 1 } }
  },
  {
    inv: "SingleWriterInv",
    why: "the holder holds an old epoch",
    state: { ...legal, log: [lease(1), lease(2)], acked: [lease(1), lease(2)], buf: [], epoch: 2, wEpoch: { w1: 1, w2: 2 } }
  },
  { inv: "SingleWriterInv", why: "buffered records without a holder", state: { ...legal, holder: None } },
  {
    inv: "SingleWriterInv",
    why: "the epoch in force is not durable",
    state: { ...legal, buf: [], epoch: 2, wEpoch: { w1: 2, w2: 0 } }
  },
  {
    inv: "SingleWriterInv",
    why: "a writer believes in a future epoch",
    state: { ...legal, holder: None, buf: [], wEpoch: { w1: 1, w2: 2 } }
  },
  {
    inv: "NoLostUpdateInv",
    why: "an acknowledged record is not durable",
    state: { ...legal, acked: [lease(1), entry(2, 0, "main"), entry(3, 2, "main")] }
  },
  {
    inv: "NoLostUpdateInv",
    why: "acked differs from the durable log",
    state: { ...legal, acked: [lease(2)] }
  },
  {
    inv: "NoLostUpdateInv",
    why: "a stale write was accepted after a takeover",
    state: {
      ...legal,
      log: [lease(1), lease(2)],
      acked: [lease(1), lease(2)],
      buf: [entry(3, 0, "main", 1)],
      epoch: 2,
      holder: "w2",
      wEpoch: { w1: 1, w2: 2 }
    }
  },
  {
    inv: "NoLostUpdateInv",
    why: "a stale writer suspended the session after a takeover",
    state: {
      ...legal,
      log: [lease(1), lease(2), suspend(1)],
      acked: [lease(1), lease(2), suspend(1)],
      buf: [],
      epoch: 2,
      holder: None,
      wEpoch: { w1: 0, w2: 2 }
    }
  },
  { inv: "PrefixRecoveryInv", why: "torn tail while open", state: { ...legal, torn: true } },
  {
    inv: "PrefixRecoveryInv",
    why: "buffered records while down",
    state: { ...legal, up: false, holder: None, wEpoch: { w1: 0, w2: 0 } }
  },
  {
    inv: "PrefixRecoveryInv",
    why: "a holder while down",
    state: { ...legal, up: false, buf: [], wEpoch: { w1: 0, w2: 0 } }
  },
  {
    inv: "PrefixRecoveryInv",
    why: "the durable log alone replays to a missing active branch",
    state: {
      ...legal,
      log: [lease(1), { type: "switch", branch: "b1", epoch: 1 }],
      acked: [lease(1)],
      buf: []
    }
  },
  {
    inv: "LifecycleInv",
    why: "content after close",
    state: {
      ...legal,
      log: [lease(1), entry(2, 0, "main"), close(1), entry(4, 2, "main")],
      acked: [lease(1), entry(2, 0, "main"), close(1), entry(4, 2, "main")],
      buf: [],
      holder: None,
      wEpoch: { w1: 0, w2: 0 }
    }
  },
  {
    inv: "LifecycleInv",
    why: "content while suspended",
    state: {
      ...legal,
      log: [lease(1), suspend(1), entry(3, 0, "main")],
      acked: [lease(1), suspend(1), entry(3, 0, "main")],
      buf: [],
      holder: None,
      wEpoch: { w1: 0, w2: 0 }
    }
  },
  {
    inv: "LifecycleInv",
    why: "content before any lease (open)",
    state: { ...legal, log: [entry(1, 0, "main")], acked: [entry(1, 0, "main")], buf: [], epoch: 0, holder: None, wEpoch: { w1: 0, w2: 0 } }
  },
  {
    inv: "LifecycleInv",
    why: "a holder while closed",
    state: { ...legal, log: [lease(1), close(1)], acked: [lease(1), close(1)], buf: [] }
  },
  {
    inv: "LifecycleInv",
    why: "a holder while suspended",
    state: { ...legal, log: [lease(1), suspend(1)], acked: [lease(1), suspend(1)], buf: [] }
  },
  {
    inv: "LifecycleInv",
    why: "a closed session got a writer again",
    state: {
      ...legal,
      log: [lease(1), close(1), lease(2)],
      acked: [lease(1), close(1), lease(2)],
      buf: [],
      epoch: 2,
      holder: "w2",
      wEpoch: { w1: 0, w2: 2 }
    }
  },
  {
    inv: "LifecycleInv",
    why: "a suspend record while suspended",
    state: {
      ...legal,
      log: [lease(1), suspend(1), suspend(1)],
      acked: [lease(1), suspend(1), suspend(1)],
      buf: [],
      holder: None,
      wEpoch: { w1: 0, w2: 0 }
    }
  }
]

describe("Session invariants can fail", () => {
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
