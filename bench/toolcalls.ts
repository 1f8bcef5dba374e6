/**
 * Section (f) of the benchmarks: journaled tool calls.
 *
 *   (f1) one journaled call (Executor.runCall of a proposed call, under
 *        allowAll: [authorized, started] durable in one batch, the tool, the
 *        outcome durable), fsync, 1,000 sequential calls, vs two sequential
 *        durable journal appends of the same records
 *   (f2) the same with durability "os", and the tool's bare Effect run
 *   (f3) 100 parallel calls (one propose of 100, Executor.runCalls with
 *        concurrency 100), fsync, and the group-commit cycles they took
 *   (f4) propose: the assistant entry + N proposed calls in one batch, N = 1, 100
 *
 * The tool is trivial (returns its input), so what is measured is the
 * journal and the executor. Proposing the calls of f1/f2 is setup, not timed.
 * `journaledUnderAuthority` (used by section i) runs the f1/f2 call under
 * allowAll and under a real capability, interleaved, in one run.
 */
import * as nodePath from "node:path"
import { Effect, Schema } from "effect"
import type { Authority } from "../src/authority/Authority.ts"
import type { Event, ToolCallEvent } from "../src/Event.ts"
import { encodeFrame } from "../src/journal/Codec.ts"
import * as Journal from "../src/journal/Journal.ts"
import * as Session from "../src/session/Session.ts"
import * as Executor from "../src/toolcall/Executor.ts"
import * as Tool from "../src/toolcall/Tool.ts"
import { initialCall, reduceCall, transitionCall } from "../src/toolcall/ToolCallMachine.ts"
import { allowAll } from "../test/support/authority.ts"
import { dur, type FsTrace, instrumentFs, median, num, type Row, ratio, type Stats, stats, tempDir, verdict } from "./lib.ts"

const now = () => performance.now()
const run = <A, E>(effect: Effect.Effect<A, E, import("effect").Scope.Scope>): Promise<A> => Effect.runPromise(Effect.scoped(effect))
const latencyText = (s: Stats) => `p50 ${dur(s.p50)}, p99 ${dur(s.p99)}`
const perSec = (n: number, ms: number) => `${num((n / ms) * 1000)} calls/s`
const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

export type Durability = "fsync" | "os"

// --------------------------------------------------------------- the tool and its records

const Text = Schema.Struct({ text: Schema.String })
const echo = Tool.make({
  name: "echo",
  description: "returns its input",
  input: Text,
  output: Text,
  semantics: "readOnly",
  timeoutMs: 10_000,
  run: (input) => Effect.succeed(input)
})
const tools = Executor.registry([echo], allowAll)
const echoInput = { text: "hello, tool" }
const turn = { role: "assistant", text: "calling echo" }

/** Call ids of one length, so every variant journals records of the same size. */
const callIdOf = (prefix: string, i: number) => `${prefix}${String(i).padStart(6, "0")}`

/**
 * The records a successful call journals, exactly as the executor builds them
 * under allowAll: [authorized, started] in one batch, then the outcome.
 */
const authorizedOf = (callId: string, time: number): ToolCallEvent => ({
  _tag: "tool.call.authorized",
  callId,
  capability: "test-capability",
  blocks: ["test-capability"],
  approvalRequired: false,
  time
})
const startedOf = (sessionId: string, callId: string, time: number): ToolCallEvent => ({
  _tag: "tool.call.started",
  callId,
  key: Tool.idempotencyKey(sessionId, callId),
  attempt: 1,
  time
})
const succeededOf = (callId: string, time: number): ToolCallEvent => ({
  _tag: "tool.call.succeeded",
  callId,
  attempt: 1,
  output: echoInput,
  reconciled: false,
  time
})

// --------------------------------------------------------------- rigs

/** A session and, in another folder, a bare journal with the same durability (the baseline). */
interface Rig {
  readonly session: Session.Session
  readonly journal: Journal.JournalShape
}

const openRig = (dir: string, name: string, durability: Durability) =>
  Effect.gen(function* () {
    const session = yield* Session.openFile(nodePath.join(dir, `${name}-session`), { owner: "bench-f", durability })
    const journal = yield* Journal.openFile(nodePath.join(dir, `${name}-journal`), { owner: "bench-f", durability })
    yield* journal.acquireLease("bench-f")
    return { session, journal } satisfies Rig
  })

