/**
 * The implementation side of the Session refinement tests: the real file
 * journal in a temp folder, driven by the actions of spec/Session.tla, and the
 * refinement mapping from what is on disk (and in the writers' handles) to
 * the model's state (models/session.ts).
 *
 * One Journal handle per writer stands for one process's view. Crash closes
 * every handle and cuts the segment file where a power loss could have left
 * it: after the durable records plus `k` of the written-but-unflushed ones,
 * optionally followed by a torn partial frame.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope } from "effect"
import { canonical, None, type SessionRecord, type SessionState, type Writer } from "../../models/session.ts"
import type { Event } from "../../src/Event.ts"
import { encodeFrame, frameAt, frameHeaderBytes, headerBytes } from "../../src/journal/Codec.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { initialSnapshot, statusOf, step } from "../../src/session/SessionMachine.ts"
import { Tree } from "../../src/session/Tree.ts"

interface Handle {
  readonly journal: Journal.JournalShape
  readonly scope: Scope.Closeable
  readonly tree: Tree
}

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/** Impl record → model record (the refinement mapping of one journal record). */
export function toModelRecord(c: Journal.Committed): SessionRecord | undefined {
  const e = c.event
  switch (e._tag) {
    case "lease.acquired":
      return { type: "lease", epoch: e.epoch }
    case "entry.appended":
      return { type: "entry", id: c.position, parent: e.parentId, branch: e.branch, epoch: c.epoch }
    case "branch.forked":
      return { type: "fork", branch: e.branch, at: e.from, epoch: c.epoch }
    case "branch.switched":
      return { type: "switch", branch: e.branch, epoch: c.epoch }
    case "session.suspended":
      return { type: "suspend", epoch: c.epoch }
    case "session.closed":
      return { type: "close", epoch: c.epoch }
    default:
      return undefined
  }
}

export class Impl {
  readonly dir: string
  private readonly handles = new Map<Writer, Handle>()
  /** Sequenced, not yet acknowledged: the durability Effect and the model record of each (the model's buf). */
  private pending: Array<{ durable: Effect.Effect<Journal.Fence, unknown>; record: SessionRecord; position: number; event: Event }> = []
  private acked: Array<SessionRecord> = []
  private expired = false
  private up = true

  private constructor(dir: string) {
    this.dir = dir
  }

  /** A fresh journal folder: one empty segment (what a first writer creates), no records, no lease. */
  static async make(): Promise<Impl> {
    const impl = new Impl(fs.mkdtempSync(path.join(os.tmpdir(), "keel-refinement-")))
    await run(Effect.scoped(Journal.openFile(impl.dir, { owner: "creator" })))
    return impl
  }

  private segment(): string {
    const dir = path.join(this.dir, "segments")
    const names = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((n) => n.endsWith(".seg"))
          .sort()
      : []
    return path.join(dir, names[names.length - 1] ?? "none")
  }

  private async open(w: Writer): Promise<Handle> {
    const scope = await run(Scope.make())
    const journal = await run(Journal.openFile(this.dir, { owner: w, takeover: true }).pipe(Scope.provide(scope)))
    const tree = new Tree()
    for (const c of await run(journal.read(1))) tree.apply(c.position, c.event)
    return { journal, scope, tree }
  }

  private async drop(w: Writer): Promise<void> {
    const handle = this.handles.get(w)
    if (handle === undefined) return
    this.handles.delete(w)
    await run(Scope.close(handle.scope, Exit.void))
  }

  /** All records in the file (a reader's view; a reader never needs the lease) and whether it ends torn. */
  async onDisk(): Promise<{ records: Array<SessionRecord>; torn: boolean }> {
    if (!fs.existsSync(path.join(this.dir, "segments"))) return { records: [], torn: false }
    const dir = this.dir
    return run(
      Effect.scoped(
        Effect.gen(function* () {
          const reader = yield* Journal.openFile(dir, { writer: false })
          const committed = yield* reader.read(1)
          const records = committed.flatMap((c) => {
            const r = toModelRecord(c)
            return r === undefined ? [] : [r]
          })
          return { records, torn: reader.recovery.tornTail !== null }
        })
      )
    )
  }

