/**
 * The implementation side of the ToolCall refinement tests: the real executor, saga and recovery
 * over a real file session in a temp folder, driven by the actions of spec/ToolCall.tla, and the
 * refinement mapping from what is on disk, in the live session and in the world (a ledger) to the
 * model's state (models/toolCall.ts).
 *
 * Each model call `c` has a tool of its own (`t_c`, the semantics the constants give it) whose
 * every attempt signals that it entered and then waits for the test to decide its fate:
 * Execute = the external effect (one execution in the ledger under the attempt's idempotency
 * key), Succeed / Fail = return / fail. TimeOut advances the TestClock of the call's fiber past
 * the tool's timeout (each call runs on a TestClock of its own, so one call's time never moves
 * another's), Cancel interrupts the call's fiber, Retry advances its clock past the backoff.
 *
 * A "process" is a writer: the journal opened in a Scope of its own and the session over it (with
 * no finalizer that suspends). Crash closes that scope: the store is closed, nothing more reaches
 * the file, and the process's fibers are abandoned where they wait, never resumed. Recover opens
 * a new process (a writer open marks started calls inDoubt); Rerun / Reconcile / CloseUnknown are
 * `Executor.resolveInDoubt`, which decides by the tool's semantics which one it is.
 *
 * A compensatable call is proposed in an atomic group with a sentinel call whose tool does not
 * exist: `Saga.continueSaga` runs the call, and once it succeeded rejects the sentinel and
 * compensates the call (newest first). The tool's `compensate` waits for the Compensate command.
 * The sentinel is not a model call; the mapping ignores it.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Fiber, Scheduler, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import type fc from "fast-check"
import {
  type Call,
  type CallState,
  isRerunnable,
  keyOf,
  semantics,
  type ToolCallConstants,
  type ToolCallRecord,
  type ToolCallState
} from "../../models/toolCall.ts"
import type { Event, ToolCallEvent } from "../../src/Event.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Saga from "../../src/toolcall/Saga.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import * as Trace from "../../src/trace/Trace.ts"
import { allowAll } from "../support/authority.ts"

export const TIMEOUT_MS = 1000
export const BASE_MS = 10
export const CAP_MS = 40
/** How long a command may take to settle before the harness gives up (real files, fsync: a settle takes milliseconds). */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 3000)

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/** What the test tells a running attempt to do. */
export type Command = { readonly kind: "execute" } | { readonly kind: "succeed" } | { readonly kind: "fail"; readonly retryable: boolean }

/** An unbounded channel with an acknowledgement per message (the tool acks once it acted on it). */
class Mailbox<T> {
  private readonly queue: Array<{ message: T; ack: () => void }> = []
  private readonly waiters: Array<(m: { message: T; ack: () => void }) => void> = []
  send(message: T): Promise<void> {
    return new Promise((ack) => {
      const waiter = this.waiters.shift()
      if (waiter !== undefined) waiter({ message, ack })
      else this.queue.push({ message, ack })
    })
  }
  next(): Promise<{ message: T; ack: () => void }> {
    const first = this.queue.shift()
    return first !== undefined ? Promise.resolve(first) : new Promise((resolve) => this.waiters.push(resolve))
  }
}

/** An attempt of a tool that entered `run` and waits for commands. */
interface Attempt {
  readonly call: Call
  readonly attempt: number
  readonly key: string
  readonly mailbox: Mailbox<Command>
}

/** The world outside the runtime: every execution of an effect, by idempotency key and attempt. */
export class World {
  readonly runs: Array<{ readonly key: string; readonly attempt: number }> = []
  count(key: string): number {
    return this.runs.filter((r) => r.key === key).length
  }
}

/** A call's fiber in a process: runCall, a saga, or resolveInDoubt, on a TestClock of its own. */
interface Running {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly clock: TestClock.TestClock
  readonly kind: "call" | "saga" | "resolve"
}

/** One writer process. */
class Process {
  readonly scope: Scope.Closeable
  readonly journal: Journal.JournalShape
  readonly session: Session.Session
  readonly fibers = new Map<Call, Running>()
  /** The attempt of each call whose tool entered `run` and waits for commands. */
  readonly attempts = new Map<Call, Attempt>()
  /** Compensations waiting for the Compensate command: their release. */
  readonly compensating = new Map<Call, () => void>()
  constructor(scope: Scope.Closeable, journal: Journal.JournalShape, session: Session.Session) {
    this.scope = scope
    this.journal = journal
    this.session = session
  }
}