const fenceOf = (journal: Journal.JournalShape): Journal.Fence => ({ epoch: journal.epoch(), head: journal.head() })

/** One propose (assistant entry + one call) per id: setup for f1/f2. */
const proposeEach = (session: Session.Session, ids: ReadonlyArray<string>) =>
  Effect.forEach(ids, (callId) => session.propose("assistant", turn, [{ callId, tool: echo.name, input: echoInput }]), { discard: true })

const expectSucceeded = (call: { readonly callId: string; readonly state: string }) => {
  if (call.state !== "succeeded") throw new Error(`call ${call.callId} ended ${call.state}`)
}

// --------------------------------------------------------------- sequential loops

/** f1/f2: Executor.runCall of calls proposed beforehand, one at a time. */
const callLoop = (session: Session.Session, ids: ReadonlyArray<string>, registry: Executor.Registry = tools) =>
  Effect.gen(function* () {
    const lat: Array<number> = []
    for (const id of ids) {
      const t = now()
      const call = yield* Executor.runCall(session, registry, id)
      lat.push(now() - t)
      expectSucceeded(call)
    }
    return lat
  })

/** Baseline: the same two records, appended straight to a journal one after the other, each durable. */
const pairLoop = (journal: Journal.JournalShape, sessionId: string, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const lat: Array<number> = []
    let fence = fenceOf(journal)
    for (const id of ids) {
      const t = now()
      const time = Date.now()
      fence = yield* journal.append([authorizedOf(id, time), startedOf(sessionId, id, time)], fence)
      fence = yield* journal.append([succeededOf(id, Date.now())], fence)
      lat.push(now() - t)
    }
    return lat
  })

/** The same two records through the session (checks, fold, ToolCall machine), without the executor or a tool. */
const recordLoop = (session: Session.Session, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const lat: Array<number> = []
    for (const id of ids) {
      const t = now()
      yield* session.recordCall((time) => [authorizedOf(id, time), startedOf(session.id, id, time)])
      yield* session.recordCall((time) => succeededOf(id, time))
      lat.push(now() - t)
    }
    return lat
  })

/** A session whose recordCall notes when each record was asked for and when it was durable. */
function tracedSession(session: Session.Session, onRecord: (event: ToolCallEvent, begin: number, end: number) => void): Session.Session {
  return {
    ...session,
    recordCall: (build) =>
      Effect.suspend(() => {
        const begin = now()
        let built: ToolCallEvent | ReadonlyArray<ToolCallEvent> | undefined
        return session
          .recordCall((time) => {
            built = build(time)
            return built
          })
          .pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                for (const event of Array.isArray(built) ? built : built === undefined ? [] : [built as ToolCallEvent]) onRecord(event, begin, now())
              })
            )
          )
      })
  }
}

/** Where one call's time goes (p50 of each step): runCall start → started asked → durable → outcome asked → durable → runCall done. */
export interface Breakdown {
  readonly before: number
  readonly started: number
  readonly tool: number
  readonly outcome: number
  readonly after: number
  readonly total: number
}

const breakdownLoop = (session: Session.Session, ids: ReadonlyArray<string>, registry: Executor.Registry = tools) =>
  Effect.gen(function* () {
    const marks: Array<number> = []
    // One mark pair per batch: `authorized` shares the `started` batch (same begin and end), so it is skipped.
    const traced = tracedSession(session, (event, begin, end) => {
      if (event._tag !== "tool.call.authorized") marks.push(begin, end)
    })
    const steps = {
      before: [] as Array<number>,
      started: [] as Array<number>,
      tool: [] as Array<number>,
      outcome: [] as Array<number>,
      after: [] as Array<number>,
      total: [] as Array<number>
    }
    for (const id of ids) {
      marks.length = 0
      const t0 = now()
      yield* Executor.runCall(traced, registry, id)
      const t1 = now()
      const [sb = t0, se = t0, ob = t0, oe = t0] = marks
      steps.before.push(sb - t0)
      steps.started.push(se - sb)
      steps.tool.push(ob - se)
      steps.outcome.push(oe - ob)
      steps.after.push(t1 - oe)
      steps.total.push(t1 - t0)
    }
    return {
      before: median(steps.before),
      started: median(steps.started),
      tool: median(steps.tool),
      outcome: median(steps.outcome),
      after: median(steps.after),
      total: median(steps.total)
    } satisfies Breakdown
  })

