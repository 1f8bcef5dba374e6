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
import { Clock, Effect, Schema, type Scope } from "effect"
import type { Event } from "../Event.ts"
import { assert } from "../internal/assert.ts"
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
import { BranchExists, InvalidRequest, SessionNotActive, UnknownBranch, UnknownEntry } from "./SessionError.ts"
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
  /** Entries root → head of `branch` (default: the active one). */
  readonly path: (branch?: string) => Effect.Effect<ReadonlyArray<Entry>, ReadError>
  readonly append: (type: string, payload: Schema.Json) => Effect.Effect<Entry, WriteError>
  readonly fork: (at: number, name: string) => Effect.Effect<void, WriteError | UnknownEntry | BranchExists>
  readonly switchTo: (name: string) => Effect.Effect<void, WriteError | UnknownBranch>
  readonly label: (id: number, label: string) => Effect.Effect<void, WriteError | UnknownEntry>
  /** Writes `session.suspended` and lets go of the lease (what closing a scope does). */
  readonly suspend: Effect.Effect<void, WriteError>
  /** Writes `session.closed`: the session is finished for good. */
  readonly close: Effect.Effect<void, WriteError>
  /** Saves the checkpoint now (it is also saved every Limits.checkpointIntervalRecords and on suspend). */
  readonly checkpoint: Effect.Effect<void, JournalIOError>
}

/** The summary a checkpoint keeps for the session (the journal keeps the frame index). */
interface SessionCheckpoint {
  readonly id: string
  readonly machine: { readonly value: SessionStatus; readonly epoch: number }
  readonly tree: TreeData
}

const isJson = Schema.is(Schema.Json)

/** Folds recovered batches into a machine snapshot and tree; a batch the machine refuses is a forged or corrupt journal. */
function replay(path: string, batches: ReadonlyArray<Batch>, state: { snapshot: SessionSnapshot; tree: Tree; id: string }): void {
  for (const batch of batches) {
    for (const [k, event] of batch.events.entries()) {
      const position = batch.position + k
      if (event._tag === "session.created") {
        state.id = event.sessionId
        state.tree.apply(position, event)
        continue
      }
      const next = step(state.snapshot, event)
      if (next === undefined) {
        throw new JournalRecordInvalid({
          path,
          offset: -1,
          reason: `record ${position} (${event._tag}) is not allowed in lifecycle state ${statusOf(state.snapshot)}`
        })
      }
      state.snapshot = next
      state.tree.apply(position, event)
    }
  }
}