export const toolName = (c: Call): string => `t_${c}`
/** The sentinel of a compensatable call's atomic group (its tool does not exist: rejected when the saga gets to it). */
export const sentinelOf = (c: Call): string => `${c}-sentinel`

// ---------------------------------------------------------------------------------------------
// The refinement mapping of journal records (model call c is implementation call id c)
// ---------------------------------------------------------------------------------------------

/** Impl key → model key: the idempotency key of model call c is `keyOf(c)`; anything else stays visibly wrong. */
export function modelKey(key: string, k: ToolCallConstants, sessionId: string): string {
  const c = k.calls.find((x) => Tool.idempotencyKey(sessionId, x) === key)
  return c === undefined ? `unexpected key ${key}` : keyOf(c)
}

/** One journaled tool-call event → the model record; `previous` is the call's record before it. */
export function modelRecord(e: ToolCallEvent, previous: ToolCallRecord | undefined, k: ToolCallConstants, sessionId: string): ToolCallRecord | undefined {
  switch (e._tag) {
    // spec/Authority.tla refines ToolCall.tla's proposed → started edge: its steps stutter here,
    // and a denial, rejection or expiry is ToolCall's Reject (closed before any attempt).
    case "tool.call.authorized":
    case "tool.call.awaitingApproval":
    case "tool.call.approved":
    case "tool.call.decisionIgnored":
      return undefined
    case "tool.call.denied":
    case "tool.call.rejected":
    case "tool.call.expired":
      return { type: "failed", attempt: 0, retryable: false, reason: "rejected" }
    case "tool.call.proposed":
      return { type: "proposed", key: keyOf(e.callId) }
    case "tool.call.started":
      return { type: "started", attempt: e.attempt, key: modelKey(e.key, k, sessionId) }
    case "tool.call.succeeded":
    case "tool.call.cancelled":
    case "tool.call.timedOut":
      return { type: e._tag.slice("tool.call.".length) as "succeeded", attempt: e.attempt }
    case "tool.call.failed": {
      // Attempt 0 is a rejection (bad input, unknown tool, a saga's call not run), whatever its reason.
      if (e.attempt === 0) return { type: "failed", attempt: 0, retryable: e.retryable, reason: "rejected" }
      const reason = e.reason === "unknown" ? "unknown" : e.reason === "error" || e.reason === "invalidOutput" || e.reason === "defect" ? "error" : e.reason
      return { type: "failed", attempt: e.attempt, retryable: e.retryable, reason: reason as "error" }
    }
    case "tool.call.compensated":
      // The record has no attempt: it undoes the success before it (the mapping takes that one's).
      return { type: "compensated", attempt: previous?.type === "succeeded" ? previous.attempt : -1 }
  }
}

/** The model log of a journal's events: the records of each model call, in order (other calls ignored). */
export function modelLog(events: ReadonlyArray<Event>, k: ToolCallConstants, sessionId: string): Record<Call, Array<ToolCallRecord>> {
  const log: Record<Call, Array<ToolCallRecord>> = Object.fromEntries(k.calls.map((c) => [c, []]))
  for (const event of events) {
    if (!event._tag.startsWith("tool.call.")) continue
    const e = event as ToolCallEvent
    const records = log[e.callId]
    const record = records === undefined ? undefined : modelRecord(e, records.at(-1), k, sessionId)
    if (records !== undefined && record !== undefined) records.push(record)
  }
  return log
}

const input = Schema.Struct({ n: Schema.Finite })
const output = Schema.Struct({ call: Schema.String, attempt: Schema.Finite })

/** How a Reject is provoked: the registry lacks the call's tool, or its tool's Schema refuses the input. */
export type RejectHow = "unknownTool" | "invalidInput"

export class ToolCallImpl {
  readonly dir: string
  readonly k: ToolCallConstants
  readonly world = new World()
  private process: Process | undefined
  private readonly processes: Array<Process> = []
  private crashes = 0
  private sessionId = ""
  /** The entry (atomic group) each compensatable call was proposed with. */
  private readonly entries = new Map<Call, number>()
  /** Every step the harness took, for failure messages. */
  readonly log: Array<string> = []
  /**
   * The runtime's trace of every process (Trace.layerMemory), plus an Execute step (`world: true`)
   * each time a tool's effect really happens; `trace()` gives the checker the latter instead of the
   * executor's own Execute steps (those mark when a tool may act, see test/trace).
   */
  private readonly steps: Array<Trace.Step> = []

