/**
 * The implementation side of the Authority refinement tests: the real executor, authority and
 * approval gate over a real file session in a temp folder, driven by the actions of
 * spec/Authority.tla, and the refinement mapping from what is on disk (the journal), in the tokens
 * and on the revocation list to the model's state (models/authority.ts).
 *
 * - Calls: model call `c` is implementation call id `c`, a tool and its arguments ({@link CALLS}).
 *   All are proposed in one entry when the session is created (the model's Init proposes them).
 * - Capabilities: `root` is a real token issued once per test file ({@link ROOT_CAVEATS}: two tools,
 *   a path caveat, an approval for `deploy`, an expiry, two uses); `child` is `Capability.attenuate`
 *   of it with caveats the test picks. A call presents a node: `runCall` with a registry whose
 *   authority is `Authority.fromCapability(token of that node)`, revocation through its `revoked`
 *   option (block ids: the root's, the child's own).
 * - The trace: the session's steps, and the environment's (Tick, Attenuate, Revoke, Crash) pushed
 *   by the harness as it takes them.
 * - Time: one tick is {@link TICK_MS}. Each process runs every fiber on a TestClock of its own,
 *   set to the current time when it opens; Tick advances the live one (and the harness's time, also
 *   while down). The clock counts the fibers asleep on it, so the harness knows when every waiter
 *   sits on its deadline timer.
 * - A process is a writer: the journal opened with `takeover` in a Scope of its own and the session
 *   over it (no finalizer that suspends). Crash closes that scope (nothing more reaches the file)
 *   and abandons the process's fibers where they wait: their clock never moves again. Restart opens
 *   a new process and runs `Executor.continueApproval` for every call still awaiting approval (and
 *   `startApproved` for one approved or authorized but not started).
 * - After every command the harness waits until the process is quiet: every write durable, every
 *   call's fiber done or asleep on its deadline, the live calls in the states the test expects.
 *
 * The mapping (`abstract`): `log` from the journal read back from disk (see `modelRecord`); `caps`
 * from the tokens (`capRecordOf`: what their blocks grant together); `revoked` from the revocation
 * list; `now` from the live clock (the harness's time while down); `checked` computed when an
 * authorized record first appears, from the state before it (a history variable); `crashes`, `up`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Clock, Context, Effect, Exit, type Fiber, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  type AuthorityConstants,
  type AuthorityRecord,
  type AuthorityState,
  type Call,
  type CallStatus,
  type Capability as CapName,
  type CapRecord,
  type Check,
  checkOf
} from "../../models/authority.ts"
import * as Approvals from "../../src/authority/Approvals.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Capability from "../../src/authority/Capability.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import type { Event, ToolCallEvent } from "../../src/Event.ts"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import type { ToolCallState } from "../../src/toolcall/ToolCallMachine.ts"
import * as Trace from "../../src/trace/Trace.ts"
import { type CallSpec, capRecordOf, modelHash } from "../trace/authority.checker.ts"

export const TICK_MS = 1000
/** How long a command may take to settle before the harness gives up. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 5000)
/** "os" (default: no fsync, the tests cut no file) or "fsync". */
const durability: Journal.OpenOptions["durability"] = process.env.DURABILITY === "fsync" ? "fsync" : "os"

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/**
 * The calls: c1 reads under the root's path (granted), c2 deploys (granted with an approval), c3
 * reads outside the root's path (an argument caveat fails: never granted).
 */
export const CALLS: Readonly<Record<Call, CallSpec>> = {
  c1: { tool: "read", input: { path: "work/a.txt", n: 1 } },
  c2: { tool: "deploy", input: { path: "work/ops/b.txt", n: 2 } },
  c3: { tool: "read", input: { path: "etc/c.txt", n: 3 } }
}

export const APPROVERS = ["alice", "bob"] as const

/** The root capability: what the runtime issues. */
export const ROOT_CAVEATS: ReadonlyArray<Caveat.Caveat> = [
  Caveat.tools(["deploy", "read"]),
  Caveat.pathUnder("path", "work"),
  Caveat.needsApproval([...APPROVERS], { tools: ["deploy"] }),
  Caveat.expires(4 * TICK_MS),
  Caveat.uses(2)
]