export const breakdownText = (b: Breakdown) =>
  `lookup+decode+authority check ${dur(b.before)} → started durable ${dur(b.started)} → tool+encode ${dur(b.tool)} → outcome durable ${dur(b.outcome)} → return ${dur(b.after)}`

/** The tool without the journal: `yield* tool.run` alone, and with the executor's other steps (decode, timeout, exit, encode). */
const bareLoops = (n: number) =>
  Effect.gen(function* () {
    const ctx: Tool.ToolContext = { callId: "bare", idempotencyKey: Tool.idempotencyKey("bench", "bare"), attempt: 1, signal: new AbortController().signal }
    const bare: Array<number> = []
    const wrapped: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = now()
      yield* echo.run(echoInput, ctx)
      bare.push(now() - t)
    }
    for (let i = 0; i < n; i++) {
      const t = now()
      const input = yield* Tool.decodeInput(echo, echoInput)
      const exit = yield* Effect.exit(echo.run(input, ctx).pipe(Effect.timeout(echo.timeoutMs)))
      if (exit._tag === "Success") yield* Tool.encodeOutput(echo, exit.value)
      wrapped.push(now() - t)
    }
    return { bare: stats(bare), wrapped: stats(wrapped) }
  })

/**
 * One step of the ToolCall fold: `reduceCall` (what a session runs on each
 * tool-call record) beside XState's `transition` on the same machine (the
 * reference it is tested against), to show what the written-out step saves.
 */
function machineLoops(n: number): { xstate: Stats; step: Stats } {
  const xstate: Array<number> = []
  const step: Array<number> = []
  // A call starts from `authorized` (the executor journals [authorized, started] in one batch).
  const authorized = reduceCall(initialCall, authorizedOf("m", 0))
  if (authorized === undefined) throw new Error("the ToolCall machine refused tool.call.authorized from proposed")
  const event: ToolCallEvent = { _tag: "tool.call.started", callId: "m", key: "keel:bench:m", attempt: 1, time: 0 }
  for (let i = 0; i < n; i++) {
    let t = now()
    const reference = transitionCall(authorized, event)
    xstate.push(now() - t)
    t = now()
    const next = reduceCall(authorized, event)
    step.push(now() - t)
    if (next === undefined || reference === undefined) throw new Error("the ToolCall machine refused tool.call.started from authorized")
  }
  return { xstate: stats(xstate.slice(n / 10)), step: stats(step.slice(n / 10)) }
}

interface Sequential {
  readonly call: Array<number>
  readonly pair: Array<number>
  readonly record: Array<number>
  readonly breakdown: Breakdown
  readonly frames: { readonly started: number; readonly succeeded: number }
}

/** f1/f2 for one durability: rounds of runCall, journal pairs and recordCall pairs, the order rotated each round. */
async function sequential(dir: string, durability: Durability, log: (m: string) => void): Promise<Sequential> {
  const rounds = 5
  const perRound = 200
  const warmup = 50
  const probe = 300
  return run(
    Effect.gen(function* () {
      const { session, journal } = yield* openRig(dir, `seq-${durability}`, durability)
      const idsOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => callIdOf(prefix, i))
      const ids = { call: idsOf("k", warmup + rounds * perRound), record: idsOf("r", warmup + rounds * perRound), probe: idsOf("q", probe) }
      const t = now()
      // Setup, not timed: one propose per call, as a model's turns would.
      yield* proposeEach(session, [...ids.call, ...ids.record, ...ids.probe])
      log(`  ${durability}: proposed ${num(ids.call.length + ids.record.length + ids.probe.length)} calls (one per propose) in ${dur(now() - t)}`)
      const variants = {
        call: (slice: ReadonlyArray<string>) => callLoop(session, slice),
        pair: (slice: ReadonlyArray<string>) => pairLoop(journal, session.id, slice),
        record: (slice: ReadonlyArray<string>) => recordLoop(session, slice)
      }
      const idsFor = (name: keyof typeof variants, from: number, n: number) => (name === "pair" ? ids.call : ids[name]).slice(from, from + n)
      const order = ["call", "pair", "record"] as const
      for (const name of order) yield* variants[name](idsFor(name, 0, warmup))
      const samples = { call: [] as Array<number>, pair: [] as Array<number>, record: [] as Array<number> }
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < order.length; k++) {
          const name = order[(k + r) % order.length] as (typeof order)[number]
          samples[name].push(...(yield* variants[name](idsFor(name, warmup + r * perRound, perRound))))
        }
        log(`  ${durability} round ${r + 1}: call p50 ${dur(stats(samples.call).p50)}, 2 appends p50 ${dur(stats(samples.pair).p50)}`)
      }
      const breakdown = yield* breakdownLoop(session, ids.probe)
      const sample = callIdOf("k", 0)
      const frames = {
        started: encodeFrame({ position: 5000, epoch: 2, events: [authorizedOf(sample, Date.now()), startedOf(session.id, sample, Date.now())] }).length,
        succeeded: encodeFrame({ position: 5001, epoch: 2, events: [succeededOf(sample, Date.now())] }).length
      }
      return { ...samples, breakdown, frames }
    })
  )
}