  private constructor(dir: string, k: ToolCallConstants) {
    this.dir = dir
    this.k = k
  }

  static async make(k: ToolCallConstants): Promise<ToolCallImpl> {
    const impl = new ToolCallImpl(fs.mkdtempSync(path.join(os.tmpdir(), "keel-toolcall-refinement-")), k)
    await impl.open()
    impl.sessionId = (impl.process as Process).session.id
    return impl
  }

  // -------------------------------------------------------------------------------------------
  // Processes, tools, fibers
  // -------------------------------------------------------------------------------------------

  private async open(): Promise<void> {
    const scope = await run(Scope.make())
    const owner = `process-${this.processes.length + 1}`
    const dir = this.dir
    const traceLayer = Trace.layerMemory(this.steps)
    const { journal, session } = await run(
      Effect.gen(function* () {
        const journal = yield* Journal.openFile(dir, { owner }).pipe(Scope.provide(scope))
        const session = yield* Session.open(journal, { owner }).pipe(Effect.provide(traceLayer))
        return { journal, session }
      })
    )
    const process = new Process(scope, journal, session)
    this.process = process
    this.processes.push(process)
  }

  private live(): Process {
    if (this.process === undefined) throw new Error("no process is up")
    return this.process
  }

  private readonly rerunnable = (c: Call): boolean => isRerunnable(c, this.k)
  private readonly compensatable = (c: Call): boolean => this.k.compensatableCalls.includes(c)

  /** The tool of model call `c` in process `p` (the test decides every attempt's fate). */
  private tool(p: Process, c: Call, inputSchema: Schema.Codec<{ readonly n: number }, unknown> = input): Tool.AnyTool {
    const world = this.world
    const steps = this.steps
    const reconcile = this.k.hasReconcile.includes(c)
      ? (_: { n: number }, ctx: Tool.ToolContext) =>
          Effect.sync(() =>
            world.count(ctx.idempotencyKey) > 0 ? { executed: true as const, output: { call: c, attempt: ctx.attempt } } : { executed: false as const }
          )
      : undefined
    return Tool.make({
      name: toolName(c),
      description: `model call ${c}`,
      input: inputSchema,
      output,
      semantics: semantics(c, this.k),
      timeoutMs: TIMEOUT_MS,
      retry: this.rerunnable(c) ? { attemptsMax: this.k.maxAttempts, baseMs: BASE_MS, capMs: CAP_MS } : {},
      ...(this.compensatable(c)
        ? {
            compensate: () => Effect.promise(() => new Promise<void>((release) => void p.compensating.set(c, release)))
          }
        : {}),
      ...(reconcile !== undefined ? { reconcile } : {}),
      run: (_, ctx) =>
        Effect.gen(function* () {
          const attempt: Attempt = { call: c, attempt: ctx.attempt, key: ctx.idempotencyKey, mailbox: new Mailbox() }
          p.attempts.set(c, attempt)
          while (true) {
            const { message, ack } = yield* Effect.promise(() => attempt.mailbox.next())
            if (message.kind === "execute") {
              world.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
              steps.push({ spec: "ToolCall", action: "Execute", args: { call: c, attempt: ctx.attempt, world: true } })
              ack()
              continue
            }
            ack()
            if (message.kind === "succeed") return { call: c, attempt: ctx.attempt }
            return yield* Effect.fail(new Tool.ToolFailure({ message: `told to fail (retryable: ${message.retryable})`, retryable: message.retryable }))
          }
        })
    })
  }

  /** The tools of process `p`; `reject` makes call `c` rejected (its tool missing, or refusing the input). */
  private registry(p: Process, reject?: { readonly c: Call; readonly how: RejectHow }): Executor.Registry {
    const tools: Array<Tool.AnyTool> = []
    for (const c of this.k.calls) {
      if (reject?.c === c) {
        if (reject.how === "invalidInput")
          tools.push(this.tool(p, c, Schema.Struct({ n: Schema.String }) as unknown as Schema.Codec<{ readonly n: number }, unknown>))
      } else tools.push(this.tool(p, c))
    }
    return Executor.registry(tools, allowAll)
  }

