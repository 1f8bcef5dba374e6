/**
 * The implementation side of the Agent refinement tests: the real agent loop (`Agent.make`, a
 * forked `agent.run` / `agent.resume`) over a real file session in a temp folder, with everything
 * outside the loop in the test's hands, and the refinement mapping from what is on disk, in the
 * journal's buffer and in the world to the model's state (models/agent.ts).
 *
 * What the test controls (each a stimulus the loop waits for):
 * - the group commit: the session's journal is a gate over the file journal (`Gate`). A batch the
 *   session sequences waits in the gate (spec: `buf`) until the test flushes; then it is written
 *   (durability "os": the crash is simulated here, so an fsync would only cost time) and every
 *   waiting write completes (spec: `Flush`);
 * - the model: a port whose turn waits for the test's instruction, then plays it through a
 *   ScriptedModel (a turn with k calls, or an error);
 * - the tools: every attempt enters its tool and waits there; `start` is its effect beginning
 *   (spec: `StartCall`), `ok` / `fail` its outcome (the settling record: `SettleCall`). Entering
 *   is where a real tool's effect could begin, so it is marked too (`Entered`): the test checks
 *   that no call is run after its run's deadline;
 * - the person: `ask` waits for the test's yes or no (spec: `Answer`), given as "test", the approver
 *   the runs' capability names for the "unsafe" tool (a real token, `harnessAuthority`);
 * - time: one TestClock per process, set to the harness's time at each start (deadlines come
 *   from the journal, so time goes on across crashes): a stall (the watchdog), the deadline of the
 *   active run (spec: `Exhaust`), or a tick that crosses no deadline;
 * - the process: a crash marks the gate dead (what it holds is lost, and nothing more is written),
 *   closes the file journal and abandons every fiber where it waits (never interrupted: a dead
 *   process runs no finalizer); a restart opens the folder again (`takeover`), replays it, and
 *   forks `agent.resume`.
 *
 * Between two stimuli the loop runs by itself until every fiber waits for one of them (`Quiet`:
 * every fiber runs on a scheduler that counts its pending dispatches). What the loop did in between
 * is read from its trace (Trace steps of the spec "Agent", and ToolCall `Start`: when a call's
 * started record was written) and from markers the harness adds for its own stimuli (spec
 * "Harness": Flush, StartCall, Exhaust, Crash, Restart, Entered), in one ordered list: the model
 * path of the command. The refinement mapping (`abstract`) does not read the trace.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Clock, Context, Effect, Exit, type Fiber, Layer, Scheduler, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type AgentConstants, type AgentRecord, type AgentState, type Call, callId, type Run } from "../../models/agent.ts"
import * as Agent from "../../src/agent/Agent.ts"
import { finalStates } from "../../src/agent/AgentMachine.ts"
import type { Authority } from "../../src/authority/Authority.ts"
import * as Authorities from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import type { Event } from "../../src/Event.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { JournalIOError, StaleWriter } from "../../src/journal/JournalError.ts"
import { Limits } from "../../src/Limits.ts"
import type { ModelShape } from "../../src/model/Model.ts"
import { ModelContextTooLong } from "../../src/model/ModelError.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import * as Trace from "../../src/trace/Trace.ts"

/** The runs' wall-clock budget. */
export const BUDGET_MS = 60_000
/** The model stall watchdog. */
export const STALL_MS = 5_000
/** A tick: time passing within the budget. */
export const TICK_MS = 1_000
/** Tools never time out here (the harness decides every outcome): the longest timeout allowed. */
const TOOL_TIMEOUT_MS = Limits.toolTimeoutMsMax
/**
 * A person has longer to decide than a run lasts: a request is withdrawn at its run's deadline
 * (Exhaust) before it could expire, so time passing within the runs' deadlines (Tick) changes nothing.
 */
const APPROVAL_TIMEOUT_MS = 10 * BUDGET_MS

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/**
 * Where the sessions' folders go: a memory file system when there is one (Linux's /dev/shm). The
 * crash is simulated above the file journal (the gate), so the disk's fsync latency would only cost
 * time: creating a session folder fsyncs its directory and first segment (~10 ms on a disk).
 */
const tmpRoot = process.env.KEEL_REFINEMENT_TMP ?? (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir())