// --------------------------------------------------------------- f3: parallel calls

interface ParallelRound {
  readonly ms: number
  readonly lat: Array<number>
  readonly baselineMs: number
}

/** One propose of `n` calls (setup), then Executor.runCalls with concurrency n (timed); then the same records on the bare journal. */
const parallelRound = (rig: Rig, round: number, n: number) =>
  Effect.gen(function* () {
    const calls = Array.from({ length: n }, (_, i) => ({ callId: callIdOf(`p${round}-`, i), tool: echo.name, input: echoInput }))
    const proposed = yield* rig.session.propose("assistant", turn, calls)
    const ids = proposed.calls.map((c) => c.callId)
    const started = new Map<string, number>()
    const lat: Array<number> = []
    const traced = tracedSession(rig.session, (event, begin, end) => {
      if (event._tag === "tool.call.started") started.set(event.callId, begin)
      // `authorized` rides in the `started` batch: not an outcome.
      else if (event._tag !== "tool.call.authorized") lat.push(end - (started.get(event.callId) ?? Number.NaN))
    })
    const t0 = now()
    const done = yield* Executor.runCalls(traced, tools, ids, { concurrency: n })
    const ms = now() - t0
    for (const call of done) expectSucceeded(call)
    // Baseline: the same 2n records from n concurrent appenders on the bare journal (the group commit alone).
    const t1 = now()
    yield* Effect.forEach(
      ids,
      (id) =>
        Effect.gen(function* () {
          yield* Effect.suspend(() => rig.journal.append([authorizedOf(id, Date.now()), startedOf(rig.session.id, id, Date.now())], fenceOf(rig.journal)))
          yield* Effect.suspend(() => rig.journal.append([succeededOf(id, Date.now())], fenceOf(rig.journal)))
        }),
      { concurrency: n, discard: true }
    )
    return { ms, lat, baselineMs: now() - t1 } satisfies ParallelRound
  })

interface Parallel {
  readonly n: number
  readonly rounds: Array<ParallelRound>
  readonly traces: Array<{ readonly trace: FsTrace; readonly ms: number }>
}

async function parallel(dir: string, log: (m: string) => void): Promise<Parallel> {
  const n = 100
  const rounds = 20
  return run(
    Effect.gen(function* () {
      const rig = yield* openRig(dir, "par", "fsync")
      for (let r = 0; r < 3; r++) yield* parallelRound(rig, 1000 + r, n) // warm-up
      const measured: Array<ParallelRound> = []
      for (let r = 0; r < rounds; r++) measured.push(yield* parallelRound(rig, r, n))
      log(
        `  ${rounds} rounds: runCalls median ${dur(median(measured.map((m) => m.ms)))}, bare journal median ${dur(median(measured.map((m) => m.baselineMs)))}`
      )
      // Separate, instrumented rounds: only runCalls is traced (the propose is setup, outside the trace).
      const traces: Array<{ trace: FsTrace; ms: number }> = []
      for (let r = 0; r < 3; r++) {
        const calls = Array.from({ length: n }, (_, i) => ({ callId: callIdOf(`t${r}-`, i), tool: echo.name, input: echoInput }))
        const ids = (yield* rig.session.propose("assistant", turn, calls)).calls.map((c) => c.callId)
        const traced = yield* Effect.promise(() =>
          instrumentFs(async () => {
            const t = now()
            await Effect.runPromise(Executor.runCalls(rig.session, tools, ids, { concurrency: n }))
            return now() - t
          })
        )
        traces.push({ trace: traced, ms: traced.result })
      }
      return { n, rounds: measured, traces }
    })
  )
}