  /** Forks `effect` as call `c`'s fiber in `p`, on a TestClock of its own; resolves once it runs. */
  private async fork(p: Process, c: Call, kind: Running["kind"], effect: Effect.Effect<unknown, unknown>): Promise<void> {
    let clock: TestClock.TestClock | undefined
    const ready = new Promise<void>((resolve) => {
      const fiber = Effect.runFork(
        Effect.gen(function* () {
          clock = yield* TestClock.testClockWith(Effect.succeed)
          resolve()
          return yield* effect
        }).pipe(Effect.provide(TestClock.layer({ warningDelay: "1 hour" })), Effect.provide(Trace.layerMemory(this.steps)))
      )
      p.fibers.set(c, {
        fiber,
        kind,
        get clock() {
          return clock as TestClock.TestClock
        }
      })
    })
    await ready
  }

  private fiberOf(p: Process, c: Call): Running {
    const r = p.fibers.get(c)
    if (r === undefined) throw new Error(`${c} has no fiber in this process`)
    return r
  }

  private attemptOf(p: Process, c: Call): Attempt {
    const a = p.attempts.get(c)
    const call = p.session.calls().get(c)
    if (a === undefined || call === undefined || a.attempt !== call.attempt || call.state !== "started") {
      throw new Error(`${c} has no attempt waiting in its tool (state ${call?.state}, attempt ${call?.attempt}, tool at ${a?.attempt})`)
    }
    return a
  }

  /**
   * Why process `p` is not quiet yet, or undefined: every write is durable, and every fiber is
   * done or parked where only a command moves it (in its tool, in a compensation, in a backoff).
   */
  private unsettled(p: Process): string | undefined {
    if (p.journal.durableHead() !== p.journal.head()) return `writes in flight (durable ${p.journal.durableHead()} < ${p.journal.head()})`
    for (const [c, r] of p.fibers) {
      if (r.fiber.pollUnsafe() !== undefined) continue
      const call = p.session.calls().get(c)
      if (call === undefined) return `${c} has a fiber but no call`
      if (call.state === "started") {
        if (p.attempts.get(c)?.attempt === call.attempt) continue
        return `${c} started attempt ${call.attempt}, its tool has not entered`
      }
      const retryable = call.outcome?.kind === "failed" && call.outcome.retryable
      if (call.state === "failed" && retryable) {
        if (this.rerunnable(c) && call.attempt < this.k.maxAttempts) continue // backoff
        // A fiber that outlives a final failure is about to retry what the model says it must not.
        throw new Error(`${c} failed (retryable) at attempt ${call.attempt}, which the model does not retry, but its fiber still runs (a retry in backoff?)`)
      }
      if (call.state === "succeeded" && r.kind === "saga" && p.compensating.has(c)) continue
      return `${c}'s fiber (${r.kind}) still runs, in state ${call.state}`
    }
    return undefined
  }

