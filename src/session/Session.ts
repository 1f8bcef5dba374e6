/**
 * A session: a branching conversation kept in a journal.
 *
 * When to use: open one per conversation; `append` adds an entry on the
 * active branch, `fork(at, name)` starts a branch at any entry in O(1),
 * `switchTo` moves between branches, `path()` gives root→head for the model.
 * Re-opening a folder is `resume`: the state is rebuilt by replay (from the
 * last checkpoint), so recovery after `kill -9` is the same code as a start.
 *
 * Details: the live state is the fold of the journal through the Session
 * machine (lifecycle) and the Tree (entries, branches). Every write is
 * sequenced and folded in one synchronous step, then awaited until durable,
 * so concurrent appends share a group commit. A writer holds the lease; a
 * second writer gets `SessionLocked`, a writer whose lease was taken over gets
 * `StaleWriter`, and neither writes anything. Readers (`writer: false`) never
 * need the lease.
 *
 * Gotcha: if a write fails (fsync error, stale lease) the session is
 * fail-stop: every later write fails with the same error; re-open to go on.
 *
 * @example
 *   const session = yield* Session.openFile("./my-session")
 *   const first = yield* session.append("message", { role: "user", text: "hi" })
 *   yield* session.fork(first.id, "idea")
 *   yield* session.switchTo("idea")
 */
import { Clock, Effect, Option, Schema, type Scope } from "effect"
import { actionOf as runActionOf } from "../agent/AgentMachine.ts"
import { AgentRuns, type AgentRunsData } from "../agent/AgentRuns.ts"
import { type AgentEvent, type Event, isAgentEvent, isToolCallEvent, type RunBudget, type ToolCallEvent } from "../Event.ts"
import { assert, InvariantViolation } from "../internal/assert.ts"
import type { Batch } from "../journal/Codec.ts"
import {
  type Fence,
  type JournalShape,
  type OpenError,
  type OpenOptions,
  openFile as openFileJournal,
  openMemory as openMemoryJournal
} from "../journal/Journal.ts"
import {
  type JournalAppendRejected,
  type JournalIOError,
  type JournalReadError,
  JournalRecordInvalid,
  type SessionLocked,
  type StaleWriter
} from "../journal/JournalError.ts"
import type { MemoryStore } from "../journal/MemoryStore.ts"
import { Limits } from "../Limits.ts"
import { actionOf, type ToolCallState, terminalStates } from "../toolcall/ToolCallMachine.ts"
import { type Call, ToolCalls, type ToolCallsData } from "../toolcall/ToolCalls.ts"
import { Trace, type TraceShape } from "../trace/Trace.ts"
import { BranchExists, InvalidRequest, RunRefused, SessionNotActive, ToolCallRefused, UnknownBranch, UnknownEntry } from "./SessionError.ts"
import { initialSnapshot, type SessionSnapshot, type SessionStatus, sessionMachine, statusOf, step } from "./SessionMachine.ts"
import { Tree, type TreeData } from "./Tree.ts"

/** One entry of the tree, as handed to callers and to the model's context. */
export interface Entry {
  readonly id: number
  /** 0 for an entry at the root. */
  readonly parentId: number
  readonly type: string
  /** Milliseconds since the epoch, from Effect's Clock (TestClock in tests). */
  readonly at: number
  readonly payload: Schema.Json
  readonly label: string | undefined
}

/** An entry with the tool calls it proposed, as assembled for a model. */
export interface ContextEntry extends Entry {
  readonly calls: ReadonlyArray<Call>
}

export interface SessionOptions extends OpenOptions {
  /** Id recorded in `session.created` for a new session (default: a random UUID). */
  readonly sessionId?: string
}

export type WriteError = SessionNotActive | InvalidRequest | StaleWriter | JournalAppendRejected | JournalIOError
export type ReadError = UnknownEntry | UnknownBranch | JournalReadError