// --------------------------------------------------------------- f4: propose

interface ProposeSamples {
  readonly session: Array<number>
  readonly journal: Array<number>
}

/** Proposes of `n` calls through the session, and appends of the same batch (entry + n proposed) to the bare journal. */
const proposeLoop = (rig: Rig, tag: string, n: number, count: number, out: ProposeSamples) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) {
      const calls = Array.from({ length: n }, (_, k) => ({ callId: callIdOf(`${tag}${i}-`, k), tool: echo.name, input: echoInput }))
      const t = now()
      yield* rig.session.propose("assistant", turn, calls)
      out.session.push(now() - t)
    }
    let fence = fenceOf(rig.journal)
    for (let i = 0; i < count; i++) {
      const time = Date.now()
      const entryId = fence.head + 1
      const events: Array<Event> = [{ _tag: "entry.appended", branch: "main", parentId: fence.head - 1, type: "assistant", time, payload: turn }]
      for (let k = 0; k < n; k++) {
        events.push({ _tag: "tool.call.proposed", callId: callIdOf(`${tag}${i}-`, k), entryId, tool: echo.name, input: echoInput, atomic: false, time })
      }
      const t = now()
      fence = yield* rig.journal.append(events, fence)
      out.journal.push(now() - t)
    }
  })

type ProposeResult = Record<"1" | "100", Record<Durability, ProposeSamples>>

async function proposes(dir: string, log: (m: string) => void): Promise<ProposeResult> {
  const plan = { "1": { perRound: 60, rounds: 5 }, "100": { perRound: 12, rounds: 5 } } as const
  const result: ProposeResult = {
    "1": { fsync: { session: [], journal: [] }, os: { session: [], journal: [] } },
    "100": { fsync: { session: [], journal: [] }, os: { session: [], journal: [] } }
  }
  await run(
    Effect.gen(function* () {
      for (const durability of ["fsync", "os"] as const) {
        const rig = yield* openRig(dir, `propose-${durability}`, durability)
        const scratch = { session: [], journal: [] }
        yield* proposeLoop(rig, "w1-", 1, 30, scratch)
        yield* proposeLoop(rig, "w100-", 100, 3, scratch)
        for (let r = 0; r < 5; r++) {
          for (const size of r % 2 === 0 ? (["1", "100"] as const) : (["100", "1"] as const)) {
            yield* proposeLoop(rig, `n${size}r${r}-`, Number(size), plan[size].perRound, result[size][durability])
          }
        }
        log(`  ${durability}: N=1 p50 ${dur(stats(result["1"][durability].session).p50)}, N=100 p50 ${dur(stats(result["100"][durability].session).p50)}`)
      }
    })
  )
  return result
}

// --------------------------------------------------------------- authority: allowAll vs a real capability

/**
 * A second no-op tool, with arguments a capability can constrain (a path and
 * a number): what the journaled-call comparison under an authority runs.
 */
const Peek = Schema.Struct({ path: Schema.String, limit: Schema.Number })
export const peek = Tool.make({
  name: "peek",
  description: "returns its input",
  input: Peek,
  output: Peek,
  semantics: "readOnly",
  timeoutMs: 10_000,
  run: (input) => Effect.succeed(input)
})
export const peekInput = { path: "/ws/src/main.ts", limit: 100 }

/** The variants of the comparison: allowAll twice (the second is the A/A control) and the capability. */
const authorityVariants = ["allow", "cap", "allow2"] as const
type AuthorityVariant = (typeof authorityVariants)[number]

export interface AuthorityComparison {
  readonly durability: Durability
  /** Every call's latency, by run (each run interleaves the variants in small rounds whose order rotates). */
  readonly runs: Array<Record<AuthorityVariant, Array<number>>>
  /** Where a call's time goes (p50 of each step), allowAll and the capability. */
  readonly breakdown: { readonly allow: Breakdown; readonly cap: Breakdown }
  /** `authority.check` timed in place inside runCall (p50), allowAll and the capability. */
  readonly checkInPlace: { readonly allow: Stats; readonly cap: Stats }
  /** fsync/fdatasync calls and writes per call, counted on an instrumented run of each. */
  readonly io: { readonly allow: { fsyncs: number; writes: number }; readonly cap: { fsyncs: number; writes: number } }
  /** Bytes of the frame that carries [authorized, started] under each authority. */
  readonly frames: { readonly allow: number; readonly cap: number }
  readonly plan: AuthorityPlan
}