function restore(checkpoint: unknown): { snapshot: SessionSnapshot; tree: Tree; id: string } | undefined {
  const data = checkpoint as SessionCheckpoint | undefined
  if (data === undefined || typeof data !== "object" || data.machine === undefined) return undefined
  const snapshot = sessionMachine.resolveState({ value: data.machine.value, context: { epoch: data.machine.epoch } })
  return { snapshot, tree: new Tree(data.tree), id: data.id }
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
    const state = recovered ?? { snapshot: initialSnapshot(), tree: new Tree(), id: "" }
    yield* Effect.try({
      try: () => replay(journal.path, journal.recovery.tail, state),
      catch: (e) => {
        if (e instanceof JournalRecordInvalid) return e
        throw e
      }
    })
    assert(state.tree.head === journal.head(), "ReplayDeterminismInv", `replayed ${state.tree.head} records of ${journal.head()}`)
    let fence: Fence = { epoch: journal.epoch(), head: journal.head() }
    let failed: StaleWriter | JournalIOError | undefined
    let sinceCheckpoint = 0
    const now = Clock.currentTimeMillis

    /** Sequence + fold in one synchronous step, then wait for durability. */
    const commit = (events: ReadonlyArray<Event>): Effect.Effect<number, StaleWriter | JournalAppendRejected | JournalIOError> =>
      Effect.suspend(() => {
        if (failed !== undefined) return Effect.fail(failed)
        const first = fence.head + 1
        const sequenced = journal.sequence(events, fence)
        if (!("durable" in sequenced)) {
          if (sequenced._tag !== "JournalAppendRejected") failed = sequenced
          return Effect.fail(sequenced)
        }
        fence = sequenced.fence
        for (const [k, event] of events.entries()) {
          if (event._tag !== "session.created") {
            const next = step(state.snapshot, event)
            assert(next !== undefined, "ReplayDeterminismInv", `${event._tag} sequenced in state ${statusOf(state.snapshot)}`)
            state.snapshot = next
          }
          state.tree.apply(first + k, event)
        }
        sinceCheckpoint += events.length
        return sequenced.durable.pipe(
          Effect.tapError((e) => Effect.sync(() => (failed ??= e))),
          Effect.flatMap(() => (sinceCheckpoint >= Limits.checkpointIntervalRecords ? saveCheckpoint : Effect.void)),
          Effect.as(first)
        )
      })

    const saveCheckpoint: Effect.Effect<void, JournalIOError> = Effect.suspend(() => {
      sinceCheckpoint = 0
      const data: SessionCheckpoint = {
        id: state.id,
        machine: { value: statusOf(state.snapshot), epoch: state.snapshot.context.epoch },
        tree: state.tree.toJSON()
      }
      return journal.checkpoint(data)
    })

    const requireActive = (request: string): Effect.Effect<void, SessionNotActive> =>
      statusOf(state.snapshot) === "active" && writer
        ? Effect.void
        : Effect.fail(new SessionNotActive({ state: writer ? statusOf(state.snapshot) : "open read-only", request }))

    const name = (value: string, what: string, max: number): Effect.Effect<void, InvalidRequest> =>
      value.length >= 1 && value.length <= max && !/[\u0000-\u001f]/.test(value)
        ? Effect.void
        : Effect.fail(new InvalidRequest({ reason: `${what} must be 1..${max} printable characters, got ${JSON.stringify(value).slice(0, 80)}` }))

    const unknownBranch = (branch: string) => new UnknownBranch({ branch, known: [...state.tree.branches.keys()] })

    const headOf = (branch?: string): Effect.Effect<number, UnknownBranch> => {
      const b = branch ?? state.tree.active
      const head = state.tree.branches.get(b)
      return head === undefined ? Effect.fail(unknownBranch(b)) : Effect.succeed(head)
    }

    const readEntries = (ids: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<Entry>, JournalReadError> =>
      Effect.forEach(ids, (id) =>
        journal.read(id, id).pipe(
          Effect.map((committed) => {
            const event = committed[0]?.event
            assert(event?._tag === "entry.appended", "TreeInv", `entry ${id} is not an entry.appended record`)
            return { id, parentId: event.parentId, type: event.type, at: event.time, payload: event.payload, label: state.tree.labels.get(id) }
          })
        )
      )

    const entry = (id: number): Effect.Effect<Entry, ReadError> =>
      state.tree.isEntry(id) && id <= journal.durableHead()
        ? readEntries([id]).pipe(Effect.map((entries) => entries[0] as Entry))
        : Effect.fail(new UnknownEntry({ entryId: id, head: journal.durableHead() }))

    if (writer) {
      if (statusOf(state.snapshot) === "closed") {
        return yield* new SessionNotActive({ state: "closed", request: "open for writing" })
      }
      if (journal.head() === 0) {
        const id = options.sessionId ?? crypto.randomUUID()
        yield* commit([{ _tag: "session.created", sessionId: id, time: yield* now }])
        state.id = id
      }
      fence = yield* journal.acquireLease(options.owner ?? "keel", { takeover: options.takeover ?? false, time: yield* now })
      replay(
        journal.path,
        [{ position: fence.head, epoch: fence.epoch, events: [{ _tag: "lease.acquired", epoch: fence.epoch, owner: options.owner ?? "keel", time: 0 }] }],
        state
      )
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
      path: (branch) => headOf(branch).pipe(Effect.flatMap((head) => readEntries(state.tree.pathTo(head)))),
      append: (type, payload) =>
        Effect.gen(function* () {
          yield* requireActive("append")
          yield* name(type, "an entry type", Limits.entryTypeLengthMax)
          if (!isJson(payload)) return yield* new InvalidRequest({ reason: "an entry payload must be JSON data" })
          const time = yield* now
          const parentId = state.tree.branches.get(state.tree.active) as number
          const event: Event = { _tag: "entry.appended", branch: state.tree.active, parentId, type, time, payload }
          const id = yield* commit([event])
          return { id, parentId, type, at: time, payload, label: undefined }
        }),
      fork: (at, branch) =>
        Effect.gen(function* () {
          yield* requireActive("fork")
          yield* name(branch, "a branch name", Limits.branchNameLengthMax)
          if (at !== 0 && !state.tree.isEntry(at)) return yield* new UnknownEntry({ entryId: at, head: state.tree.head })
          if (state.tree.branches.has(branch)) return yield* new BranchExists({ branch })
          if (state.tree.branches.size >= Limits.branchesMax) return yield* new InvalidRequest({ reason: `at most ${Limits.branchesMax} branches` })
          yield* commit([{ _tag: "branch.forked", branch, from: at, time: yield* now }])
        }),
      switchTo: (branch) =>
        Effect.gen(function* () {
          yield* requireActive("switch branch")
          if (!state.tree.branches.has(branch)) return yield* unknownBranch(branch)
          yield* commit([{ _tag: "branch.switched", branch, time: yield* now }])
        }),
      label: (id, label) =>
        Effect.gen(function* () {
          yield* requireActive("label")
          if (!state.tree.isEntry(id)) return yield* new UnknownEntry({ entryId: id, head: state.tree.head })
          if (label.length > Limits.labelLengthMax) return yield* new InvalidRequest({ reason: `a label has at most ${Limits.labelLengthMax} characters` })
          yield* commit([{ _tag: "entry.labelled", entryId: id, label, time: yield* now }])
        }),
      suspend: Effect.gen(function* () {
        yield* requireActive("suspend")
        yield* commit([{ _tag: "session.suspended", time: yield* now }])
        yield* saveCheckpoint.pipe(Effect.ignore)
        yield* journal.releaseLease
      }),
      close: Effect.gen(function* () {
        if (statusOf(state.snapshot) === "suspended" && writer) {
          return yield* new SessionNotActive({ state: "suspended", request: "close (re-open it first)" })
        }
        yield* requireActive("close")
        yield* commit([{ _tag: "session.closed", time: yield* now }])
        yield* saveCheckpoint.pipe(Effect.ignore)
        yield* journal.releaseLease
      }),
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

/** A session in memory (tests); pass the same MemoryStore again to "reopen" it by replay. */
export const openMemory = (
  store?: MemoryStore,
  options: SessionOptions & { readonly writer?: boolean } = {}
): Effect.Effect<Session, OpenError | SessionLocked | WriteError> =>
  Effect.flatMap(openMemoryJournal(store, options.migrations), (journal) => open(journal, options))