/**
 * The constants of the refinement runs (larger than MCAuthority.cfg: three calls, two approvers and
 * one principal who may not approve, a deadline two ticks away, a clock of 0..6, two crashes). They
 * are what {@link ROOT_CAVEATS} grant; the test checks that `constantsFromToken` reads the same.
 */
export const K: AuthorityConstants = {
  calls: ["c1", "c2", "c3"],
  capabilities: ["child", "root"],
  root: "root",
  rootGrants: ["c1", "c2"],
  rootApproval: ["c2"],
  rootExpiry: 4,
  rootUses: 2,
  maxUses: 3,
  principals: ["alice", "bob", "mallory"],
  approvers: [...APPROVERS],
  approvalTimeout: 2,
  maxTime: 6,
  maxCrashes: 2
}

const Input = Schema.Struct({ path: Schema.String, n: Schema.Finite })
const Output = Schema.Struct({ ok: Schema.Boolean })

/** The tools: each call's tool succeeds at once (what follows `started` is ToolCall.tla's); `wipe` is registered and never granted. */
export const TOOLS: ReadonlyArray<Tool.AnyTool> = ["read", "deploy", "wipe"].map((name) =>
  Tool.make({
    name,
    description: `the ${name} tool of the authority refinement`,
    input: Input,
    output: Output,
    semantics: "unsafe",
    timeoutMs: 60 * TICK_MS,
    run: () => Effect.succeed({ ok: true })
  })
)

/** The key material, shared by every run of a test file (a token is data: runs differ by journal and revocation list). */
export interface Material {
  readonly keyring: Capability.Keyring
  readonly root: string
  readonly rootRecord: CapRecord
  /** The implementation's hash of each call's arguments. */
  readonly hashes: Readonly<Record<Call, string>>
}

let material: Promise<Material> | undefined
export const loadMaterial = (): Promise<Material> => {
  material ??= (async () => {
    const key = await run(Capability.generateRootKey("authority-refinement"))
    const keyring = new Map([[key.keyId, key.publicKey]])
    const root = await run(Capability.issue(key, ROOT_CAVEATS))
    const node = await capRecordOf(root, keyring, CALLS, TICK_MS, "root")
    if (node === undefined || node.record.uses === undefined) throw new Error("the root token does not verify")
    const hashes: Record<Call, string> = {}
    for (const [c, spec] of Object.entries(CALLS)) hashes[c] = await Executor.hashArguments(spec.input)
    return { keyring, root, rootRecord: { ...node.record, uses: node.record.uses }, hashes }
  })()
  return material
}

const childTokens = new Map<string, Promise<Exit.Exit<string, unknown>>>()
/** `Capability.attenuate(root, caveats)`, cached by caveats across runs (signing costs time, and a token is data). */
const attenuated = (root: string, caveats: ReadonlyArray<Caveat.Caveat>): Promise<Exit.Exit<string, unknown>> => {
  const key = JSON.stringify(caveats)
  let token = childTokens.get(key)
  if (token === undefined) {
    token = Effect.runPromiseExit(Capability.attenuate(root, caveats))
    childTokens.set(key, token)
  }
  return token
}

// ---------------------------------------------------------------------------------------------
// The refinement mapping of journal records
// ---------------------------------------------------------------------------------------------

const ticks = (ms: number): number => ms / TICK_MS

/**
 * One journaled event of a call → its model record (undefined: not a record of the spec). Records
 * after `started` are ToolCall.tla's; `decisionIgnored` changes no state (IgnoreDecision); anything
 * else (a `failed` at attempt 0: ToolCall's Reject for other reasons) maps to a record no model state
 * has, so that a mismatch shows.
 */
export function modelRecord(
  e: ToolCallEvent,
  capOf: (blocks: ReadonlyArray<string>) => CapName,
  hashes: Readonly<Record<Call, string>>
): AuthorityRecord | undefined {
  switch (e._tag) {
    case "tool.call.proposed":
      return { type: "proposed" }
    case "tool.call.authorized":
      return { type: "authorized", cap: capOf(e.blocks) }
    case "tool.call.denied":
      return { type: "denied" }
    case "tool.call.awaitingApproval":
      return { type: "awaitingApproval", hash: modelHash(e.argsHash, hashes), approvers: [...e.approvers].sort(), deadline: ticks(e.deadline) }
    case "tool.call.approved":
      return { type: "approved", by: e.by, hash: modelHash(e.argsHash, hashes), at: ticks(e.time) }
    case "tool.call.rejected":
      return { type: "rejected", by: e.by }
    case "tool.call.expired":
      return { type: "expired", deadline: ticks(e.deadline) }
    case "tool.call.started":
      return e.attempt === 1 ? { type: "started", attempt: 1 } : undefined
    case "tool.call.decisionIgnored":
      return undefined
    default:
      return { type: `unexpected ${e._tag}` } as unknown as AuthorityRecord
  }
}