/** What a proposed call is: its tool (needs approval or not), or arguments the loop must reject. */
export type CallKind = "idem" | "unsafe" | "malformed" | "unknown"
export const callKinds: ReadonlyArray<CallKind> = ["idem", "unsafe", "malformed", "unknown"]

// ---------------------------------------------------------------------------------------------
// Names: implementation ids ↔ model ids
// ---------------------------------------------------------------------------------------------

/** `run1` ↔ `r1` (the loop names runs `run${n}`, n = runs in the session + 1). */
export const modelRun = (runId: string): Run => runId.replace(/^run/, "r")
export const implRun = (r: Run): string => r.replace(/^r/, "run")
const callPattern = /^(run\d+)_t(\d+)_c(\d+)$/
/** `run1_t2_c1` ↔ `r1.2.1` (the loop names calls `${runId}_t${turn}_c${i}`). */
export function modelCall(id: string): Call | undefined {
  const m = callPattern.exec(id)
  return m === null ? undefined : callId(modelRun(m[1] as string), Number(m[2]), Number(m[3]))
}
export const implCall = (c: Call): string => {
  const [r, n, i] = c.split(".")
  return `${implRun(r as string)}_t${n}_c${i}`
}

/**
 * A tool-call record that settles its call: an outcome no retry follows (AgentRuns.isSettled), a
 * denial by the authority, a rejection (a person's no, or the runtime's withdrawal) or an expiry.
 * The other authority records (authorized, awaitingApproval, approved, decisionIgnored) are no
 * agent action: they neither settle a call nor start it (its start is its tool.call.started).
 */
const settles = (e: Event): e is Event & { readonly callId: string } =>
  e._tag === "tool.call.succeeded" ||
  e._tag === "tool.call.cancelled" ||
  e._tag === "tool.call.timedOut" ||
  e._tag === "tool.call.denied" ||
  e._tag === "tool.call.rejected" ||
  e._tag === "tool.call.expired" ||
  (e._tag === "tool.call.failed" && !e.retryable)

/**
 * The model records of journal events, in order: the agent.* records, and for each call of a run
 * the first record that settles it. `settled` (implementation call ids) carries over from the
 * durable part to the buffered one.
 */