export interface AuthorityPlan {
  /** Repeats of the whole comparison: their spread is the run-to-run noise. */
  readonly runs: number
  /** Rounds per run; each round runs `perRound` calls of each variant, the order rotated. */
  readonly rounds: number
  readonly perRound: number
  readonly warmup: number
  /** Calls per variant for the step breakdown. */
  readonly probe: number
  /** Calls per variant on the instrumented (I/O-counting) run. */
  readonly traced: number
}

/** An authority whose check is timed where the executor makes it. */
const timedAuthority = (authority: Authority, out: Array<number>): Authority => ({
  ...authority,
  check: (request, context) =>
    Effect.suspend(() => {
      const t = now()
      return authority.check(request, context).pipe(Effect.tap(() => Effect.sync(() => out.push(now() - t))))
    })
})

/**
 * The journaled call of f1/f2 (Executor.runCall of a proposed call on a file
 * session, a no-op tool) under allowAll and under `capability`, interleaved
 * in small rounds whose order rotates, the whole repeated `plan.runs` times.
 * allowAll runs twice per round: its second run is an A/A control, the
 * difference a non-change shows in this run.
 */
export async function journaledUnderAuthority(
  durability: Durability,
  capability: Authority,
  log: (m: string) => void,
  plan: AuthorityPlan
): Promise<AuthorityComparison> {
  const dir = tempDir(`auth-${durability}`)
  const registries: Record<AuthorityVariant, Executor.Registry> = {
    allow: Executor.registry([peek], allowAll),
    cap: Executor.registry([peek], capability),
    allow2: Executor.registry([peek], allowAll)
  }
  return run(
    Effect.gen(function* () {
      const session = yield* Session.openFile(nodePath.join(dir, "session"), { owner: "bench-auth", durability })
      const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => callIdOf(prefix, i))
      const perVariant = plan.warmup + plan.runs * plan.rounds * plan.perRound
      const pool = {
        allow: ids("a", perVariant),
        cap: ids("c", perVariant),
        allow2: ids("b", perVariant),
        probeAllow: ids("pa", plan.probe),
        probeCap: ids("pc", plan.probe),
        ioAllow: ids("ia", plan.traced),
        ioCap: ids("ic", plan.traced)
      }
      const t = now()
      const all = Object.values(pool).flat()
      // Setup, not timed: one propose per call.
      yield* Effect.forEach(all, (callId) => session.propose("assistant", turn, [{ callId, tool: peek.name, input: peekInput }]), { discard: true })
      log(`  ${durability}: proposed ${num(all.length)} peek calls in ${dur(now() - t)}`)
      // Warm-up: the capability's first check verifies the token (signatures); from then on the cache answers.
      for (const v of authorityVariants) yield* callLoop(session, pool[v].slice(0, plan.warmup), registries[v])
      const runs: Array<Record<AuthorityVariant, Array<number>>> = []
      let next = plan.warmup
      for (let k = 0; k < plan.runs; k++) {
        const samples: Record<AuthorityVariant, Array<number>> = { allow: [], cap: [], allow2: [] }
        for (let r = 0; r < plan.rounds; r++) {
          for (let j = 0; j < authorityVariants.length; j++) {
            const v = authorityVariants[(j + r + k) % authorityVariants.length] as AuthorityVariant
            samples[v].push(...(yield* callLoop(session, pool[v].slice(next, next + plan.perRound), registries[v])))
          }
          next += plan.perRound
        }
        runs.push(samples)
        const p = (v: AuthorityVariant) => dur(stats(samples[v]).p50)
        log(`  ${durability} run ${k + 1}: allowAll p50 ${p("allow")} / ${p("allow2")}, capability p50 ${p("cap")}`)
      }
      const inPlace = { allow: [] as Array<number>, cap: [] as Array<number> }
      const breakdown = {
        allow: yield* breakdownLoop(session, pool.probeAllow, Executor.registry([peek], timedAuthority(allowAll, inPlace.allow))),
        cap: yield* breakdownLoop(session, pool.probeCap, Executor.registry([peek], timedAuthority(capability, inPlace.cap)))
      }
      const io = { allow: { fsyncs: 0, writes: 0 }, cap: { fsyncs: 0, writes: 0 } }
      for (const [v, slice] of [
        ["allow", pool.ioAllow],
        ["cap", pool.ioCap]
      ] as const) {
        const trace = yield* Effect.promise(() => instrumentFs(() => Effect.runPromise(callLoop(session, slice, registries[v]))))
        io[v] = { fsyncs: (trace.fsyncs + trace.fsyncsSync) / slice.length, writes: trace.writes.length / slice.length }
      }
      // The frame of the first batch each variant journals: [authorized, started].
      const frameOf = (registry: Executor.Registry) =>
        Effect.gen(function* () {
          const verdict = yield* registry.authority.check({ callId: "a000000", tool: peek.name, input: peekInput }, { now: Date.now(), usesOf: () => 0 })
          if (!verdict.granted) throw new Error(`the bench capability denies peek: ${verdict.message}`)
          const time = Date.now()
          const events: Array<Event> = [
            { _tag: "tool.call.authorized", callId: "a000000", capability: verdict.capability, blocks: [...verdict.blocks], approvalRequired: false, time },
            startedOf(session.id, "a000000", time)
          ]
          return encodeFrame({ position: 5000, epoch: 2, events }).length
        })
      const frames = { allow: yield* frameOf(registries.allow), cap: yield* frameOf(registries.cap) }
      const checkInPlace = { allow: stats(inPlace.allow), cap: stats(inPlace.cap) }
      return { durability, runs, breakdown, checkInPlace, io, frames, plan } satisfies AuthorityComparison
    })
  )
}