export interface Session {
  /** The journal's location (a folder, or "memory"). */
  readonly dir: string
  readonly id: string
  /** open | active | suspended | closed — the Session machine's state. */
  readonly status: () => SessionStatus
  /** The fence this handle writes with (epoch of its lease, head it expects). */
  readonly fence: () => Fence
  readonly activeBranch: () => string
  readonly branches: () => ReadonlyArray<{ readonly name: string; readonly head: number }>
  /** Head entry id of `branch` (default: the active one); 0 = empty branch. */
  readonly head: (branch?: string) => Effect.Effect<number, UnknownBranch>
  readonly labels: () => ReadonlyMap<number, string>
  /** The tree, read-only (for drawing). */
  readonly tree: () => Pick<Tree, "branches" | "active" | "labels" | "isEntry" | "parentOf" | "head" | "pathTo">
  readonly entry: (id: number) => Effect.Effect<Entry, ReadError>
  /**
   * The entries `ids` (any order, repeats allowed), in that order: those not
   * in the session's cache with one batched journal read, each frame checked
   * and validated as `entry` does. An id that is not a durable entry fails
   * the whole call with UnknownEntry (the first such id), and nothing is read.
   */
  readonly entries: (ids: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Entry>, ReadError>
  /** Entries root → head of `branch` (default: the active one). */
  readonly path: (branch?: string) => Effect.Effect<ReadonlyArray<Entry>, ReadError>
  /**
   * Appends an entry on the active branch. With `run`, the entry is a user
   * message and the agent run that answers it starts in the same batch.
   */
  readonly append: (
    type: string,
    payload: Schema.Json,
    options?: { readonly run?: { readonly runId: string; readonly budget: RunBudget } }
  ) => Effect.Effect<Entry, WriteError | RunRefused>
  readonly fork: (at: number, name: string) => Effect.Effect<void, WriteError | UnknownEntry | BranchExists>
  readonly switchTo: (name: string) => Effect.Effect<void, WriteError | UnknownBranch>
  readonly label: (id: number, label: string) => Effect.Effect<void, WriteError | UnknownEntry>
  /**
   * Appends an entry (the assistant turn) and the tool calls it proposes in
   * one atomic batch: a crash keeps both or neither.
   */
  readonly propose: (
    type: string,
    payload: Schema.Json,
    calls: ReadonlyArray<{ readonly callId: string; readonly tool: string; readonly input: Schema.Json }>,
    options?: { readonly atomic?: boolean; readonly turn?: TurnRecord }
  ) => Effect.Effect<{ readonly entry: Entry; readonly calls: ReadonlyArray<Call> }, WriteError | ToolCallRefused | RunRefused>
  /**
   * Journals events of calls' lifecycles, in one atomic batch, if the calls'
   * machines accept them in order now; the position of the first.
   */
  readonly recordCall: (build: (time: number) => ToolCallEvent | ReadonlyArray<ToolCallEvent>) => Effect.Effect<number, WriteError | ToolCallRefused>
  /** Journals events of an agent run, in one atomic batch, if the run's machine accepts them in order now. */
  readonly recordRun: (build: (time: number) => AgentEvent | ReadonlyArray<AgentEvent>) => Effect.Effect<number, WriteError | RunRefused>
  /** The session's agent runs (read-only). */
  readonly runs: () => Pick<AgentRuns, "get" | "active" | "all" | "size">
  /** The session's tool calls (read-only). */
  readonly calls: () => Pick<ToolCalls, "get" | "ofEntry" | "all" | "unresolved" | "usesOf">
  /**
   * What a model is given: the entries root → head of `branch`, each with the
   * calls it proposed and their outcomes. Asserts PairingInv: a call without
   * an outcome here is a bug (recovery resolves in-doubt calls first).
   */
  readonly context: (branch?: string) => Effect.Effect<ReadonlyArray<ContextEntry>, ReadError>
  /** Writes `session.suspended` and lets go of the lease (what closing a scope does). */
  readonly suspend: Effect.Effect<void, WriteError>
  /** Writes `session.closed`: the session is finished for good. */
  readonly close: Effect.Effect<void, WriteError>
  /** Saves the checkpoint now (it is also saved every Limits.checkpointIntervalRecords and on suspend). */
  readonly checkpoint: Effect.Effect<void, JournalIOError>
}

/**
 * A model turn recorded with its entry (`propose`): the turn record joins the
 * batch, and with `final` (no calls: the model answered) so does the run's end.
 */
export interface TurnRecord {
  readonly runId: string
  readonly turn: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly final: boolean
}

/** The summary a checkpoint keeps for the session (the journal keeps the frame index). */
interface SessionCheckpoint {
  readonly id: string
  readonly machine: { readonly value: SessionStatus; readonly epoch: number }
  readonly tree: TreeData
  readonly calls: ToolCallsData
  readonly runs: AgentRunsData
}

/** The live state: the fold of the journal through the Session machine, the Tree and the ToolCall machines. */
interface State {
  snapshot: SessionSnapshot
  readonly tree: Tree
  readonly calls: ToolCalls
  readonly runs: AgentRuns
  id: string
}

const isJson = Schema.is(Schema.Json)
const isEvents = (x: unknown): x is ReadonlyArray<Event> => Array.isArray(x)

/** A request the session refuses before writing anything. */
type Refusal = SessionNotActive | InvalidRequest | UnknownEntry | UnknownBranch | BranchExists | ToolCallRefused | RunRefused

/**
 * Folds one event at `position`. Every fold asserts its invariants: a refused
 * event is an InvariantViolation (a bug when we wrote it, a forged or damaged
 * journal when we read it; `replay` turns the latter into a typed error).
 */
function fold(state: State, position: number, event: Event): string | undefined {
  let settled: string | undefined
  if (event._tag === "session.created") state.id = event.sessionId
  else {
    const next = step(state.snapshot, event)
    assert(next !== undefined, "LifecycleInv", `${event._tag} is not allowed in lifecycle state ${statusOf(state.snapshot)}`)
    state.snapshot = next
  }
  if (isToolCallEvent(event)) {
    state.calls.apply(event, (id) => state.tree.isEntry(id))
    const call = state.calls.get(event.callId)
    if (call !== undefined) settled = state.runs.onCall(call)
  } else if (isAgentEvent(event)) state.runs.apply(event)
  state.tree.apply(position, event)
  return settled
}

/** Folds recovered batches; a record the folds refuse is a forged or corrupt journal: JournalRecordInvalid. */
function replay(path: string, batches: ReadonlyArray<Batch>, state: State): void {
  for (const batch of batches) {
    for (const [k, event] of batch.events.entries()) {
      const position = batch.position + k
      try {
        fold(state, position, event)
      } catch (e) {
        if (e instanceof InvariantViolation) throw new JournalRecordInvalid({ path, offset: -1, reason: `record ${position} (${event._tag}): ${e.message}` })
        throw e
      }
    }
  }
}

/**
 * Emits the ToolCall spec's actions for a batch about to be folded (trace
 * validation). A Rerun is one action over two records: the lost attempt
 * closed (failed, "unknown", retryable) and the next one started.
 */
function traceCalls(tracer: TraceShape, calls: ToolCalls, events: ReadonlyArray<Event>): void {
  const states = new Map<string, ToolCallState | undefined>()
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as Event
    if (!isToolCallEvent(event)) continue
    const prior = states.has(event.callId) ? states.get(event.callId) : calls.get(event.callId)?.state
    const following = events[i + 1]
    const rerun =
      prior === "inDoubt" &&
      event._tag === "tool.call.failed" &&
      event.retryable &&
      following?._tag === "tool.call.started" &&
      following.callId === event.callId
    const args: { [key: string]: Schema.Json } = { call: event.callId }
    if ("attempt" in event) args.attempt = rerun && following !== undefined && "attempt" in following ? following.attempt : event.attempt
    if (event._tag === "tool.call.failed" && !rerun) args.retryable = event.retryable
    const action = rerun ? "Rerun" : actionOf(prior, event)
    states.set(event.callId, rerun ? "started" : stateAfter(event))
    if (rerun) i++
    // spec/Authority.tla refines ToolCall.tla's proposed → started edge: its steps are stuttering there,
    // except a denial, rejection or expiry (ToolCall's Reject) and the start itself.
    if (authorityActions.has(action)) {
      const authorityArgs: { [key: string]: Schema.Json } = { call: event.callId }
      if ("by" in event) authorityArgs.by = event.by
      tracer.emit({ spec: "Authority", action, args: authorityArgs })
      if (action === "Deny" || action === "RejectApproval" || action === "Expire")
        tracer.emit({ spec: "ToolCall", action: "Reject", args: { call: event.callId } })
      continue
    }
    if (action === "Start") tracer.emit({ spec: "Authority", action: "Start", args: { call: event.callId } })
    tracer.emit({ spec: "ToolCall", action, args })
  }
}