  /** Waits until the live process is quiet (see `unsettled`) and `until` holds. */
  private async settle(what: string, until: (p: Process) => string | undefined = () => undefined): Promise<void> {
    const p = this.live()
    const deadline = Date.now() + SETTLE_MS
    for (;;) {
      const why = this.unsettled(p) ?? until(p)
      if (why === undefined) return
      if (Date.now() > deadline) throw new Error(`${what} did not settle in ${SETTLE_MS} ms: ${why}\n  steps: ${this.log.join(" ")}`)
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }

  private stateOf(p: Process, c: Call): string {
    const call = p.session.calls().get(c)
    return call === undefined ? "absent" : `${call.state}@${call.attempt}`
  }

  /** Until c's state differs from `before` (a new record folded). */
  private changed(c: Call, before: string) {
    return (p: Process): string | undefined => (this.stateOf(p, c) === before ? `${c} is still ${before}` : undefined)
  }

  // -------------------------------------------------------------------------------------------
  // The actions of spec/ToolCall.tla
  // -------------------------------------------------------------------------------------------

  async Propose(c: Call): Promise<void> {
    this.log.push(`Propose(${c})`)
    const p = this.live()
    const calls = [{ callId: c, tool: toolName(c), input: { n: 1 } }]
    const atomic = this.compensatable(c)
    if (atomic) calls.push({ callId: sentinelOf(c), tool: "no_such_tool", input: { n: 0 } })
    const { entry } = await run(p.session.propose("assistant", { call: c }, calls, { atomic }))
    if (atomic) this.entries.set(c, entry.id)
    await this.settle(`Propose(${c})`)
  }

  /** Runs c: `runCall`, or for a compensatable call its atomic group (`continueSaga`). */
  private async runIt(p: Process, c: Call, registry: Executor.Registry): Promise<void> {
    const entry = this.entries.get(c)
    if (this.compensatable(c) && entry !== undefined) await this.fork(p, c, "saga", Saga.continueSaga(p.session, registry, entry))
    else await this.fork(p, c, "call", Executor.runCall(p.session, registry, c))
  }

  async Start(c: Call): Promise<void> {
    this.log.push(`Start(${c})`)
    const p = this.live()
    await this.runIt(p, c, this.registry(p))
    await this.settle(`Start(${c})`, (q) => (q.attempts.get(c)?.attempt === 1 ? undefined : `${c}'s tool has not entered`))
  }

  async Reject(c: Call, how: RejectHow): Promise<void> {
    this.log.push(`Reject(${c},${how})`)
    const p = this.live()
    const before = this.stateOf(p, c)
    await this.runIt(p, c, this.registry(p, { c, how }))
    await this.settle(`Reject(${c})`, this.changed(c, before))
  }

  async Execute(c: Call): Promise<void> {
    this.log.push(`Execute(${c})`)
    const p = this.live()
    await this.attemptOf(p, c).mailbox.send({ kind: "execute" })
    await this.settle(`Execute(${c})`)
  }

  async Succeed(c: Call): Promise<void> {
    this.log.push(`Succeed(${c})`)
    await this.outcome(c, { kind: "succeed" })
  }

  async Fail(c: Call, retryable: boolean): Promise<void> {
    this.log.push(`Fail(${c},${retryable})`)
    await this.outcome(c, { kind: "fail", retryable })
  }

  private async outcome(c: Call, command: Command): Promise<void> {
    const p = this.live()
    const before = this.stateOf(p, c)
    await this.attemptOf(p, c).mailbox.send(command)
    await this.settle(`${command.kind}(${c})`, this.changed(c, before))
  }

  /**
   * Advances c's clock by `ms`, again while c's state has not moved (its sleep may start only
   * after a first advance), then waits until `until` holds. It stops advancing as soon as c's next
   * record is folded, so that a new attempt's timeout never sees the extra time.
   */
  private async advance(c: Call, ms: number, what: string, until: (p: Process) => string | undefined): Promise<void> {
    const p = this.live()
    const { clock } = this.fiberOf(p, c)
    const before = this.stateOf(p, c)
    const deadline = Date.now() + SETTLE_MS
    while (this.stateOf(p, c) === before && Date.now() < deadline) {
      await run(clock.adjust(ms))
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await this.settle(what, until)
  }

  async TimeOut(c: Call): Promise<void> {
    this.log.push(`TimeOut(${c})`)
    const p = this.live()
    this.attemptOf(p, c)
    await this.advance(c, TIMEOUT_MS, `TimeOut(${c})`, this.changed(c, this.stateOf(p, c)))
  }

  async Retry(c: Call): Promise<void> {
    this.log.push(`Retry(${c})`)
    const p = this.live()
    const next = (p.session.calls().get(c)?.attempt ?? 0) + 1
    await this.advance(c, CAP_MS, `Retry(${c})`, (q) => (q.attempts.get(c)?.attempt === next ? undefined : `${c}'s attempt ${next} has not entered its tool`))
  }

  async Cancel(c: Call): Promise<void> {
    this.log.push(`Cancel(${c})`)
    const p = this.live()
    this.attemptOf(p, c)
    await run(Fiber.interrupt(this.fiberOf(p, c).fiber))
    await this.settle(`Cancel(${c})`)
  }

  /** Releases c's parked compensation; with none (a later process), drives its group again with `continueSaga`. */
  async Compensate(c: Call): Promise<void> {
    this.log.push(`Compensate(${c})`)
    const p = this.live()
    const running = p.fibers.get(c)
    if (running === undefined || running.fiber.pollUnsafe() !== undefined) {
      const entry = this.entries.get(c)
      if (entry === undefined) throw new Error(`${c} has no atomic group`)
      await this.fork(p, c, "saga", Saga.continueSaga(p.session, this.registry(p), entry))
    }
    await this.settle(`Compensate(${c}): to the compensation`, (q) => (q.compensating.has(c) ? undefined : `${c}'s compensation has not started`))
    const release = p.compensating.get(c) as () => void
    p.compensating.delete(c)
    release()
    await this.settle(`Compensate(${c})`, (q) => (q.session.calls().get(c)?.state === "compensated" ? undefined : `${c} is not compensated yet`))
  }

  /** The process dies: its store is closed (nothing more is written), its fibers are abandoned where they wait. */
  async Crash(): Promise<void> {
    this.log.push("Crash")
    const p = this.live()
    await run(Scope.close(p.scope, Exit.void))
    this.process = undefined
    this.crashes++
  }

  async Recover(): Promise<void> {
    this.log.push("Recover")
    await this.open()
    await this.settle("Recover")
  }

  /** Rerun, Reconcile and CloseUnknown are all `resolveInDoubt`: the tool's semantics decide which it does. */
  async ResolveInDoubt(c: Call, action: "Rerun" | "Reconcile" | "CloseUnknown"): Promise<void> {
    this.log.push(`${action}(${c})`)
    const p = this.live()
    const before = this.stateOf(p, c)
    await this.fork(p, c, "resolve", Executor.resolveInDoubt(p.session, this.registry(p), c))
    const next = Number(before.split("@")[1]) + 1
    await this.settle(
      `${action}(${c})`,
      action === "Rerun"
        ? (q) => (q.attempts.get(c)?.attempt === next ? undefined : `${c}'s attempt ${next} has not entered its tool`)
        : this.changed(c, before)
    )
  }

  // -------------------------------------------------------------------------------------------
  // The refinement mapping
  // -------------------------------------------------------------------------------------------

  /** The tool-call records of the model calls, as a reader reads them from the file. */
  async onDisk(): Promise<Record<Call, Array<ToolCallRecord>>> {
    const dir = this.dir
    const committed = await run(Effect.scoped(Effect.flatMap(Journal.openFile(dir, { writer: false }), (reader) => reader.read(1))))
    for (const { event } of committed) {
      const e = event as ToolCallEvent
      if (
        e._tag.startsWith("tool.call.") &&
        e.callId.endsWith("-sentinel") &&
        e._tag !== "tool.call.proposed" &&
        !(e._tag === "tool.call.failed" && e.attempt === 0)
      ) {
        throw new Error(`the sentinel ${e.callId} got ${e._tag}: only a rejection is possible`)
      }
    }
    return modelLog(
      committed.map((c) => c.event),
      this.k,
      this.sessionId
    )
  }

  /** The refinement mapping: implementation state → model state. */
  async abstract(): Promise<ToolCallState> {
    const log = await this.onDisk()
    const p = this.process
    const live = (c: Call) => p?.session.calls().get(c)
    const running = p === undefined ? [] : this.k.calls.filter((c) => live(c)?.state === "started")
    const executed: Record<string, number> = Object.fromEntries(this.k.calls.map((c) => [keyOf(c), 0]))
    for (const r of this.world.runs) {
      const key = modelKey(r.key, this.k, this.sessionId)
      executed[key] = (executed[key] ?? 0) + 1
    }
    const effected = running.filter((c) => this.world.runs.some((r) => r.key === Tool.idempotencyKey(this.sessionId, c) && r.attempt === live(c)?.attempt))
    return { log, running, executed, effected, crashes: this.crashes, up: p !== undefined }
  }

  /** The trace so far, for the checker: the session's steps and the world's Execute steps. */
  trace(): Array<Trace.Step> {
    return this.steps.filter((s) => s.action !== "Execute" || s.args.world === true)
  }

  /** Each model call's state in the live session's fold (the ToolCall machine), "absent" if not proposed; undefined when down. */
  liveStates(): Record<Call, CallState> | undefined {
    const p = this.process
    if (p === undefined) return undefined
    return Object.fromEntries(this.k.calls.map((c) => [c, (p.session.calls().get(c)?.state ?? "absent") as CallState]))
  }

  /** Abandons every fiber (their writes go to closed stores) and removes the folder. */
  async dispose(): Promise<void> {
    const live = this.process
    this.process = undefined
    if (live !== undefined) await run(Scope.close(live.scope, Exit.void))
    for (const p of this.processes) {
      for (const { fiber } of p.fibers.values()) fiber.interruptUnsafe()
    }
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Races under fc.scheduler
// ---------------------------------------------------------------------------------------------

/** What races the tool's result. */
export type Rival = "cancel" | "timeout"

export interface RaceSetup {
  readonly semantics: "unsafe" | "idempotent"
  /** the effect happened (Execute) before the race; otherwise it comes with the result */
  readonly executedFirst: boolean
  /** the tool's result */
  readonly result: Exclude<Command, { kind: "execute" }>
  readonly rival: Rival
  /**
   * true: the tool stops at interruption (it waits in Effect, its effect is a step of its fiber).
   * false: the tool awaits an external request (a promise it does not abort): the request may still
   * take effect when it completes, whether the fiber still listens or not.
   */
  readonly cooperative: boolean
}

/**
 * One call racing its result against a cancel or a timeout, with every step of the Effect runtime
 * dispatched through fast-check's scheduler (a MixedScheduler whose "setImmediate" is a scheduled
 * task), over a memory session (its writes complete in microtasks: nothing escapes the scheduler),
 * on a TestClock. The trace keeps the session's steps and, instead of the executor's Execute (which
 * marks when the tool may act), an Execute step when the effect really happens in the world.
 */
export class RaceRig {
  static readonly k = (semantics: RaceSetup["semantics"]): ToolCallConstants => ({
    calls: ["c1"],
    readOnlyCalls: [],
    idempotentCalls: semantics === "idempotent" ? ["c1"] : [],
    compensatableCalls: [],
    unsafeCalls: semantics === "unsafe" ? ["c1"] : [],
    hasReconcile: [],
    maxAttempts: 2,
    maxCrashes: 1
  })

  readonly steps: Array<Trace.Step> = []
  readonly world = new World()
  /** the order in which the scheduler released the two racing events */
  readonly order: Array<string> = []
  readonly store = new MemoryStore()
  readonly setup: RaceSetup
  readonly k: ToolCallConstants
  private readonly s: fc.Scheduler
  private readonly scheduler: Scheduler.Scheduler
  private session: Session.Session | undefined
  private fiber: Fiber.Fiber<unknown, unknown> | undefined
  private clock: TestClock.TestClock | undefined
  private attempt: Attempt | undefined
  /** the pending external request of the non-cooperative tool's current attempt */
  private request: ((o: { readonly call: string; readonly attempt: number }) => void) | undefined

  private constructor(s: fc.Scheduler, setup: RaceSetup) {
    this.s = s
    this.setup = setup
    this.k = RaceRig.k(setup.semantics)
    this.scheduler = new Scheduler.MixedScheduler("async", (f) => {
      let live = true
      void s.schedule(Promise.resolve("dispatch"), "effect-dispatch").then(() => {
        if (live) f()
      })
      return () => {
        live = false
      }
    })
  }

  /** A session with c1 proposed and started, its tool entered (and its effect done if `executedFirst`). */
  static async make(s: fc.Scheduler, setup: RaceSetup): Promise<RaceRig> {
    const rig = new RaceRig(s, setup)
    const trace = Trace.layerMemory(rig.steps)
    const session = await run(Session.openMemory(rig.store).pipe(Effect.provide(trace)))
    rig.session = session
    await run(session.propose("assistant", {}, [{ callId: "c1", tool: "t", input: { n: 1 } }]))
    const registry = Executor.registry([rig.tool()], allowAll)
    const clockLayer = TestClock.layer({ warningDelay: "1 hour" })
    rig.fiber = Effect.runFork(
      Effect.gen(function* () {
        rig.clock = yield* TestClock.testClockWith(Effect.succeed)
        return yield* Executor.runCall(session, registry, "c1")
      }).pipe(Effect.provide(clockLayer), Effect.provide(trace)),
      { scheduler: rig.scheduler }
    )
    await rig.until(() => (rig.entered(1) ? undefined : "the tool has not entered"))
    if (setup.executedFirst) {
      if (setup.cooperative) void (rig.attempt as Attempt).mailbox.send({ kind: "execute" })
      else rig.effect(1)
      await rig.until(() => (rig.world.runs.length === 1 ? undefined : "the effect has not happened"))
    }
    return rig
  }

  private entered(attempt: number): boolean {
    return this.setup.cooperative ? this.attempt?.attempt === attempt : this.request !== undefined && this.attemptNo === attempt
  }
  private attemptNo = 0

  /** The effect happens in the world (recorded as the Execute step the model takes). */
  private effect(attempt: number): void {
    this.world.runs.push({ key: Tool.idempotencyKey((this.session as Session.Session).id, "c1"), attempt })
    this.steps.push({ spec: "ToolCall", action: "Execute", args: { call: "c1", attempt, world: true } })
  }

  private tool(): Tool.AnyTool {
    const rig = this
    return Tool.make({
      name: "t",
      description: "races",
      input,
      output,
      semantics: this.setup.semantics,
      timeoutMs: TIMEOUT_MS,
      retry: this.setup.semantics === "idempotent" ? { attemptsMax: 2, baseMs: BASE_MS, capMs: CAP_MS } : {},
      run: (_, ctx) =>
        rig.setup.cooperative
          ? Effect.gen(function* () {
              const attempt: Attempt = { call: "c1", attempt: ctx.attempt, key: ctx.idempotencyKey, mailbox: new Mailbox() }
              rig.attempt = attempt
              for (;;) {
                const { message, ack } = yield* Effect.promise(() => attempt.mailbox.next())
                ack()
                if (message.kind === "execute") rig.effect(ctx.attempt)
                else if (message.kind === "succeed") return { call: "c1", attempt: ctx.attempt }
                else return yield* Effect.fail(new Tool.ToolFailure({ message: "told to fail", retryable: message.retryable }))
              }
            })
          : Effect.flatMap(
              Effect.promise(
                () =>
                  new Promise<{ readonly call: string; readonly attempt: number }>((resolve) => {
                    rig.attemptNo = ctx.attempt
                    rig.request = resolve
                  })
              ),
              (o) =>
                rig.setup.result.kind === "succeed"
                  ? Effect.succeed(o)
                  : Effect.fail(new Tool.ToolFailure({ message: "told to fail", retryable: rig.setup.result.kind === "fail" && rig.setup.result.retryable }))
            )
    })
  }

  /** The tool's result arrives (with its effect, unless that happened before the race). */
  private deliver(): void {
    const { result, executedFirst, cooperative } = this.setup
    if (cooperative) {
      const mailbox = (this.attempt as Attempt).mailbox
      if (!executedFirst) void mailbox.send({ kind: "execute" })
      void mailbox.send(result)
    } else {
      // The external request completes: its effect happens whether or not anyone still listens.
      if (!executedFirst) this.effect(this.attemptNo)
      ;(this.request as (o: { call: string; attempt: number }) => void)({ call: "c1", attempt: this.attemptNo })
    }
  }

  /** Runs the race: the result and the rival are released in the order the scheduler picks, then everything settles. */
  async race(): Promise<void> {
    void this.s.schedule(Promise.resolve("result"), "result").then(() => {
      this.order.push("result")
      this.deliver()
    })
    void this.s.schedule(Promise.resolve(this.setup.rival), this.setup.rival).then(() => {
      this.order.push(this.setup.rival)
      if (this.setup.rival === "cancel") (this.fiber as Fiber.Fiber<unknown, unknown>).interruptUnsafe()
      else void Effect.runPromise((this.clock as TestClock.TestClock).adjust(TIMEOUT_MS), { scheduler: this.scheduler })
    })
    await this.until(() => (this.order.length < 2 ? "the race has not run" : this.unquiet()))
  }

  /** Why the call is not at rest: its fiber ended, or waits in its tool, or in a retry's backoff. */
  private unquiet(): string | undefined {
    if ((this.fiber as Fiber.Fiber<unknown, unknown>).pollUnsafe() !== undefined) return undefined
    const call = (this.session as Session.Session).calls().get("c1")
    if (call?.state === "started" && this.entered(call.attempt)) return undefined
    if (call?.state === "failed" && call.outcome?.kind === "failed" && call.outcome.retryable) return undefined
    return `c1 is ${call?.state} at attempt ${call?.attempt}`
  }

  private async until(ready: () => string | undefined): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (ready() === undefined) return
      await this.s.waitIdle()
      await new Promise((resolve) => setImmediate(resolve))
    }
    throw new Error(`the race rig is stuck: ${ready()}; scheduler: ${JSON.stringify(this.s.report().map((r) => r.label))}`)
  }

  /** The trace for the checker: the session's steps and the world's Execute steps (not the executor's). */
  trace(): Array<Trace.Step> {
    return this.steps.filter((s) => s.action !== "Execute" || s.args.world === true)
  }

  /** The journal (read back from the store) and the world, mapped to the model's log and executed. */
  async abstract(): Promise<{ log: Record<Call, Array<ToolCallRecord>>; executed: Record<string, number> }> {
    const committed = await run(Effect.flatMap(Journal.openMemory(this.store), (j) => j.read(1)))
    const sessionId = (this.session as Session.Session).id
    return {
      log: modelLog(
        committed.map((c) => c.event),
        this.k,
        sessionId
      ),
      executed: { [keyOf("c1")]: this.world.count(Tool.idempotencyKey(sessionId, "c1")) }
    }
  }

  /** The call's state and attempt at the end of the race. */
  outcome(): string {
    const call = (this.session as Session.Session).calls().get("c1")
    return `${call?.state}@${call?.attempt}`
  }

  dispose(): void {
    this.fiber?.interruptUnsafe()
  }
}