// --------------------------------------------------------------- the section

export async function sectionF(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  const dir = tempDir("f")
  log("(f) journaled tool calls: sequential, fsync")
  const fsync = await sequential(dir, "fsync", log)
  log('(f) sequential, durability "os"')
  const os = await sequential(dir, "os", log)
  const bare = await Effect.runPromise(bareLoops(10_000))
  const machine = machineLoops(3000)
  log("(f3) 100 parallel calls, fsync")
  const par = await parallel(dir, log)
  log("(f4) propose, N = 1 and N = 100")
  const prop = await proposes(dir, log)

  // f1
  const s = { call: stats(fsync.call), pair: stats(fsync.pair), record: stats(fsync.record) }
  const r1 = s.call.p50 / s.pair.p50
  rows.push({
    id: "f1",
    measure: `Journaled tool call: Executor.runCall of a proposed call ([authorized, started] + succeeded, each batch durable; allowAll), echo tool, fsync, sequential, n=${s.call.n}`,
    result: `${latencyText(s.call)}, ${perSec(s.call.n, sum(fsync.call))}`,
    baseline: `2 sequential durable journal appends of the same records (frames ${fsync.frames.started} B + ${fsync.frames.succeeded} B): ${latencyText(s.pair)}`,
    ratio: `${ratio(r1)} p50 (p99 ${ratio(s.call.p99 / s.pair.p99)})`,
    target: "≤ 2× the two appends",
    status: verdict(r1 <= 2)
  })
  rows.push({
    id: "f1b",
    measure: "  same records through session.recordCall ([authorized, started], then succeeded; no executor, no tool)",
    result: latencyText(s.record),
    baseline: `2 journal appends: p50 ${dur(s.pair.p50)}`,
    ratio: `${ratio(s.record.p50 / s.pair.p50)} p50`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "f1c",
    measure: `  where a call's time goes, fsync (p50 of each step, n=300, recordCall traced)`,
    result: breakdownText(fsync.breakdown),
    baseline: `total p50 ${dur(fsync.breakdown.total)}; 1 journal append ≈ ${dur(s.pair.p50 / 2)}`,
    ratio: "—",
    target: "—",
    status: "info"
  })
  // f2
  const o = { call: stats(os.call), pair: stats(os.pair), record: stats(os.record) }
  rows.push({
    id: "f2",
    measure: `  same call, durability "os" (write, no fsync), n=${o.call.n}`,
    result: `${latencyText(o.call)}, ${perSec(o.call.n, sum(os.call))}`,
    baseline: `2 journal appends, "os": ${latencyText(o.pair)}; via session.recordCall: ${latencyText(o.record)}`,
    ratio: `${ratio(o.call.p50 / o.pair.p50)} p50`,
    target: "(≤ 2×)",
    status: "info"
  })
  rows.push({
    id: "f2b",
    measure: "  software overhead per call (os): runCall − 2 appends, vs the tool's bare Effect run (no journal), n=10,000",
    result: `${dur(o.call.p50 - o.pair.p50)} per call above the 2 appends (p50); executor+session above the journal`,
    baseline: `bare yield* tool.run: p50 ${dur(bare.bare.p50)}; + decode, timeout, exit, encode: p50 ${dur(bare.wrapped.p50)}`,
    ratio: `${ratio(o.call.p50 / bare.bare.p50, 0)} bare run`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "f2c",
    measure: '  where a call\'s time goes, "os" (p50 of each step, n=300)',
    result: breakdownText(os.breakdown),
    baseline: `total p50 ${dur(os.breakdown.total)}; 1 journal append ≈ ${dur(o.pair.p50 / 2)}`,
    ratio: "—",
    target: "—",
    status: "info"
  })
  const sessionOverhead = o.record.p50 - o.pair.p50
  rows.push({
    id: "f2d",
    measure: "  ToolCall fold step: reduceCall (used) vs XState transition on the same machine (reference)",
    result: `reduceCall p50 ${dur(machine.step.p50)} (p99 ${dur(machine.step.p99)}); XState transition p50 ${dur(machine.xstate.p50)}`,
    baseline: `session overhead per call, "os": recordCall pair − 2 appends = ${dur(sessionOverhead)}`,
    ratio: `${(machine.xstate.p50 / Math.max(machine.step.p50, 0.001)).toFixed(0)}× faster`,
    target: "—",
    status: "info"
  })
  // f3
  const totals = par.rounds.map((r) => r.ms)
  const baselines = par.rounds.map((r) => r.baselineMs)
  const lat = stats(par.rounds.flatMap((r) => r.lat))
  const totalMs = median(totals)
  const sequentialMs = s.call.p50 * par.n
  rows.push({
    id: "f3",
    measure: `${par.n} parallel calls: 1 propose of ${par.n}, then Executor.runCalls (concurrency ${par.n}), fsync, ${par.rounds.length} rounds`,
    result: `${dur(totalMs)} median (${dur(Math.min(...totals))}–${dur(Math.max(...totals))}), ${perSec(par.n, totalMs)}; per call (started asked → outcome durable) ${latencyText(lat)}`,
    baseline: `same ${3 * par.n} records in ${2 * par.n} appends, ${par.n} concurrent appenders on the bare journal: ${dur(median(baselines))}; ${par.n} sequential calls (f1 p50): ${dur(sequentialMs)}`,
    ratio: `${ratio(totalMs / median(baselines))} bare; ${ratio(totalMs / sequentialMs)} the sequential time`,
    target: "—",
    status: "info"
  })
  const cycleText = par.traces.map(({ trace, ms }) => {
    const cycles = trace.frames.filter((f) => f > 0)
    return `${trace.fsyncs + trace.fsyncsSync} fsyncs (${cycles.length} writes: ${cycles.join("+")} frames) in ${dur(ms)}`
  })
  const fsyncMs = par.traces.map(({ trace }) => trace.fsyncMs)
  rows.push({
    id: "f3b",
    measure: `  group-commit cycles per ${par.n} parallel calls (${2 * par.n} batches: [authorized, started] and the outcome; instrumented rounds)`,
    result: cycleText.join("; "),
    baseline: `fdatasync in flight ${fsyncMs.map((x) => dur(x)).join(" / ")}`,
    ratio: "—",
    target: "—",
    status: "info"
  })
  // f4
  for (const size of ["1", "100"] as const) {
    const f = { session: stats(prop[size].fsync.session), journal: stats(prop[size].fsync.journal) }
    const g = { session: stats(prop[size].os.session), journal: stats(prop[size].os.journal) }
    rows.push({
      id: size === "1" ? "f4" : "f4b",
      measure: `${size === "1" ? "" : "  "}session.propose: assistant entry + ${size} proposed call${size === "1" ? "" : "s"} in one batch, fsync, n=${f.session.n}`,
      result: `${latencyText(f.session)}, max ${dur(f.session.max)}; "os": p50 ${dur(g.session.p50)}`,
      baseline: `journal append of the same batch: fsync ${latencyText(f.journal)}; "os" p50 ${dur(g.journal.p50)}`,
      ratio: `${ratio(f.session.p50 / f.journal.p50)} p50 (os ${ratio(g.session.p50 / g.journal.p50)})`,
      target: "—",
      status: "info"
    })
  }
}