  /** The refinement mapping: implementation state → model state. */
  async abstract(writers: ReadonlyArray<Writer>): Promise<SessionState> {
    const { records, torn } = await this.onDisk()
    // Unacknowledged records may be in the file (written, not fsynced) or still queued for the next group commit.
    // Position p is records[p - 1]: the journal is driven from position 1 with no other records.
    const durable = this.pending.length === 0 ? records.length : Math.min(records.length, (this.pending[0] as { position: number }).position - 1)
    const unflushed = records.slice(durable)
    const buf = this.pending.map((p) => p.record)
    if (canonical(unflushed) !== canonical(buf.slice(0, unflushed.length))) {
      throw new Error(`the file holds unacknowledged records that are not a prefix of what was sequenced: ${canonical(unflushed)}`)
    }
    const lock = path.join(this.dir, "writer.lock")
    const lockOwner = fs.existsSync(lock) ? (JSON.parse(fs.readFileSync(lock, "utf8")) as { owner: string }).owner : None
    return {
      log: records.slice(0, durable),
      buf,
      torn,
      epoch: records.reduce((max, r) => (r.type === "lease" ? Math.max(max, r.epoch) : max), 0),
      holder: this.up && !this.expired ? lockOwner : None,
      wEpoch: Object.fromEntries(writers.map((w) => [w, this.handles.get(w)?.journal.epoch() ?? 0])),
      acked: this.acked,
      up: this.up
    }
  }

  async AcquireLease(w: Writer): Promise<void> {
    await this.drop(w)
    const handle = await this.open(w)
    this.handles.set(w, handle)
    const fence = await run(handle.journal.acquireLease(w, { takeover: true }))
    handle.tree.apply(fence.head, { _tag: "lease.acquired", epoch: fence.epoch, owner: w, time: 0 })
    this.expired = false
    this.acked = (await this.onDisk()).records
  }

  private write(w: Writer, event: Event): void {
    const handle = this.handles.get(w)
    if (handle === undefined) throw new Error(`${w} has no handle`)
    const j = handle.journal
    const sequenced = j.sequence([event], { epoch: j.epoch(), head: j.head() })
    if (!("durable" in sequenced)) throw new Error(`a write the model allows was refused: ${sequenced.message}`)
    handle.tree.apply(sequenced.fence.head, event)
    const record = toModelRecord({ position: sequenced.fence.head, epoch: sequenced.fence.epoch, event })
    if (record === undefined) throw new Error(`${event._tag} has no model record`)
    this.pending.push({ durable: sequenced.durable, record, position: sequenced.fence.head, event })
  }

  Append(w: Writer, b: string): void {
    const parentId = this.handles.get(w)?.tree.branches.get(b)
    if (parentId === undefined) throw new Error(`branch ${b} unknown to ${w}`)
    this.write(w, { _tag: "entry.appended", branch: b, parentId, type: "m", time: 0, payload: null })
  }

  Fork(w: Writer, b: string, at: number): void {
    this.write(w, { _tag: "branch.forked", branch: b, from: at, time: 0 })
  }

  Switch(w: Writer, b: string): void {
    this.write(w, { _tag: "branch.switched", branch: b, time: 0 })
  }

  async Flush(): Promise<void> {
    for (const { durable } of this.pending) await run(durable)
    this.pending = []
    this.acked = (await this.onDisk()).records
  }

  /** A writer whose lease was taken over tries to write: refused with StaleWriter, and the file does not change. */
  async StaleWrite(w: Writer): Promise<void> {
    const handle = this.handles.get(w)
    if (handle === undefined) throw new Error(`${w} has no handle`)
    const before = fs.readFileSync(this.segment())
    const j = handle.journal
    const event: Event = { _tag: "entry.appended", branch: "main", parentId: handle.tree.branches.get("main") ?? 0, type: "m", time: 0, payload: "stale" }
    const exit = await Effect.runPromiseExit(j.append([event], { epoch: j.epoch(), head: j.head() }))
    if (Exit.isSuccess(exit)) throw new Error("a stale writer's append was accepted")
    const error = exit.cause.toString()
    if (!error.includes("StaleWriter")) throw new Error(`stale write failed with ${error}, not StaleWriter`)
    if (!fs.readFileSync(this.segment()).equals(before)) throw new Error("a stale writer changed the file")
  }