/** The model log of a journal's events (per call, its authority records up to `started`), and the ignored decisions per call. */
export function modelLog(
  events: ReadonlyArray<Event>,
  calls: ReadonlyArray<Call>,
  capOf: (blocks: ReadonlyArray<string>) => CapName,
  hashes: Readonly<Record<Call, string>>
): { readonly log: Record<Call, Array<AuthorityRecord>>; readonly ignored: Record<Call, number> } {
  const log: Record<Call, Array<AuthorityRecord>> = Object.fromEntries(calls.map((c) => [c, []]))
  const ignored: Record<Call, number> = Object.fromEntries(calls.map((c) => [c, 0]))
  for (const event of events) {
    if (!event._tag.startsWith("tool.call.")) continue
    const e = event as ToolCallEvent
    const records = log[e.callId]
    if (records === undefined) continue
    if (e._tag === "tool.call.decisionIgnored") ignored[e.callId] = (ignored[e.callId] ?? 0) + 1
    if (records.at(-1)?.type === "started") continue
    const record = modelRecord(e, capOf, hashes)
    if (record !== undefined) records.push(record)
  }
  return { log, ignored }
}

/** A call's authority status from the live ToolCall machine's state: everything from `started` on is `started`. */
export function statusOf(state: ToolCallState | undefined, attempt: number): string {
  switch (state) {
    case undefined:
      return "absent"
    case "proposed":
    case "authorized":
    case "denied":
    case "awaitingApproval":
    case "approved":
    case "rejected":
    case "expired":
      return state
    case "failed":
      return attempt === 0 ? "failed@0 (ToolCall's Reject)" : "started"
    default:
      return "started"
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

interface Proc {
  readonly scope: Scope.Closeable
  readonly journal: Journal.JournalShape
  readonly session: Session.Session
  readonly clock: TestClock.TestClock
  /** Clock and Scheduler of this process's fibers. */
  readonly context: Context.Context<never>
  /** fibers asleep on this process's clock now */
  readonly sleeping: { n: number }
  readonly fibers: Array<{ readonly c: Call; readonly what: string; readonly fiber: Fiber.Fiber<unknown, unknown> }>
}

export class AuthorityImpl {
  readonly dir: string
  readonly m: Material
  /** The runtime's trace (every process) and the environment's steps (Tick, Attenuate, Revoke), in order. */
  readonly steps: Array<Trace.Step> = []
  /** Every command the harness ran, for failure messages. */
  readonly log: Array<string> = []
  private proc: Proc | undefined
  private readonly procs: Array<Proc> = []
  private time = 0
  private crashes = 0
  private readonly tokens = new Map<CapName, string>()
  private readonly blockIds = new Map<CapName, ReadonlyArray<string>>()
  private readonly records = new Map<CapName, CapRecord>()
  /** The revocation list: block ids. */
  private readonly revokedIds = new Set<string>()
  private readonly revokedNodes = new Set<CapName>()
  private checked: Record<Call, Check> = {}
  /** The last state the test accepted (what `checked` of a new authorization is computed from). */
  private before: AuthorityState | undefined

  private constructor(dir: string, m: Material) {
    this.dir = dir
    this.m = m
  }

  static async make(): Promise<AuthorityImpl> {
    const m = await loadMaterial()
    const impl = new AuthorityImpl(fs.mkdtempSync(path.join(os.tmpdir(), "keel-authority-refinement-")), m)
    impl.tokens.set("root", m.root)
    impl.blockIds.set("root", await impl.blocksOf(m.root))
    impl.records.set("root", m.rootRecord)
    const p = await impl.open()
    await run(
      p.session.propose(
        "assistant",
        { text: "calls" },
        Object.entries(CALLS).map(([callId, spec]) => ({ callId, tool: spec.tool, input: spec.input as Schema.Json }))
      )
    )
    return impl
  }

  private async blocksOf(token: string): Promise<ReadonlyArray<string>> {
    const v = await run(Capability.verify(token, { keyring: this.m.keyring, revoked: new Set(), cache: false }).pipe(Effect.provide(TestClock.layer())))
    return v.blockIds
  }

  private async open(): Promise<Proc> {
    const scope = await run(Scope.make())
    const owner = `process-${this.procs.length + 1}`
    const clockContext = (await run(Layer.build(TestClock.layer({ warningDelay: "1 hour" })).pipe(Scope.provide(scope)))) as Context.Context<never>
    const clock = Context.getUnsafe(clockContext, Clock.Clock) as TestClock.TestClock
    const sleeping = { n: 0 }
    const counting: Clock.Clock = {
      ...clock,
      sleep: (duration) =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            sleeping.n++
          }),
          () => clock.sleep(duration),
          () =>
            Effect.sync(() => {
              sleeping.n--
            })
        )
    }
    const context = Context.add(clockContext, Clock.Clock, counting)
    await run(clock.setTime(this.time * TICK_MS))
    const dir = this.dir
    const journal = await run(Journal.openFile(dir, { owner, takeover: true, durability }).pipe(Scope.provide(scope)))
    const session = await run(Session.open(journal, { owner }).pipe(Effect.provide(context), Effect.provide(Trace.layerMemory(this.steps))))
    const p: Proc = { scope, journal, session, clock, context, sleeping, fibers: [] }
    this.proc = p
    this.procs.push(p)
    return p
  }

  get up(): boolean {
    return this.proc !== undefined
  }

  private live(): Proc {
    if (this.proc === undefined) throw new Error("no process is up")
    return this.proc
  }

  private within<A, E>(p: Proc, effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return effect.pipe(Effect.provide(p.context), Effect.provide(Trace.layerMemory(this.steps)))
  }

  private fork(p: Proc, c: Call, what: string, effect: Effect.Effect<unknown, unknown>): void {
    p.fibers.push({ c, what, fiber: Effect.runFork(this.within(p, effect)) })
  }

  /** The registry of a call that presents node `k`: the tools, under the authority of k's token. */
  registry(k: CapName): Executor.Registry {
    const token = this.tokens.get(k)
    if (token === undefined) throw new Error(`no token for ${k}`)
    const revoked = this.revokedIds
    return Executor.registry(
      TOOLS,
      Authority.fromCapability(token, { keyring: this.m.keyring, revoked: () => revoked, approvalTimeoutMs: K.approvalTimeout * TICK_MS })
    )
  }

  // -------------------------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------------------------

  /** Call c presents node k: `Executor.runCall` in a fiber of the live process. */
  present(c: Call, k: CapName): void {
    this.log.push(`Present(${c},${k})`)
    const p = this.live()
    this.fork(p, c, `runCall(${c}, ${k})`, Executor.runCall(p.session, this.registry(k), c))
  }

  /** The same for a call the executor must refuse (not proposed): its exit. */
  presentRefused(c: Call, k: CapName): Promise<Exit.Exit<unknown, unknown>> {
    this.log.push(`Present(${c},${k})!`)
    const p = this.live()
    return Effect.runPromiseExit(this.within(p, Executor.runCall(p.session, this.registry(k), c)))
  }

  /** A person's decision through `Approvals.approve` (naming the arguments of call `h`) or `reject`. */
  decide(c: Call, by: string, h: Call, yes: boolean): Promise<Exit.Exit<unknown, Approvals.ApprovalError>> {
    this.log.push(`${yes ? "Approve" : "Reject"}(${c},${by},${h})`)
    const p = this.live()
    const decision = yes ? Approvals.approve(p.session, c, by, { argsHash: this.m.hashes[h] as string }) : Approvals.reject(p.session, c, by, `${by} says no`)
    return Effect.runPromiseExit(this.within(p, decision))
  }

  /** `Approvals.withdraw`: the run of c was cancelled. */
  withdraw(c: Call): Promise<Exit.Exit<void, unknown>> {
    this.log.push(`Withdraw(${c})`)
    const p = this.live()
    return Effect.runPromiseExit(this.within(p, Approvals.withdraw(p.session, c, "the run was cancelled")))
  }

  /**
   * A holder of the root derives the child with `caveats` (offline: up or down). On success the
   * child's node (what its blocks grant together) is returned, and the Attenuate step is traced.
   */
  async attenuate(caveats: ReadonlyArray<Caveat.Caveat>, label: string): Promise<Exit.Exit<CapRecord, unknown>> {
    this.log.push(`Attenuate(${label})`)
    const token = await attenuated(this.m.root, caveats)
    if (Exit.isFailure(token)) return Exit.failCause(token.cause)
    const node = await capRecordOf(token.value, this.m.keyring, CALLS, TICK_MS, "root")
    if (node === undefined) throw new Error(`the child ${label} does not verify`)
    if (node.record.uses === undefined) throw new Error(`the child ${label} has no use count`)
    if (node.approvers.length > 0 && node.approvers.join() !== [...K.approvers].sort().join()) throw new Error(`the child ${label} changes the approvers`)
    const record: CapRecord = { ...node.record, uses: node.record.uses }
    this.tokens.set("child", token.value)
    this.blockIds.set("child", await this.blocksOf(token.value))
    this.records.set("child", record)
    this.steps.push({ spec: "Authority", action: "Attenuate", args: { k: "root", ch: "child", g: [...record.calls], a: [...record.approval], u: record.uses } })
    return Exit.succeed(record)
  }

  /** The operator revokes node k: its own block id goes on the list (a node derived from it contains that block). */
  revoke(k: CapName): void {
    this.log.push(`Revoke(${k})`)
    const ids = this.blockIds.get(k)
    if (ids === undefined) throw new Error(`no token for ${k}`)
    this.revokedIds.add(ids[ids.length - 1] as string)
    if (!this.revokedNodes.has(k)) this.steps.push({ spec: "Authority", action: "Revoke", args: { k } })
    this.revokedNodes.add(k)
  }

  /** One tick passes (the live process's clock wakes whoever sleeps until then). */
  async tick(): Promise<void> {
    this.log.push("Tick")
    this.time++
    this.steps.push({ spec: "Authority", action: "Tick", args: {} })
    if (this.proc !== undefined) await run(this.proc.clock.adjust(TICK_MS))
  }

  /** The process dies: its store is closed, its fibers are abandoned where they wait (their clock never moves again). */
  async crash(): Promise<void> {
    this.log.push("Crash")
    const p = this.live()
    this.proc = undefined
    this.crashes++
    await run(Scope.close(p.scope, Exit.void))
    // The dead process cannot say it died: the harness does (the checker would otherwise take Crash at the next open).
    this.steps.push({ spec: "Authority", action: "Crash", args: {} })
  }

  /** A new process: replay, takeover of the lease, then the approval gate re-armed from the journal. */
  async restart(): Promise<void> {
    this.log.push("Restart")
    if (this.proc !== undefined) throw new Error("restart while up")
    const p = await this.open()
    const registry = this.registry("root")
    for (const call of p.session.calls().all()) {
      if (call.state === "awaitingApproval")
        this.fork(p, call.callId, `continueApproval(${call.callId})`, Executor.continueApproval(p.session, registry, call.callId))
      else if (call.state === "approved" || call.state === "authorized")
        this.fork(p, call.callId, `startApproved(${call.callId})`, Executor.startApproved(p.session, registry, call.callId))
    }
  }

  /** A second writer while one is up (the model's Restart is disabled): refused, its exit. */
  secondWriter(): Promise<Exit.Exit<unknown, unknown>> {
    this.log.push("SecondWriter")
    return Effect.runPromiseExit(Effect.scoped(Journal.openFile(this.dir, { owner: "intruder", durability })))
  }

  /** Decides about a call id that does not exist. */
  decideUnknown(by: string): Promise<Exit.Exit<unknown, Approvals.ApprovalError>> {
    this.log.push(`Approve(c-unknown,${by})`)
    const p = this.live()
    return Effect.runPromiseExit(this.within(p, Approvals.approve(p.session, "c-unknown", by)))
  }

  // -------------------------------------------------------------------------------------------
  // Settling
  // -------------------------------------------------------------------------------------------

  /** Each model call's authority status in the live session (undefined when down). */
  liveStatuses(): Record<Call, string> | undefined {
    const p = this.proc
    if (p === undefined) return undefined
    return Object.fromEntries(
      K.calls.map((c) => {
        const call = p.session.calls().get(c)
        return [c, statusOf(call?.state, call?.attempt ?? 0)]
      })
    )
  }

  /** Why the live process is not quiet with the calls in `expected`, or undefined. */
  private unsettled(expected: Readonly<Record<Call, CallStatus>>): string | undefined {
    const p = this.proc
    if (p === undefined) return undefined
    for (const { what, fiber } of p.fibers) {
      const exit = fiber.pollUnsafe()
      if (exit !== undefined && Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) throw new Error(`${what} failed: ${String(exit.cause)}`)
    }
    if (p.journal.durableHead() !== p.journal.head()) return `writes in flight (durable ${p.journal.durableHead()} < ${p.journal.head()})`
    const live = this.liveStatuses() as Record<Call, string>
    for (const c of K.calls) if (live[c] !== expected[c]) return `${c} is ${live[c]}, the model says ${expected[c]}`
    const awaiting = K.calls.filter((c) => live[c] === "awaitingApproval").length
    if (p.sleeping.n !== awaiting) return `${p.sleeping.n} fibers asleep, ${awaiting} calls await approval`
    for (const { c, what, fiber } of p.fibers) {
      if (fiber.pollUnsafe() === undefined && live[c] !== "awaitingApproval") return `${what} still runs (${c} is ${live[c]})`
    }
    return undefined
  }

  /** Waits until the live process is quiet with the calls in `expected` (three checks in a row, a macrotask apart). */
  async settle(what: string, expected: Readonly<Record<Call, CallStatus>>): Promise<void> {
    const deadline = Date.now() + SETTLE_MS
    let quiet = 0
    for (;;) {
      const why = this.unsettled(expected)
      quiet = why === undefined ? quiet + 1 : 0
      if (quiet >= 3) return
      if (why !== undefined && Date.now() > deadline) throw new Error(`${what} did not settle in ${SETTLE_MS} ms: ${why}\n  commands: ${this.log.join(" ")}`)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  // -------------------------------------------------------------------------------------------
  // The refinement mapping
  // -------------------------------------------------------------------------------------------

  private capOf = (blocks: ReadonlyArray<string>): CapName => {
    for (const [k, ids] of this.blockIds) if (ids.length === blocks.length && ids.every((id, i) => id === blocks[i])) return k
    return `unknown token (${blocks.length} blocks)`
  }

  /** The events on disk, as a reader reads them. */
  private async onDisk(): Promise<ReadonlyArray<Event>> {
    const committed = await run(Effect.scoped(Effect.flatMap(Journal.openFile(this.dir, { writer: false }), (reader) => reader.read(1))))
    return committed.map((c) => c.event)
  }

  /** The refinement mapping: implementation state → model state (and the ignored decisions journaled per call). */
  async abstract(): Promise<{ readonly state: AuthorityState; readonly ignored: Record<Call, number> }> {
    const { log, ignored } = modelLog(await this.onDisk(), K.calls, this.capOf, this.m.hashes)
    for (const c of K.calls) {
      const authorized = (log[c] ?? []).find((r) => r.type === "authorized")
      if (authorized?.type === "authorized" && this.checked[c] === undefined) {
        if (this.before === undefined) throw new Error("no state before the authorization")
        this.checked = { ...this.checked, [c]: checkOf(this.before, c, authorized.cap, K) }
      }
    }
    const caps = Object.fromEntries([...this.records].sort(([a], [b]) => (a < b ? -1 : 1)))
    const now = this.proc === undefined ? this.time : ticks(this.proc.clock.currentTimeMillisUnsafe())
    const state: AuthorityState = {
      log,
      caps,
      revoked: [...this.revokedNodes].sort(),
      now,
      checked: this.checked,
      crashes: this.crashes,
      up: this.proc !== undefined
    }
    return { state, ignored }
  }

  /** The state the test accepted after a command: `checked` of the next authorization is computed from it. */
  accept(state: AuthorityState): void {
    this.before = state
  }

  /** The head of the journal (a refused command must not move it). */
  head(): number {
    return this.proc?.journal.head() ?? -1
  }

  /** Abandons every fiber, closes the live process and removes the folder. */
  async dispose(): Promise<void> {
    const live = this.proc
    this.proc = undefined
    if (live !== undefined) await run(Scope.close(live.scope, Exit.void))
    for (const p of this.procs) for (const { fiber } of p.fibers) fiber.interruptUnsafe()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}