export function agentRecords(events: ReadonlyArray<Event>, settled: Set<string>): Array<AgentRecord> {
  const out: Array<AgentRecord> = []
  for (const e of events) {
    switch (e._tag) {
      case "agent.run.started":
        out.push({ type: "started", run: modelRun(e.runId) })
        break
      case "agent.turn.recorded":
        out.push({ type: "turn", run: modelRun(e.runId), turn: e.turn, calls: e.callIds.length })
        break
      case "agent.run.waiting":
      case "agent.run.answered": {
        const c = modelCall(e.forCall) as Call
        out.push({ type: e._tag === "agent.run.waiting" ? "waiting" : "answered", run: modelRun(e.runId), call: c })
        break
      }
      case "agent.run.done":
      case "agent.run.cancelled":
      case "agent.run.failed":
      case "agent.run.timedOut":
        out.push({ type: e._tag.slice("agent.run.".length) as "done", run: modelRun(e.runId) })
        break
      default: {
        if (!settles(e)) break
        const c = modelCall(e.callId)
        if (c === undefined || settled.has(e.callId)) break
        settled.add(e.callId)
        out.push({ type: "settled", run: c.split(".")[0] as Run, call: c })
      }
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Quiescence, the journal gate
// ---------------------------------------------------------------------------------------------

/**
 * WebCrypto work in flight (capability verification, the arguments' hash an approval binds to): a
 * fiber waiting on it waits on nothing the test controls, so the loop is not quiet yet. Counted by
 * wrapping the methods of `crypto.subtle` the authority uses (they behave as before).
 */
let cryptoInFlight = 0
{
  const subtle = globalThis.crypto.subtle as unknown as Record<string, (...args: Array<unknown>) => Promise<unknown>>
  for (const name of ["digest", "verify", "sign", "importKey", "exportKey"]) {
    const method = subtle[name]
    if (method === undefined || (method as { counted?: boolean }).counted === true) continue
    const counted = (...args: Array<unknown>) => {
      cryptoInFlight++
      return method.apply(globalThis.crypto.subtle, args).finally(() => {
        cryptoInFlight--
      })
    }
    ;(counted as { counted?: boolean }).counted = true
    subtle[name] = counted
  }
}

/** The capability the runs' calls run under: every tool, and an approval by "test" (the harness's person) for "unsafe". */
const harnessAuthority: Promise<Authority> = (async () => {
  const { authority } = await run(Authorities.issue([Caveat.needsApproval(["test"], { tools: ["unsafe"] })], { approvalTimeoutMs: APPROVAL_TIMEOUT_MS }))
  // Verified once here (the verification is cached by token): the loop's checks then touch no crypto.
  await run(authority.check({ callId: "warm-up", tool: "idem", input: { n: 0 } }, { now: 0, usesOf: () => 0 }))
  return authority
})()

/** A scheduler that counts its pending dispatches: zero, twice in a row, means every fiber waits on something outside the runtime. */
export class Quiet {
  pending = 0
  readonly scheduler = new Scheduler.MixedScheduler("async", (f) => {
    this.pending++
    let live = true
    const handle = setImmediate(() => {
      if (!live) return
      live = false
      this.pending--
      f()
    })
    return () => {
      if (!live) return
      live = false
      this.pending--
      clearImmediate(handle)
    }
  })

  async settle(what: string): Promise<void> {
    let idle = 0
    for (let i = 0; i < 200_000; i++) {
      await new Promise((resolve) => setImmediate(resolve))
      if (this.pending > 0 || cryptoInFlight > 0) idle = 0
      else if (++idle >= 2) return
    }
    throw new Error(`${what} did not settle`)
  }
}

interface Held {
  readonly events: ReadonlyArray<Event>
  readonly release: () => void
}

/**
 * A journal over the file journal whose writes wait for the test: `sequence` checks the fence and
 * holds the batch (the session folds it at once, as with the real group commit), `flush` writes
 * every held batch in order and completes their `durable`. Dead (a crash): what it holds is lost
 * and nothing more is accepted. During the open (`auto`) batches go straight through.
 */
export class Gate {
  readonly held: Array<Held> = []
  auto = true
  dead = false
  readonly journal: Journal.JournalShape
  readonly inner: Journal.JournalShape

  constructor(inner: Journal.JournalShape) {
    this.inner = inner
    const heldEvents = () => this.held.reduce((n, b) => n + b.events.length, 0)
    const head = () => inner.head() + heldEvents()
    const sequence: Journal.JournalShape["sequence"] = (events, fence) => {
      if (this.dead) return new JournalIOError({ path: inner.path, operation: "append", reason: "the process crashed" })
      if (this.auto && this.held.length === 0) return inner.sequence(events, fence)
      if (fence.epoch !== inner.epoch() || fence.head !== head()) {
        return new StaleWriter({ path: inner.path, expectedEpoch: fence.epoch, actualEpoch: inner.epoch(), expectedHead: fence.head, actualHead: head() })
      }
      let release = () => {}
      const written = new Promise<void>((resolve) => {
        release = resolve
      })
      this.held.push({ events, release })
      const result: Journal.Fence = { epoch: inner.epoch(), head: head() }
      // Never completes if the process dies first (the batch is lost with it).
      const durable = Effect.callback<Journal.Fence>((resume) => {
        void written.then(() => resume(Effect.succeed(result)))
      })
      return { fence: result, durable }
    }
    this.journal = {
      path: inner.path,
      head,
      durableHead: () => inner.durableHead(),
      epoch: () => inner.epoch(),
      recovery: inner.recovery,
      append: (events, fence) =>
        Effect.suspend(() => {
          const s = sequence(events, fence)
          return "durable" in s ? s.durable : Effect.fail(s)
        }),
      sequence,
      read: inner.read,
      readMany: inner.readMany,
      acquireLease: (owner, options) => (this.held.length === 0 ? inner.acquireLease(owner, options) : Effect.die(new Error("a lease with writes held"))),
      releaseLease: inner.releaseLease,
      // A checkpoint covers durable records only: none while writes are held.
      checkpoint: (data) => (this.held.length === 0 ? inner.checkpoint(data) : Effect.void)
    }
  }

  get heldEvents(): ReadonlyArray<Event> {
    return this.held.flatMap((b) => b.events)
  }

  /** The group commit: every held batch written in order (durable), then their writers resume. */
  async flush(): Promise<void> {
    const batches = this.held.splice(0)
    const writes = batches.map((b) => {
      const s = this.inner.sequence(b.events, { epoch: this.inner.epoch(), head: this.inner.head() })
      if (!("durable" in s)) throw new Error(`the file journal refused a batch the session sequenced: ${s._tag}`)
      return run(s.durable)
    })
    await Promise.all(writes)
    for (const b of batches) b.release()
  }
}

// ---------------------------------------------------------------------------------------------
// A process
// ---------------------------------------------------------------------------------------------

type ToolCommand = "start" | "ok" | "fail"
interface ToolSlot {
  readonly callId: string
  readonly attempt: number
  stage: "gate" | "started"
  send: (command: ToolCommand) => void
}
type Instruction = { readonly kind: "turn"; readonly kinds: ReadonlyArray<CallKind> } | { readonly kind: "error" }

class Process {
  readonly n: number
  readonly scope: Scope.Closeable
  readonly gate: Gate
  readonly context: Context.Context<never>
  readonly clock: TestClock.TestClock
  session!: Session.Session
  agent!: Agent.Agent
  dead = false
  /** the model request in flight: its run and turn, and how to answer it */
  request: { readonly r: Run; readonly turn: number; readonly answer: (i: Instruction) => void } | undefined
  /** the tools' attempts waiting for the test, by implementation call id */
  readonly tools = new Map<string, ToolSlot>()
  /** the person being asked */
  asking: { readonly call: string; readonly answer: (yes: boolean) => void } | undefined
  /** fibers running `run` / `resume`, by run id; `driving` once the loop runs it, `interrupted` once cancelled */
  readonly fibers = new Map<string, { fiber: Fiber.Fiber<unknown, unknown> | undefined; driving: boolean; interrupted: boolean }>()
  constructor(n: number, scope: Scope.Closeable, gate: Gate, context: Context.Context<never>, clock: TestClock.TestClock) {
    this.n = n
    this.scope = scope
    this.gate = gate
    this.context = context
    this.clock = clock
  }
}

/** What the implementation waits for now (commands are offered only where the implementation can take them). */
export interface Parked {
  readonly up: boolean
  /** batches held by the gate */
  readonly held: number
  /** the model request in flight */
  readonly request: { readonly r: Run; readonly turn: number } | undefined
  /** the tools waiting, by model call: at their start, or started */
  readonly tools: ReadonlyMap<Call, "gate" | "started">
  /** the call a person is asked about */
  readonly ask: Call | undefined
  /** the run `agent.run` would start (the loop names it run<size + 1>) */
  readonly nextRun: Run | undefined
  /** a run is unfinished in the live fold (agent.run says AgentBusy) */
  readonly busy: boolean
  /** the run whose loop runs in a fiber that can be interrupted */
  readonly driving: Run | undefined
  /** the deadline of every unfinished run of the live fold (buffered ones included), and the time */
  readonly deadlines: ReadonlyMap<Run, number>
  readonly now: number
}

const input = Schema.Struct({ n: Schema.Finite })
const output = Schema.Struct({ ok: Schema.Boolean })

export class AgentImpl {
  readonly dir: string
  readonly k: AgentConstants
  readonly quiet = new Quiet()
  /** every Agent step and ToolCall Start of every process (trace), and the harness's markers, in order */
  readonly steps: Array<Trace.Step> = []
  /** the processes' own trace (all specs), for the trace checker */
  readonly trace: Array<Trace.Step> = []
  /** every command, for failure messages */
  readonly log: Array<string> = []
  /** calls whose effect began (a fact of the world: survives crashes) */
  readonly world = new Set<Call>()
  /** runs whose deadline passed (the harness's clock moved past it) */
  readonly exhausted = new Set<Run>()
  /** the time: the live process's clock, or where the next one starts */
  private now = 0
  private crashes = 0
  private proc: Process | undefined
  private readonly procs: Array<Process> = []
  /** the start time of runs, from the durable journal (deadlines while down) */
  private readonly startedAt = new Map<Run, number>()
  private stepsRead = 0

  private readonly authority: Authority

  private constructor(dir: string, k: AgentConstants, authority: Authority) {
    this.dir = dir
    this.k = k
    this.authority = authority
  }

  static async make(k: AgentConstants): Promise<AgentImpl> {
    const impl = new AgentImpl(fs.mkdtempSync(path.join(tmpRoot, "keel-agent-refinement-")), k, await harnessAuthority)
    await impl.open()
    return impl
  }

  private runIn<A, E>(p: Process, effect: Effect.Effect<A, E>): Promise<A> {
    return Effect.runPromise(Effect.provideContext(effect, p.context), { scheduler: this.quiet.scheduler })
  }

  private fork(p: Process, runId: string, effect: Effect.Effect<unknown, unknown>): void {
    // Registered first: the fiber may start its loop (and say runStarted) before runFork returns.
    const entry: { fiber: Fiber.Fiber<unknown, unknown> | undefined; driving: boolean; interrupted: boolean } = {
      fiber: undefined,
      driving: false,
      interrupted: false
    }
    p.fibers.set(runId, entry)
    entry.fiber = Effect.runFork(Effect.provideContext(effect, p.context), { scheduler: this.quiet.scheduler })
  }

  // -------------------------------------------------------------------------------------------
  // Opening a process: the journal, the session, the agent with its model, tools and person
  // -------------------------------------------------------------------------------------------

  private async open(): Promise<Process> {
    const n = this.procs.length + 1
    const scope = await run(Scope.make())
    const owner = `process-${n}`
    const inner = await run(Journal.openFile(this.dir, { owner, takeover: n > 1, durability: "os" }).pipe(Scope.provide(scope)))
    const gate = new Gate(inner)
    let proc: Process | undefined
    const traceLayer = Layer.succeed(Trace.Trace, {
      emit: (step: Trace.Step) => {
        if (proc?.dead === true) return
        this.trace.push(step)
        if (step.spec === "Agent" || (step.spec === "ToolCall" && step.action === "Start")) this.steps.push(step)
      }
    })
    const context = (await Effect.runPromise(Layer.build(Layer.merge(TestClock.layer({ warningDelay: "1 hour" }), traceLayer)).pipe(Scope.provide(scope)), {
      scheduler: this.quiet.scheduler
    })) as Context.Context<never>
    const clock = Context.get(context as Context.Context<Clock.Clock>, Clock.Clock) as TestClock.TestClock
    const p = new Process(n, scope, gate, context, clock)
    proc = p
    await this.runIn(p, clock.setTime(this.now))
    p.session = await this.runIn(p, Session.open(gate.journal, { owner, takeover: n > 1 }))
    gate.auto = false
    p.agent = await run(Agent.make(p.session, this.options(p)))
    p.agent.subscribe((u) => {
      if (u._tag === "runStarted") {
        const f = p.fibers.get(u.runId)
        if (f !== undefined) f.driving = true
      }
    })
    this.procs.push(p)
    this.proc = p
    return p
  }

  private options(p: Process): Agent.AgentOptions {
    let next: ScriptedModel.ScriptedTurn = { text: "" }
    const scripted = ScriptedModel.make(() => next)
    const steps = this.steps
    const model: ModelShape = {
      name: "harness",
      turn: (request, onProgress) =>
        Effect.callback<Instruction>((resume) => {
          // The request is for the active run's next turn, as the live fold has it (the trace is not read here).
          const active = p.session.runs().active()
          p.request = { r: modelRun(active?.runId ?? "?"), turn: (active?.turns ?? -1) + 1, answer: (i) => resume(Effect.succeed(i)) }
          return Effect.sync(() => {
            p.request = undefined
          })
        }).pipe(
          Effect.flatMap((instruction) => {
            p.request = undefined
            next =
              instruction.kind === "error"
                ? { error: new ModelContextTooLong({ message: "told to fail" }) }
                : { text: `${instruction.kinds.length} calls`, toolCalls: instruction.kinds.map(toolCall) }
            return scripted.turn(request, onProgress)
          })
        )
    }
    const tool = (name: string, semantics: Tool.Semantics) =>
      Tool.make({
        name,
        description: `${semantics}: waits for the test`,
        input,
        output,
        semantics,
        timeoutMs: TOOL_TIMEOUT_MS,
        retry: semantics === "idempotent" ? { attemptsMax: 2, baseMs: 10, capMs: 40 } : {},
        run: (_, ctx) =>
          Effect.callback<ToolCommand>((resume) => {
            const slot: ToolSlot = { callId: ctx.callId, attempt: ctx.attempt, stage: "gate", send: () => {} }
            slot.send = (command) => {
              if (command === "start") slot.stage = "started"
              else p.tools.delete(ctx.callId)
              resume(Effect.succeed(command))
            }
            p.tools.set(ctx.callId, slot)
            // The executor ran the tool: from here a real tool's effect may begin.
            if (!p.dead) steps.push({ spec: "Harness", action: "Entered", args: { call: modelCall(ctx.callId) ?? ctx.callId, attempt: ctx.attempt } })
            return Effect.sync(() => {
              p.tools.delete(ctx.callId)
            })
          }).pipe(
            // After `start` the tool waits again, for its outcome.
            Effect.flatMap((command) =>
              command === "start"
                ? Effect.callback<ToolCommand>((resume) => {
                    const slot = p.tools.get(ctx.callId)
                    if (slot !== undefined)
                      slot.send = (c) => {
                        p.tools.delete(ctx.callId)
                        resume(Effect.succeed(c))
                      }
                    return Effect.sync(() => {
                      p.tools.delete(ctx.callId)
                    })
                  })
                : Effect.succeed(command)
            ),
            Effect.flatMap((command) =>
              command === "ok" ? Effect.succeed({ ok: true }) : Effect.fail(new Tool.ToolFailure({ message: "told to fail", retryable: false }))
            )
          )
      })
    return {
      authority: this.authority,
      model,
      tools: [tool("idem", "idempotent"), tool("unsafe", "unsafe")],
      ask: (question) =>
        Effect.callback<Agent.Answer>((resume) => {
          p.asking = { call: question.callId, answer: (yes) => resume(Effect.succeed({ approve: yes, by: "test" })) }
          return Effect.sync(() => {
            p.asking = undefined
          })
        }),
      budget: { turnsMax: this.k.turnsMax, wallClockMsMax: BUDGET_MS },
      heartbeatMs: 1_000_000_000,
      modelStallMs: STALL_MS,
      modelRetry: { attemptsMax: 1 }
    }
  }

  private live(): Process {
    if (this.proc === undefined) throw new Error("no process is up")
    return this.proc
  }

  private mark(action: string, args: Trace.Step["args"] = {}): void {
    this.steps.push({ spec: "Harness", action, args })
  }

  private async settle(what: string): Promise<void> {
    await this.quiet.settle(`${what} (steps: ${this.log.join(" ")})`)
  }

  /** The steps taken since the last call: the model path of the last command. */
  takeSteps(): Array<Trace.Step> {
    const out = this.steps.slice(this.stepsRead)
    this.stepsRead = this.steps.length
    return out
  }

  // -------------------------------------------------------------------------------------------
  // Stimuli
  // -------------------------------------------------------------------------------------------

  /** agent.run(prompt), forked; with a run unfinished it fails AgentBusy at once. Returns the error's tag, if any. */
  async StartRun(): Promise<string | undefined> {
    this.log.push("StartRun")
    const p = this.live()
    const runId = `run${p.session.runs().size + 1}`
    let failed: string | undefined
    this.fork(
      p,
      runId,
      p.agent.run(`task ${this.log.length}`).pipe(
        Effect.tapError((e) =>
          Effect.sync(() => {
            failed = e._tag
          })
        )
      )
    )
    await this.settle("StartRun")
    if (failed !== undefined) p.fibers.delete(runId)
    return failed
  }

  async Flush(): Promise<void> {
    this.log.push("Flush")
    const p = this.live()
    this.mark("Flush")
    await p.gate.flush()
    await this.settle("Flush")
  }

  private request(): NonNullable<Process["request"]> {
    const q = this.live().request
    if (q === undefined) throw new Error("no model request is in flight")
    return q
  }

  /** The model answers with one call per kind (none: the answer). */
  async Turn(kinds: ReadonlyArray<CallKind>): Promise<void> {
    this.log.push(`Turn(${kinds.join(",")})`)
    this.request().answer({ kind: "turn", kinds })
    await this.settle("Turn")
  }

  async ModelError(): Promise<void> {
    this.log.push("ModelError")
    this.request().answer({ kind: "error" })
    await this.settle("ModelError")
  }

  private async advance(ms: number, what: string): Promise<void> {
    const p = this.live()
    await this.runIn(p, p.clock.adjust(ms))
    this.now = p.clock.currentTimeMillisUnsafe()
    await this.settle(what)
  }

  /** The model shows no progress: the watchdog's interval passes. */
  async Stall(): Promise<void> {
    this.log.push("Stall")
    this.request()
    await this.advance(STALL_MS, "Stall")
  }

  /** Time passes within every deadline (nothing may change). */
  async Tick(): Promise<void> {
    this.log.push("Tick")
    await this.advance(TICK_MS, "Tick")
  }

  private slot(c: Call): ToolSlot {
    const slot = this.live().tools.get(implCall(c))
    if (slot === undefined) throw new Error(`${c}'s tool is not waiting`)
    return slot
  }

  /** The tool's effect begins (spec: StartCall). */
  async StartCall(c: Call): Promise<void> {
    this.log.push(`StartCall(${c})`)
    const slot = this.slot(c)
    this.mark("StartCall", { call: c })
    this.world.add(c)
    slot.send("start")
    await this.settle("StartCall")
  }

  /** The tool returns (ok) or fails, not retryably. */
  async FinishCall(c: Call, ok: boolean): Promise<void> {
    this.log.push(`FinishCall(${c},${ok})`)
    this.slot(c).send(ok ? "ok" : "fail")
    await this.settle("FinishCall")
  }

  async Answer(yes: boolean): Promise<void> {
    this.log.push(`Answer(${yes})`)
    const asking = this.live().asking
    if (asking === undefined) throw new Error("nobody is asked")
    asking.answer(yes)
    await this.settle("Answer")
  }

  /** Interrupts the fiber running the active run's loop (without waiting: its cancel writes, and waits for flushes). */
  async Cancel(): Promise<void> {
    this.log.push("Cancel")
    const p = this.live()
    const active = p.session.runs().active()
    const f = active === undefined ? undefined : p.fibers.get(active.runId)
    if (f === undefined || !f.driving || f.interrupted) throw new Error("no loop to interrupt")
    f.interrupted = true
    f.fiber?.interruptUnsafe()
    await this.settle("Cancel")
  }

  /** Time passes up to the deadline of run r (while down, the next process starts then). */
  async Exhaust(r: Run): Promise<void> {
    this.log.push(`Exhaust(${r})`)
    const at = this.startedAt.get(r) ?? this.live().session.runs().get(implRun(r))?.startedAt
    if (at === undefined) throw new Error(`${r} has no start time`)
    this.mark("Exhaust", { run: r })
    this.exhausted.add(r)
    const deadline = at + BUDGET_MS
    if (this.proc === undefined) this.now = Math.max(this.now, deadline)
    else await this.advance(Math.max(0, deadline - this.now), "Exhaust")
  }

  /** The process dies: what the gate holds is lost, the journal is closed, every fiber is abandoned where it waits. */
  async Crash(): Promise<void> {
    this.log.push("Crash")
    const p = this.live()
    this.mark("Crash")
    p.dead = true
    p.gate.dead = true
    p.gate.held.length = 0
    p.request = undefined
    p.asking = undefined
    p.tools.clear()
    await run(Scope.close(p.scope, Exit.void))
    this.proc = undefined
    this.crashes++
  }

  /** A new process: the folder opened again (replay, calls in doubt), then agent.resume. */
  async Restart(): Promise<void> {
    this.log.push("Restart")
    this.mark("Restart")
    const p = await this.open()
    const active = p.session.runs().active()
    if (active !== undefined) this.fork(p, active.runId, p.agent.resume)
    await this.settle("Restart")
  }

  // -------------------------------------------------------------------------------------------
  // Observation and the refinement mapping
  // -------------------------------------------------------------------------------------------

  /** Durable events, as a reader reads them from the folder. */
  private async durable(): Promise<ReadonlyArray<Event>> {
    const committed = await run(Effect.scoped(Effect.flatMap(Journal.openFile(this.dir, { writer: false }), (reader) => reader.read(1))))
    return committed.map((c) => c.event)
  }

  /** The refinement mapping: implementation state → model state. */
  async abstract(): Promise<AgentState> {
    const durable = await this.durable()
    for (const e of durable) if (e._tag === "agent.run.started") this.startedAt.set(modelRun(e.runId), e.time)
    const settled = new Set<string>()
    const log = agentRecords(durable, settled)
    const durablySettled = new Set([...settled].map((id) => modelCall(id) as Call))
    const buf = agentRecords(this.proc?.gate.heldEvents ?? [], settled)
    const q = this.proc?.request
    return {
      log,
      buf,
      open: [...this.world].filter((c) => !durablySettled.has(c)).sort(),
      asked: q === undefined ? [] : [{ run: q.r, turn: q.turn }],
      overBudget: [...this.exhausted].sort(),
      crashes: this.crashes,
      up: this.proc !== undefined
    }
  }

  /** What the implementation waits for. */
  parked(): Parked {
    const p = this.proc
    if (p === undefined) {
      return {
        up: false,
        held: 0,
        request: undefined,
        tools: new Map(),
        ask: undefined,
        nextRun: undefined,
        busy: false,
        driving: undefined,
        deadlines: new Map(),
        now: this.now
      }
    }
    const runs = p.session.runs()
    const active = runs.active()
    const f = active === undefined ? undefined : p.fibers.get(active.runId)
    const deadlines = new Map<Run, number>()
    for (const r of runs.all()) if (!finalStates.has(r.state)) deadlines.set(modelRun(r.runId), r.startedAt + r.budget.wallClockMsMax)
    const nextRun = modelRun(`run${runs.size + 1}`)
    return {
      up: true,
      held: p.gate.held.length,
      request: p.request === undefined ? undefined : { r: p.request.r, turn: p.request.turn },
      tools: new Map([...p.tools.values()].map((s) => [modelCall(s.callId) as Call, s.stage])),
      ask: p.asking === undefined ? undefined : modelCall(p.asking.call),
      nextRun: this.k.runs.includes(nextRun) ? nextRun : undefined,
      busy: active !== undefined,
      driving: active !== undefined && f?.driving === true && !f.interrupted && f.fiber?.pollUnsafe() === undefined ? modelRun(active.runId) : undefined,
      deadlines,
      now: this.now
    }
  }

  /** The live session's fold of every run it knows (the Agent machine through AgentRuns), as model folds; undefined while down. */
  liveRuns(): Map<Run, { status: string; turns: number; pending: Array<Call>; awaiting: Call }> | undefined {
    const p = this.proc
    if (p === undefined) return undefined
    return new Map(
      p.session
        .runs()
        .all()
        .map((r) => [
          modelRun(r.runId),
          {
            status: r.state,
            turns: r.turns,
            pending: r.pending.map((c) => modelCall(c) as Call).sort(),
            awaiting: r.awaiting === "" ? "" : (modelCall(r.awaiting) as Call)
          }
        ])
    )
  }

  /** The processes' trace (every spec), without the harness's markers: what the trace checker reads. */
  runtimeTrace(): Array<Trace.Step> {
    return [...this.trace]
  }

  /** Abandons everything and removes the folder. */
  async dispose(): Promise<void> {
    const p = this.proc
    this.proc = undefined
    if (p !== undefined) {
      p.dead = true
      p.gate.dead = true
      await run(Scope.close(p.scope, Exit.void))
    }
    for (const q of this.procs) for (const { fiber } of q.fibers.values()) fiber?.interruptUnsafe()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/** The call the scripted model proposes for a kind (its input, position-dependent). */
function toolCall(kind: CallKind, i: number): ScriptedModel.ScriptedToolCall {
  switch (kind) {
    case "idem":
      return { name: "idem", input: { n: i } }
    case "unsafe":
      return { name: "unsafe", input: { n: i } }
    case "malformed":
      return { name: "idem", malformed: '{"n": ' }
    case "unknown":
      return { name: "no_such_tool", input: { n: i } }
  }
}