  /** The holder writes `session.suspended` (durably, alone) and lets go of the lease: what `Session.suspend` does. */
  async Suspend(w: Writer): Promise<void> {
    await this.release(w, { _tag: "session.suspended", time: 0 })
  }

  /** The holder writes `session.closed` and lets go: what `Session.close` does. */
  async Close(w: Writer): Promise<void> {
    await this.release(w, { _tag: "session.closed", time: 0 })
  }

  private async release(w: Writer, event: Event): Promise<void> {
    const handle = this.handles.get(w)
    if (handle === undefined) throw new Error(`${w} has no handle`)
    const j = handle.journal
    await run(j.append([event], { epoch: j.epoch(), head: j.head() }))
    await run(j.releaseLease)
    await this.drop(w)
    this.acked = (await this.onDisk()).records
  }

  /** The lifecycle state the Session machine folds from the records on disk and in flight; undefined if it refuses one. */
  async machineStatus(): Promise<string | undefined> {
    const dir = this.dir
    const committed = await run(Effect.scoped(Effect.flatMap(Journal.openFile(dir, { writer: false }), (reader) => reader.read(1))))
    let snapshot = initialSnapshot()
    const events: Array<Event> = committed.map((c) => c.event)
    // Positions are 1-based and contiguous: a pending batch past the file's end is still queued in memory.
    for (const p of this.pending) if (p.position > committed.length) events.push(p.event)
    for (const event of events) {
      const next = step(snapshot, event)
      if (next === undefined) return undefined
      snapshot = next
    }
    return statusOf(snapshot)
  }

  Expire(): void {
    this.expired = true
  }

  /** A power loss: the durable records and `k` of the unflushed ones reach the disk, perhaps followed by a torn frame. */
  async Crash(k: number, torn: boolean): Promise<void> {
    // Let queued frames reach the file, then cut as a power loss would: everything not acknowledged may be lost.
    const unacked = this.pending.length
    for (const { durable } of this.pending) await Effect.runPromiseExit(durable)
    const file = this.segment()
    const bytes = fs.readFileSync(file)
    const ends: Array<number> = []
    for (let at = headerBytes; at < bytes.length; ) {
      const frame = frameAt(bytes, at)
      if (frame.kind !== "frame") throw new Error(`unexpected ${frame.kind} at ${at} before the crash`)
      at += frameHeaderBytes + frame.length
      ends.push(at)
    }
    const durable = ends.length - unacked
    for (const w of [...this.handles.keys()]) await this.drop(w)
    this.pending = []
    const keep = durable + k
    const cut = keep === 0 ? headerBytes : (ends[keep - 1] as number)
    let kept = bytes.subarray(0, cut)
    if (torn) {
      const next =
        keep < ends.length ? bytes.subarray(cut, ends[keep]) : encodeFrame({ position: 99, epoch: 1, events: [{ _tag: "session.suspended", time: 0 }] })
      kept = Buffer.concat([kept, next.subarray(0, Math.max(1, next.length >> 1))])
    }
    fs.writeFileSync(file, kept)
    fs.rmSync(path.join(this.dir, "checkpoint"), { force: true })
    this.expired = false
    this.up = false
  }

  /** Reopening as a writer cuts the torn tail; the recovering process then exits. */
  async Recover(): Promise<void> {
    const handle = await this.open("recovery")
    await run(Scope.close(handle.scope, Exit.void))
    this.up = true
  }

  /** A second writer while the lease is held: SessionLocked, nothing changes (not a model action). */
  async SecondWriter(): Promise<void> {
    const exit = await Effect.runPromiseExit(Effect.scoped(Journal.openFile(this.dir, { owner: "intruder" })))
    if (Exit.isSuccess(exit) || !exit.cause.toString().includes("SessionLocked")) throw new Error(`second writer was not refused: ${exit}`)
  }

  async dispose(): Promise<void> {
    for (const w of [...this.handles.keys()]) await this.drop(w)
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}