const authorityActions: ReadonlySet<string> = new Set(["Authorize", "Deny", "RequestApproval", "Approve", "RejectApproval", "Expire", "IgnoreDecision"])

/** Emits the Agent spec's actions for an event just folded: its own, then SettleCall if it settled a call. */
function traceRun(tracer: TraceShape, event: Event, settled: string | undefined): void {
  if (isAgentEvent(event)) {
    const args: { [key: string]: Schema.Json } = { run: event.runId }
    if (event._tag === "agent.turn.recorded") {
      args.turn = event.turn
      args.calls = [...event.callIds]
    }
    if (event._tag === "agent.run.waiting" || event._tag === "agent.run.answered") args.call = event.forCall
    tracer.emit({ spec: "Agent", action: runActionOf(event), args })
  }
  if (settled !== undefined) tracer.emit({ spec: "Agent", action: "SettleCall", args: { call: settled } })
}

const stateAfter = (event: ToolCallEvent): ToolCallState =>
  event._tag === "tool.call.proposed" ? "proposed" : (event._tag.slice("tool.call.".length) as ToolCallState)

function restore(checkpoint: unknown): State | undefined {
  const data = checkpoint as SessionCheckpoint | undefined
  if (data === undefined || typeof data !== "object" || data.machine === undefined || data.calls === undefined || data.runs === undefined) return undefined
  const snapshot = sessionMachine.resolveState({ value: data.machine.value, context: { epoch: data.machine.epoch } })
  return { snapshot, tree: new Tree(data.tree), calls: new ToolCalls(data.calls), runs: new AgentRuns(data.runs), id: data.id }
}

