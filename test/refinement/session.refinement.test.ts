/**
 * Refinement: the real file journal refines spec/Session.tla.
 *
 * 1. fast-check drives random command sequences (the spec's actions plus a
 *    refused second writer) against the model and the implementation side by
 *    side; after every command the refinement mapping of the implementation
 *    (what is on disk + the writers' views) must equal the model state, and a
 *    command the model disables is never sent.
 * 2. Edge coverage: walks of the model's state graph (MCSession constants)
 *    that together take every edge, each replayed on a fresh implementation.
 *
 * Reproduce a failure with the printed `SEED=` (and the path fast-check prints).
 */

import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  AcquireLease,
  type ActionName,
  Append,
  Close,
  Crash,
  canonical,
  Expire,
  Flush,
  Fork,
  Init,
  MC,
  next,
  Recover,
  type SessionConstants,
  type SessionState,
  StaleWrite,
  type Step,
  Suspend,
  Switch,
  status
} from "../../models/session.ts"
import { Impl } from "./harness.ts"

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
// Larger than MCSession.cfg: random runs go deeper than exhaustive exploration can.
const C: SessionConstants = { writers: ["w1", "w2"], branches: ["main", "b1", "b2"], maxRecords: 10, maxEpoch: 4 }

/** How often each action ran in the random runs (printed, and checked so coverage cannot silently drop). */
const ran = new Map<string, number>()

interface Model {
  state: SessionState
}

/** The refinement mapping equals the model state, and the Session machine's fold agrees with the spec's Status. */
async function expectRefines(model: SessionState, impl: Impl, writers: ReadonlyArray<string>, after: string): Promise<void> {
  const abstract = await impl.abstract(writers)
  expect(canonical(abstract), `after ${after}`).toBe(canonical(model))
  expect(await impl.machineStatus(), `machine status after ${after}`).toBe(status([...model.log, ...model.buf]))
}

/** One command per spec action; `check` is the model's guard, so only enabled actions run. */
class ActionCommand implements fc.AsyncCommand<Model, Impl> {
  readonly name: string
  private readonly apply: (s: SessionState) => SessionState | null
  private readonly drive: (impl: Impl) => void | Promise<void>
  constructor(name: string, apply: (s: SessionState) => SessionState | null, drive: (impl: Impl) => void | Promise<void>) {
    this.name = name
    this.apply = apply
    this.drive = drive
  }
  check(m: Readonly<Model>): boolean {
    return this.apply(m.state) !== null
  }
  async run(m: Model, impl: Impl): Promise<void> {
    const nextState = this.apply(m.state)
    if (nextState === null) throw new Error(`${this.name} ran while disabled`)
    await this.drive(impl)
    ran.set(this.name.replace(/\(.*/, ""), (ran.get(this.name.replace(/\(.*/, "")) ?? 0) + 1)
    m.state = nextState
    await expectRefines(m.state, impl, C.writers, this.name)
  }
  toString(): string {
    return this.name
  }
}

class SecondWriterCommand implements fc.AsyncCommand<Model, Impl> {
  check(m: Readonly<Model>): boolean {
    return m.state.up && m.state.holder !== "none"
  }
  async run(m: Model, impl: Impl): Promise<void> {
    await impl.SecondWriter()
    await expectRefines(m.state, impl, C.writers, "SecondWriter (refused)")
  }
  toString(): string {
    return "SecondWriter"
  }
}

const writer = fc.constantFrom(...C.writers)
const branch = fc.constantFrom(...C.branches)
const acquire = writer.map(
  (w) =>
    new ActionCommand(
      `AcquireLease(${w})`,
      (s) => AcquireLease(s, { w }, C),
      (i) => i.AcquireLease(w)
    )
)
const expire = fc.constant(
  new ActionCommand(
    "Expire",
    (s) => Expire(s),
    (i) => i.Expire()
  )
)
const staleWrite = writer.map(
  (w) =>
    new ActionCommand(
      `StaleWrite(${w})`,
      (s) => StaleWrite(s, { w }),
      (i) => i.StaleWrite(w)
    )
)
// fc.commands picks uniformly: the takeover path (AcquireLease, Expire, AcquireLease, StaleWrite) is
// listed more than once so that random runs reach stale writers often.
const commands = [
  acquire,
  acquire,
  expire,
  staleWrite,
  staleWrite,
  fc.tuple(writer, branch).map(
    ([w, b]) =>
      new ActionCommand(
        `Append(${w},${b})`,
        (s) => Append(s, { w, b }, C),
        (i) => i.Append(w, b)
      )
  ),
  fc.tuple(writer, branch, fc.nat(C.maxRecords)).map(
    ([w, b, at]) =>
      new ActionCommand(
        `Fork(${w},${b},${at})`,
        (s) => Fork(s, { w, b, at }, C),
        (i) => i.Fork(w, b, at)
      )
  ),
  fc.tuple(writer, branch).map(
    ([w, b]) =>
      new ActionCommand(
        `Switch(${w},${b})`,
        (s) => Switch(s, { w, b }, C),
        (i) => i.Switch(w, b)
      )
  ),
  fc.constant(
    new ActionCommand(
      "Flush",
      (s) => Flush(s),
      (i) => i.Flush()
    )
  ),
  fc.tuple(fc.nat(C.maxRecords), fc.boolean()).map(
    ([k, torn]) =>
      new ActionCommand(
        `Crash(${k},${torn})`,
        (s) => Crash(s, { k, torn }),
        (i) => i.Crash(k, torn)
      )
  ),
  fc.constant(
    new ActionCommand(
      "Recover",
      (s) => Recover(s),
      (i) => i.Recover()
    )
  ),
  writer.map(
    (w) =>
      new ActionCommand(
        `Suspend(${w})`,
        (s) => Suspend(s, { w }, C),
        (i) => i.Suspend(w)
      )
  ),
  writer.map(
    (w) =>
      new ActionCommand(
        `Close(${w})`,
        (s) => Close(s, { w }, C),
        (i) => i.Close(w)
      )
  ),
  fc.constant(new SecondWriterCommand())
]

/** Drives the implementation through one model step (the edge-coverage walks). */
async function take(impl: Impl, step: Step): Promise<void> {
  switch (step.action) {
    case "AcquireLease":
      return impl.AcquireLease(step.args.w)
    case "Append":
      return impl.Append(step.args.w, step.args.b)
    case "Fork":
      return impl.Fork(step.args.w, step.args.b, step.args.at)
    case "Switch":
      return impl.Switch(step.args.w, step.args.b)
    case "Flush":
      return impl.Flush()
    case "StaleWrite":
      return impl.StaleWrite(step.args.w)
    case "Expire":
      return impl.Expire()
    case "Crash":
      return impl.Crash(step.args.k, step.args.torn)
    case "Recover":
      return impl.Recover()
    case "Suspend":
      return impl.Suspend(step.args.w)
    case "Close":
      return impl.Close(step.args.w)
  }
}

/**
 * Walks that together take every edge of the model's graph: from the initial
 * state, repeatedly go (by a shortest path) to the nearest state that still
 * has an untaken edge and take it; a walk ends after `walkLengthMax` steps.
 */
function coveringWalks(c: SessionConstants, walkLengthMax: number): { walks: Array<Array<Step>>; edges: number } {
  // The graph with integer node ids: canonical keys are computed once per state.
  const ids = new Map<string, number>()
  const out: Array<Array<{ to: number; step: Step }>> = []
  const queue: Array<SessionState> = [Init(c)]
  ids.set(canonical(Init(c)), 0)
  for (let n = 0; n < queue.length; n++) {
    out[n] = next(queue[n] as SessionState, c).map((step) => {
      const key = canonical(step.state)
      let to = ids.get(key)
      if (to === undefined) {
        to = queue.length
        ids.set(key, to)
        queue.push(step.state)
      }
      return { to, step }
    })
  }
  const untaken = out.map((edges) => edges.map(() => true))
  let left = out.reduce((sum, edges) => sum + edges.length, 0)
  const edges = left
  const walks: Array<Array<Step>> = []
  while (left > 0) {
    const walk: Array<Step> = []
    let at = 0
    while (left > 0 && walk.length < walkLengthMax) {
      // BFS from `at` to the nearest node with an untaken edge; walk there, then take that edge.
      const parent = new Map<number, { from: number; edge: number } | null>([[at, null]])
      const frontier = [at]
      let found: { node: number; edge: number } | undefined
      for (let f = 0; f < frontier.length && found === undefined; f++) {
        const node = frontier[f] as number
        const open = (untaken[node] as Array<boolean>).indexOf(true)
        if (open >= 0) found = { node, edge: open }
        else
          for (const [e, { to }] of (out[node] as Array<{ to: number }>).entries()) {
            if (!parent.has(to)) {
              parent.set(to, { from: node, edge: e })
              frontier.push(to)
            }
          }
      }
      if (found === undefined) break // nothing untaken is reachable from here: start a new walk
      const path: Array<{ from: number; edge: number }> = []
      for (let k = found.node; parent.get(k) !== null; k = (parent.get(k) as { from: number }).from)
        path.unshift(parent.get(k) as { from: number; edge: number })
      path.push({ from: found.node, edge: found.edge })
      for (const { from, edge } of path) {
        const taken = (out[from] as Array<{ to: number; step: Step }>)[edge] as { to: number; step: Step }
        walk.push(taken.step)
        if ((untaken[from] as Array<boolean>)[edge]) {
          ;(untaken[from] as Array<boolean>)[edge] = false
          left--
        }
        at = taken.to
      }
    }
    walks.push(walk)
  }
  return { walks, edges }
}

describe("Session journal refines spec/Session.tla", () => {
  it("random command sequences: the mapping equals the model after every command", async () => {
    console.log(`SEED=${seed}`)
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 60, size: "max" }), async (cmds) => {
        const impl = await Impl.make()
        try {
          await fc.asyncModelRun(() => ({ model: { state: Init(C) }, real: impl }), cmds)
        } finally {
          await impl.dispose()
        }
      }),
      { seed, numRuns: 300 }
    )
    console.log(`actions run: ${[...ran].map(([a, n]) => `${a} ${n}`).join(", ")}`)
    for (const action of ["AcquireLease", "Append", "Fork", "Switch", "Flush", "StaleWrite", "Expire", "Crash", "Recover", "Suspend", "Close"]) {
      expect(ran.get(action) ?? 0, action).toBeGreaterThan(0)
    }
  }, 300_000)

  it("edge coverage: every edge of the MCSession state graph, replayed on the implementation", async () => {
    const { walks, edges } = coveringWalks(MC, 60)
    const taken = new Set<ActionName>()
    let steps = 0
    for (const walk of walks) {
      const impl = await Impl.make()
      const model: Model = { state: Init(MC) }
      try {
        for (const step of walk) {
          await take(impl, step)
          model.state = step.state
          taken.add(step.action)
          steps++
          await expectRefines(model.state, impl, MC.writers, `${step.action} ${canonical(step.args)} in walk ${walks.indexOf(walk)}`)
        }
      } finally {
        await impl.dispose()
      }
    }
    console.log(`edge coverage: ${edges} edges in ${walks.length} walks, ${steps} steps`)
    expect(edges).toBe(6886)
    expect(taken.size).toBe(11)
  }, 600_000)
})