/**
 * Opens a session over an opened journal: replays it, creates it if empty and,
 * for a writer, takes the lease (`lease.acquired`, the next epoch).
 */
export const open = (
  journal: JournalShape,
  options: SessionOptions & { readonly writer?: boolean } = {}
): Effect.Effect<Session, OpenError | SessionLocked | WriteError> =>
  Effect.gen(function* () {
    const writer = options.writer ?? true
    const recovered = restore(journal.recovery.checkpoint?.data)
    const state: State = recovered ?? { snapshot: initialSnapshot(), tree: new Tree(), calls: new ToolCalls(), runs: new AgentRuns(), id: "" }
    yield* Effect.try({
      try: () => replay(journal.path, journal.recovery.tail, state),
      catch: (e) => {
        if (e instanceof JournalRecordInvalid) return e
        throw e
      }
    })
    assert(state.tree.head === journal.head(), "ReplayDeterminismInv", `replayed ${state.tree.head} records of ${journal.head()}`)
    const tracer = Option.getOrUndefined(yield* Effect.serviceOption(Trace))
    let fence: Fence = { epoch: journal.epoch(), head: journal.head() }
    let failed: StaleWriter | JournalIOError | undefined
    let sinceCheckpoint = 0
    const now = Clock.currentTimeMillis

    /**
     * Checks a request against the current state and sequences its events in
     * one synchronous step, then waits for durability. Nothing may run between
     * the check and the sequencing: a concurrent append on the same branch
     * would otherwise make this one's parent stale (a record the fold refuses).
     */
    const commit = <R extends Refusal = never>(
      build: (time: number) => ReadonlyArray<Event> | R
    ): Effect.Effect<{ readonly id: number; readonly time: number }, R | StaleWriter | JournalAppendRejected | JournalIOError> =>
      Effect.flatMap(now, (time) =>
        Effect.suspend((): Effect.Effect<{ readonly id: number; readonly time: number }, R | StaleWriter | JournalAppendRejected | JournalIOError> => {
          if (failed !== undefined) return Effect.fail(failed)
          const events = build(time)
          if (!isEvents(events)) return Effect.fail(events)
          const first = fence.head + 1
          const sequenced = journal.sequence(events, fence)
          if (!("durable" in sequenced)) {
            if (sequenced._tag !== "JournalAppendRejected") failed = sequenced
            return Effect.fail(sequenced)
          }
          fence = sequenced.fence
          // The builder checked these events against this very state: a refusal here is a bug.
          if (tracer !== undefined) traceCalls(tracer, state.calls, events)
          for (const [k, event] of events.entries()) {
            const settled = fold(state, first + k, event)
            if (tracer !== undefined) traceRun(tracer, event, settled)
          }
          sinceCheckpoint += events.length
          return sequenced.durable.pipe(
            Effect.tapError((e) => Effect.sync(() => (failed ??= e))),
            Effect.flatMap(() => (sinceCheckpoint >= Limits.checkpointIntervalRecords ? saveCheckpoint : Effect.void)),
            Effect.as({ id: first, time })
          )
        })
      )

    const saveCheckpoint: Effect.Effect<void, JournalIOError> = Effect.suspend(() => {
      sinceCheckpoint = 0
      const data: SessionCheckpoint = {
        id: state.id,
        machine: { value: statusOf(state.snapshot), epoch: state.snapshot.context.epoch },
        tree: state.tree.toJSON(),
        calls: state.calls.toJSON(),
        runs: state.runs.toJSON()
      }
      return journal.checkpoint(data)
    })

    /** Why the session cannot take `request` now, or undefined. */
    const notActive = (request: string): SessionNotActive | undefined =>
      statusOf(state.snapshot) === "active" && writer
        ? undefined
        : new SessionNotActive({ state: writer ? statusOf(state.snapshot) : "open read-only", request })

    const badName = (value: string, what: string, max: number): InvalidRequest | undefined =>
      value.length >= 1 && value.length <= max && !/[\u0000-\u001f]/.test(value)
        ? undefined
        : new InvalidRequest({ reason: `${what} must be 1..${max} printable characters, got ${JSON.stringify(value).slice(0, 80)}` })

    const runRefusal = (events: ReadonlyArray<AgentEvent>): RunRefused | undefined => {
      const why = state.runs.refusalOfBatch(events)
      return why === undefined ? undefined : new RunRefused(why)
    }

    const unknownBranch = (branch: string) => new UnknownBranch({ branch, known: [...state.tree.branches.keys()] })

    const headOf = (branch?: string): Effect.Effect<number, UnknownBranch> => {
      const b = branch ?? state.tree.active
      const head = state.tree.branches.get(b)
      return head === undefined ? Effect.fail(unknownBranch(b)) : Effect.succeed(head)
    }

    // Entries never change once durable (labels live in the tree): a bounded cache of decoded ones
    // spares the journal a read + decode + validation per entry each time a model's context is built.
    const cache = new Map<number, Omit<Entry, "label">>()
    const remember = (entry: Omit<Entry, "label">) => {
      if (cache.size >= Limits.entryCacheMax) cache.delete(cache.keys().next().value as number)
      cache.set(entry.id, entry)
    }
    const withLabel = (entry: Omit<Entry, "label">): Entry => ({ ...entry, label: state.tree.labels.get(entry.id) })

    /** Entries `ids` (each an entry of the tree): cached ones at once, the others with one batched journal read. */
    const readEntries = (ids: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<Entry>, JournalReadError> =>
      Effect.suspend(() => {
        const out = new Array<Entry>(ids.length)
        const missing: Array<number> = []
        const slots: Array<number> = []
        for (let k = 0; k < ids.length; k++) {
          const id = ids[k] as number
          const cached = cache.get(id)
          if (cached !== undefined) out[k] = withLabel(cached)
          else {
            // An entry folded in but not yet durable has not been remembered either: reading it is a bug, as before.
            if (id > journal.durableHead()) assert(false, "TreeInv", `entry ${id} is read before it is durable (durable head ${journal.durableHead()})`)
            missing.push(id)
            slots.push(k)
          }
        }
        if (missing.length === 0) return Effect.succeed(out)
        return Effect.map(journal.readMany(missing), (committed) => {
          for (let m = 0; m < missing.length; m++) {
            const id = missing[m] as number
            const event = committed[m]?.event
            if (event?._tag !== "entry.appended") assert(false, "TreeInv", `entry ${id} is not an entry.appended record`)
            const entry = { id, parentId: event.parentId, type: event.type, at: event.time, payload: event.payload }
            remember(entry)
            out[slots[m] as number] = withLabel(entry)
          }
          return out
        })
      })

    const entries = (ids: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<Entry>, ReadError> =>
      Effect.suspend((): Effect.Effect<ReadonlyArray<Entry>, ReadError> => {
        const head = journal.durableHead()
        for (const id of ids) if (!(state.tree.isEntry(id) && id <= head)) return Effect.fail(new UnknownEntry({ entryId: id, head }))
        return readEntries(ids)
      })

    const entry = (id: number): Effect.Effect<Entry, ReadError> => Effect.map(entries([id]), (read) => read[0] as Entry)

    if (writer) {
      if (statusOf(state.snapshot) === "closed") {
        return yield* new SessionNotActive({ state: "closed", request: "open for writing" })
      }
      if (journal.head() === 0) {
        const id = options.sessionId ?? crypto.randomUUID()
        yield* commit<never>((time) => [{ _tag: "session.created", sessionId: id, time }])
        state.id = id
      }
      fence = yield* journal.acquireLease(options.owner ?? "keel", { takeover: options.takeover ?? false, time: yield* now })
      fold(state, fence.head, { _tag: "lease.acquired", epoch: fence.epoch, owner: options.owner ?? "keel", time: 0 })
      // A writer opens after a crash or a clean stop: no effect of an earlier process is running any
      // more, so a call still `started` is in doubt until recovery resolves it (never re-run blindly).
      const inDoubt = state.calls.recover()
      tracer?.emit({ spec: "ToolCall", action: "Recover", args: { inDoubt } })
    }

    const session: Session = {
      dir: journal.path,
      get id() {
        return state.id
      },
      status: () => statusOf(state.snapshot),
      fence: () => fence,
      activeBranch: () => state.tree.active,
      branches: () => [...state.tree.branches].map(([name, head]) => ({ name, head })),
      head: headOf,
      labels: () => state.tree.labels,
      tree: () => state.tree,
      entry,
      entries,
      path: (branch) => headOf(branch).pipe(Effect.flatMap((head) => readEntries(state.tree.pathTo(head)))),
      append: (type, payload, options = {}) =>
        commit((time): ReadonlyArray<Event> | SessionNotActive | InvalidRequest | RunRefused => {
          const refused =
            notActive("append") ??
            badName(type, "an entry type", Limits.entryTypeLengthMax) ??
            (isJson(payload) ? undefined : new InvalidRequest({ reason: "an entry payload must be JSON data" }))
          if (refused !== undefined) return refused
          const branch = state.tree.active
          const events: Array<Event> = [{ _tag: "entry.appended", branch, parentId: state.tree.branches.get(branch) as number, type, time, payload }]
          if (options.run === undefined) return events
          const run: AgentEvent = { _tag: "agent.run.started", runId: options.run.runId, entryId: fence.head + 1, branch, budget: options.run.budget, time }
          return runRefusal([run]) ?? [...events, run]
        }).pipe(
          Effect.map(({ id, time }): Entry => {
            const entry = { id, parentId: state.tree.parentOf(id), type, at: time, payload }
            remember(entry)
            return { ...entry, label: undefined }
          })
        ),
      fork: (at, branch) =>
        commit(
          (time): ReadonlyArray<Event> | SessionNotActive | InvalidRequest | UnknownEntry | BranchExists =>
            notActive("fork") ??
            badName(branch, "a branch name", Limits.branchNameLengthMax) ??
            (at !== 0 && !state.tree.isEntry(at)
              ? new UnknownEntry({ entryId: at, head: state.tree.head })
              : state.tree.branches.has(branch)
                ? new BranchExists({ branch })
                : state.tree.branches.size >= Limits.branchesMax
                  ? new InvalidRequest({ reason: `at most ${Limits.branchesMax} branches` })
                  : [{ _tag: "branch.forked", branch, from: at, time }])
        ).pipe(Effect.asVoid),
      switchTo: (branch) =>
        commit(
          (time): ReadonlyArray<Event> | SessionNotActive | UnknownBranch =>
            notActive("switch branch") ?? (state.tree.branches.has(branch) ? [{ _tag: "branch.switched", branch, time }] : unknownBranch(branch))
        ).pipe(Effect.asVoid),
      label: (id, label) =>
        commit(
          (time): ReadonlyArray<Event> | SessionNotActive | UnknownEntry | InvalidRequest =>
            notActive("label") ??
            (!state.tree.isEntry(id)
              ? new UnknownEntry({ entryId: id, head: state.tree.head })
              : label.length > Limits.labelLengthMax
                ? new InvalidRequest({ reason: `a label has at most ${Limits.labelLengthMax} characters` })
                : [{ _tag: "entry.labelled", entryId: id, label, time }])
        ).pipe(Effect.asVoid),
      propose: (type, payload, calls, options = {}) =>
        commit((time): ReadonlyArray<Event> | SessionNotActive | InvalidRequest | ToolCallRefused | RunRefused => {
          const refused = notActive("propose") ?? badName(type, "an entry type", Limits.entryTypeLengthMax)
          if (refused !== undefined) return refused
          if (!isJson(payload)) return new InvalidRequest({ reason: "an entry payload must be JSON data" })
          const entryId = fence.head + 1
          const seen = new Set<string>()
          const events: Array<Event> = [
            { _tag: "entry.appended", branch: state.tree.active, parentId: state.tree.branches.get(state.tree.active) as number, type, time, payload }
          ]
          for (const call of calls) {
            const event: ToolCallEvent = {
              _tag: "tool.call.proposed",
              callId: call.callId,
              entryId,
              tool: call.tool,
              input: call.input,
              atomic: options.atomic ?? false,
              time
            }
            // The entry is in the same batch, so it counts as existing for this check.
            const why = seen.has(call.callId) ? `call ${call.callId} is proposed twice` : state.calls.refusal(event, (id) => id === entryId)
            if (why !== undefined) return new ToolCallRefused({ callId: call.callId, reason: why })
            seen.add(call.callId)
            events.push(event)
          }
          if (options.turn === undefined) return events
          const { runId, turn, inputTokens, outputTokens, final } = options.turn
          const run: Array<AgentEvent> = [
            { _tag: "agent.turn.recorded", runId, turn, entryId, callIds: calls.map((c) => c.callId), inputTokens, outputTokens, time }
          ]
          if (final) run.push({ _tag: "agent.run.done", runId, time })
          if (state.runs.get(runId)?.branch !== state.tree.active)
            return new RunRefused({ runId, reason: `the turn is not on the run's branch (${state.tree.active})` })
          return runRefusal(run) ?? [...events, ...run]
        }).pipe(
          Effect.map(({ id, time }) => {
            const entry = { id, parentId: state.tree.parentOf(id), type, at: time, payload }
            remember(entry)
            return { entry: { ...entry, label: undefined }, calls: state.calls.ofEntry(id) }
          })
        ),
      recordCall: (build) =>
        commit((time): ReadonlyArray<Event> | SessionNotActive | ToolCallRefused => {
          const refused = notActive("record a tool call")
          if (refused !== undefined) return refused
          const built = build(time)
          const events: ReadonlyArray<ToolCallEvent> = isEvents(built) ? built : [built as ToolCallEvent]
          const refusal = state.calls.refusalOfBatch(events)
          return refusal === undefined ? events : new ToolCallRefused(refusal)
        }).pipe(Effect.map(({ id }) => id)),
      recordRun: (build) =>
        commit((time): ReadonlyArray<Event> | SessionNotActive | RunRefused => {
          const refused = notActive("record an agent run")
          if (refused !== undefined) return refused
          const built = build(time)
          const events: ReadonlyArray<AgentEvent> = isEvents(built) ? built : [built as AgentEvent]
          return runRefusal(events) ?? events
        }).pipe(Effect.map(({ id }) => id)),
      runs: () => state.runs,
      calls: () => state.calls,
      context: (branch) =>
        headOf(branch).pipe(
          Effect.flatMap((head) => readEntries(state.tree.pathTo(head))),
          Effect.map((entries) =>
            entries.map((entry): ContextEntry => {
              const calls = state.calls.ofEntry(entry.id)
              for (const call of calls) {
                assert(terminalStates.has(call.state), "PairingInv", `entry ${entry.id} is handed to a model with call ${call.callId} in state ${call.state}`)
              }
              return { ...entry, calls }
            })
          )
        ),
      suspend: commit((time): ReadonlyArray<Event> | SessionNotActive => notActive("suspend") ?? [{ _tag: "session.suspended", time }]).pipe(
        Effect.andThen(saveCheckpoint.pipe(Effect.ignore)),
        Effect.andThen(journal.releaseLease)
      ),
      close: commit(
        (time): ReadonlyArray<Event> | SessionNotActive =>
          (statusOf(state.snapshot) === "suspended" && writer
            ? new SessionNotActive({ state: "suspended", request: "close (re-open it first)" })
            : undefined) ??
          notActive("close") ?? [{ _tag: "session.closed", time }]
      ).pipe(Effect.andThen(saveCheckpoint.pipe(Effect.ignore)), Effect.andThen(journal.releaseLease)),
      checkpoint: saveCheckpoint
    }
    return session
  })

/**
 * Opens (or creates) the session in folder `dir`, closed with the scope: a
 * writer that is still active suspends cleanly (a crash skips this, and the
 * next open recovers by replay).
 */
export const openFile = (
  dir: string,
  options: SessionOptions & { readonly writer?: boolean } = {}
): Effect.Effect<Session, OpenError | SessionLocked | WriteError, Scope.Scope> =>
  Effect.gen(function* () {
    const journal = yield* openFileJournal(dir, options)
    const session = yield* open(journal, options)
    yield* Effect.addFinalizer(() => (session.status() === "active" && (options.writer ?? true) ? session.suspend.pipe(Effect.ignore) : Effect.void))
    return session
  })

/**
 * Resumes the session in `dir` after a clean stop or a crash: the same as
 * `openFile` (recovery is replay), named for what a caller means.
 */
export const resume = openFile

/** A session in memory (tests); pass the same MemoryStore again to "reopen" it by replay. */
export const openMemory = (
  store?: MemoryStore,
  options: SessionOptions & { readonly writer?: boolean } = {}
): Effect.Effect<Session, OpenError | SessionLocked | WriteError> =>
  Effect.flatMap(openMemoryJournal(store, options.migrations), (journal) => open(journal, options))
