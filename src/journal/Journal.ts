/**
 * The write-ahead journal: an append-only log of events, in atomic batches,
 * fenced by the writer's lease epoch and expected head.
 *
 * When to use: every state change in Keel is an event appended here first;
 * the live state is a fold of the journal (replay = recovery).
 *
 * Details:
 * - `append(events, fence)` writes all events of the batch or none, and only
 *   if `fence` (the writer's epoch and the head it expects) still holds; else
 *   `StaleWriter`, with nothing written. It resolves once the batch is durable.
 * - `read(from)` returns durable events only: nothing half-written is read.
 * - `acquireLease(owner)` takes the single-writer lock and appends
 *   `lease.acquired` with the next epoch; every earlier holder becomes stale.
 * - `checkpoint(data)` stores the frame index and a caller's summary (the
 *   session tree) so that opening a large journal skips the scan. The log is
 *   the only truth: a checkpoint that no longer matches it is ignored.
 *
 * @example
 *   const journal = yield* Journal
 *   const fence = yield* journal.acquireLease("me")
 *   yield* journal.append([{ _tag: "session.suspended", time: 0 }], fence)
 */
import { Context, Effect, Layer, type Scope } from "effect"
import type { Event } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { crc32c } from "../internal/crc32c.ts"
import { Limits } from "../Limits.ts"
import { type Batch, decodePayloadBytes, encodeFrame, type Migrations, validateEvents } from "./Codec.ts"
import { FileStore, type FileStoreOptions, ForeignWrite } from "./FileStore.ts"
import {
  JournalAppendRejected,
  JournalCorrupt,
  JournalIOError,
  type JournalNotFound,
  type JournalReadError,
  JournalRecordInvalid,
  JournalVersionUnsupported,
  SessionLocked,
  StaleWriter
} from "./JournalError.ts"
import { MemoryStore } from "./MemoryStore.ts"
import type { Location, ScannedFrame, Store, StoreMark } from "./Store.ts"

/** What a writer believes: its lease epoch and the last position it has seen. */
export interface Fence {
  readonly epoch: number
  readonly head: number
}

/** One durable event and where it sits. */
export interface Committed {
  readonly position: number
  readonly epoch: number
  readonly event: Event
}

/** What opening found: the caller's checkpointed summary (if still valid) and the batches after it. */
export interface Recovery {
  readonly checkpoint: { readonly head: number; readonly data: unknown } | undefined
  readonly tail: ReadonlyArray<Batch>
  readonly tornTail: { readonly offset: number; readonly reason: string } | null
}

/** A batch that passed its fence and holds its positions; `durable` completes once it is on disk. */
export interface Sequenced {
  readonly fence: Fence
  readonly durable: Effect.Effect<Fence, StaleWriter | JournalIOError>
}

export interface JournalShape {
  readonly path: string
  /** The last position accepted (sequenced); appends must name it in their fence. */
  readonly head: () => number
  /** The last position known durable; `read` never goes past it. */
  readonly durableHead: () => number
  /** The current lease epoch (0 = no lease ever taken). */
  readonly epoch: () => number
  readonly recovery: Recovery
  readonly append: (events: ReadonlyArray<Event>, fence: Fence) => Effect.Effect<Fence, StaleWriter | JournalAppendRejected | JournalIOError>
  /** The synchronous half of `append`, for callers that must fold the batch in the same tick they sequence it (Session). */
  readonly sequence: (events: ReadonlyArray<Event>, fence: Fence) => Sequenced | StaleWriter | JournalAppendRejected | JournalIOError
  readonly read: (from: number, to?: number) => Effect.Effect<ReadonlyArray<Committed>, JournalReadError>
  /**
   * The events at `positions` (any order, repeats allowed), in that order,
   * with one store read per group of frames: each frame checksummed and its
   * events validated, once however many of them are asked. Every position must
   * be durable (1..durableHead); asking for another one is a bug (a defect).
   */
  readonly readMany: (positions: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Committed>, JournalReadError>
  readonly acquireLease: (
    owner: string,
    options?: { readonly takeover?: boolean; readonly time?: number }
  ) => Effect.Effect<Fence, SessionLocked | StaleWriter | JournalAppendRejected | JournalIOError>
  readonly releaseLease: Effect.Effect<void>
  readonly checkpoint: (data: unknown) => Effect.Effect<void, JournalIOError>
}

export class Journal extends Context.Service<Journal, JournalShape>()("keel/Journal") {}

export interface OpenOptions extends FileStoreOptions {
  readonly migrations?: Migrations
  /**
   * Scan and checksum every frame on open, ignoring the checkpoint (default
   * false). Without it, frames a valid checkpoint vouches for are checked
   * when they are read, not on open: that is what makes a large session open
   * in milliseconds.
   */
  readonly verify?: boolean
}

export type OpenError = JournalReadError | JournalNotFound | SessionLocked

const checkpointVersion = 1
/** Frames one store read covers at most (`read`, `readMany`): bounds the bytes held at once. */
const readFramesMax = 1024

interface CheckpointFile {
  readonly v: number
  readonly head: number
  readonly epoch: number
  readonly mark: StoreMark
  /** Frame index as parallel arrays: first position, event count, segment, offset, length. */
  readonly frames: readonly [Array<number>, Array<number>, Array<number>, Array<number>, Array<number>]
  readonly data: unknown
}

/** The frame index: which frame holds which positions, in parallel arrays (compact for 10^5+ frames). */
class FrameIndex {
  readonly first: Array<number> = []
  readonly count: Array<number> = []
  readonly segment: Array<number> = []
  readonly offset: Array<number> = []
  readonly length: Array<number> = []

  push(first: number, count: number, location: Location): void {
    const n = this.first.length
    assert(n === 0 || first === (this.first[n - 1] as number) + (this.count[n - 1] as number), "PrefixRecoveryInv", "frames out of order")
    this.first.push(first)
    this.count.push(count)
    this.segment.push(location.segment)
    this.offset.push(location.offset)
    this.length.push(location.length)
  }

  /** The frame holding `position` (binary search), or -1. */
  find(position: number): number {
    let lo = 0
    let hi = this.first.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const first = this.first[mid] as number
      if (position < first) hi = mid - 1
      else if (position >= first + (this.count[mid] as number)) lo = mid + 1
      else return mid
    }
    return -1
  }

  location(i: number): Location {
    return { segment: this.segment[i] as number, offset: this.offset[i] as number, length: this.length[i] as number }
  }

  static from(arrays: CheckpointFile["frames"]): FrameIndex {
    const [first, count, segment, offset, length] = arrays
    assert(
      first.length === count.length && count.length === segment.length && segment.length === offset.length && offset.length === length.length,
      "PrefixRecoveryInv",
      "checkpoint frame arrays differ in length"
    )
    // Adopt the parsed arrays: no copy, and no spread (which overflows the stack past ~10^5 frames).
    return Object.assign(Object.create(FrameIndex.prototype) as FrameIndex, { first, count, segment, offset, length })
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function parseCheckpoint(bytes: Uint8Array | undefined): CheckpointFile | undefined {
  if (bytes === undefined || bytes.length < 4) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4)
  if (view.getUint32(0, true) !== crc32c(bytes.subarray(4))) return undefined
  try {
    const file = JSON.parse(decoder.decode(bytes.subarray(4))) as CheckpointFile
    return file.v === checkpointVersion ? file : undefined
  } catch {
    return undefined
  }
}

/** Decodes scanned frames into batches, checking that positions continue and epochs only grow. */
function decodeFrames(
  path: string,
  frames: ReadonlyArray<ScannedFrame>,
  migrations: Migrations,
  head: number,
  epoch: number
): { batches: Array<Batch>; head: number; epoch: number } {
  const batches: Array<Batch> = []
  for (const frame of frames) {
    const decoded = decodePayloadBytes(frame.payload, migrations)
    const offset = frame.location.offset
    if ("kind" in decoded) {
      if (decoded.kind === "version") throw new JournalVersionUnsupported({ path, version: Number(decoded.reason), supported: 1 })
      throw new JournalRecordInvalid({ path, offset, reason: decoded.reason })
    }
    if (decoded.position !== head + 1) {
      throw new JournalCorrupt({ path, offset, reason: `frame starts at position ${decoded.position}, expected ${head + 1}` })
    }
    const lease = decoded.events.find((e) => e._tag === "lease.acquired")
    const nextEpoch = lease?._tag === "lease.acquired" ? lease.epoch : epoch
    if (decoded.epoch !== nextEpoch || nextEpoch < epoch || (lease !== undefined && nextEpoch !== epoch + 1)) {
      throw new JournalRecordInvalid({ path, offset, reason: `frame epoch ${decoded.epoch} does not follow epoch ${epoch}` })
    }
    head += decoded.events.length
    epoch = nextEpoch
    batches.push(decoded)
  }
  return { batches, head, epoch }
}

/** Checks a batch against the journal's rules before anything is written; the reason, or undefined. */
function batchProblem(events: ReadonlyArray<Event>, head: number, epoch: number): string | undefined {
  const problem = validateEvents(events)
  if (problem !== undefined) return problem
  for (const [i, event] of events.entries()) {
    if (event._tag === "lease.acquired" && (events.length !== 1 || event.epoch !== epoch + 1)) {
      return `lease.acquired must be alone in its batch with epoch ${epoch + 1}`
    }
    if (event._tag === "session.created" && head + i !== 0) return "session.created must be the first record"
  }
  return undefined
}

/**
 * Builds a Journal over an opened store. Shared by the memory and file layers
 * so fencing, validation and reading are one code path for both.
 */
function fromStore(
  store: Store,
  frames: ReadonlyArray<ScannedFrame>,
  torn: Recovery["tornTail"],
  trusted: CheckpointFile | undefined,
  migrations: Migrations
): JournalShape {
  const index = trusted !== undefined ? FrameIndex.from(trusted.frames) : new FrameIndex()
  const decoded = decodeFrames(store.path, frames, migrations, trusted?.head ?? 0, trusted?.epoch ?? 0)
  for (const [i, frame] of frames.entries()) {
    const batch = decoded.batches[i] as Batch
    index.push(batch.position, batch.events.length, frame.location)
  }
  let head = decoded.head
  let durableHead = head
  let epoch = decoded.epoch
  let poisoned: StaleWriter | JournalIOError | undefined

  const stale = (fence: Fence) =>
    new StaleWriter({ path: store.path, expectedEpoch: fence.epoch, actualEpoch: epoch, expectedHead: fence.head, actualHead: head })

  /**
   * Checks the fence and the batch, then sequences the batch synchronously (so
   * the next caller's fence sees it) and starts the write. Returns the error,
   * or the new fence and an Effect that completes once the batch is durable.
   */
  const sequence = (events: ReadonlyArray<Event>, fence: Fence): Sequenced | StaleWriter | JournalAppendRejected | JournalIOError => {
    if (poisoned !== undefined) return poisoned._tag === "StaleWriter" ? stale(fence) : poisoned
    if (fence.epoch !== epoch || fence.head !== head) return stale(fence)
    const problem = batchProblem(events, head, epoch)
    if (problem !== undefined) return new JournalAppendRejected({ reason: problem })
    const lease = events[0]?._tag === "lease.acquired" ? events[0].epoch : epoch
    const position = head + 1
    const frame = encodeFrame({ position, epoch: lease, events })
    if (frame.length > Limits.frameBytesMax + 12) {
      return new JournalAppendRejected({ reason: `batch encodes to ${frame.length} bytes, over ${Limits.frameBytesMax}` })
    }
    head += events.length
    epoch = lease
    const result: Fence = { epoch, head }
    const written = store.append(frame, position).then(
      (location) => {
        index.push(position, events.length, location)
        durableHead = position + events.length - 1
      },
      (error: unknown) => {
        // The store failed or another process wrote: what we sequenced is not on disk. Fail-stop.
        poisoned ??=
          error instanceof ForeignWrite
            ? stale(fence)
            : error instanceof JournalIOError
              ? error
              : new JournalIOError({ path: store.path, operation: "append", reason: String(error) })
        throw poisoned._tag === "StaleWriter" ? stale(fence) : poisoned
      }
    )
    written.catch(() => undefined) // the failure is kept in `poisoned`; never an unhandled rejection
    const durable = Effect.callback<Fence, StaleWriter | JournalIOError>((resume) => {
      written.then(
        () => resume(Effect.succeed(result)),
        (error: StaleWriter | JournalIOError) => resume(Effect.fail(error))
      )
    })
    return { fence: result, durable }
  }

  const append = (events: ReadonlyArray<Event>, fence: Fence): Effect.Effect<Fence, StaleWriter | JournalAppendRejected | JournalIOError> =>
    Effect.suspend(() => {
      const sequenced = sequence(events, fence)
      return "durable" in sequenced ? sequenced.durable : Effect.fail(sequenced)
    })

  /**
   * Frames `frames` (indices into the frame index) with one store read: each
   * checksummed by the store, then decoded with its events validated (the
   * pair of checks at the boundary), in the order given.
   */
  const readFrames = (frames: ReadonlyArray<number>): Array<Batch> => {
    const payloads = store.readPayloads(frames.map((i) => index.location(i)))
    return frames.map((i, k) => {
      const batch = decodePayloadBytes(payloads[k] as Uint8Array, migrations)
      if ("kind" in batch) throw new JournalRecordInvalid({ path: store.path, offset: index.offset[i] as number, reason: batch.reason })
      if (batch.position !== index.first[i]) {
        assert(false, "PrefixRecoveryInv", `frame at ${index.offset[i]} moved: ${batch.position} != ${index.first[i]}`)
      }
      return batch
    })
  }

  const readError = (e: unknown): JournalReadError => {
    if (e instanceof JournalCorrupt || e instanceof JournalRecordInvalid || e instanceof JournalIOError || e instanceof JournalVersionUnsupported) return e
    if (e instanceof Error && e.name === "InvariantViolation") throw e
    return new JournalIOError({ path: store.path, operation: "read", reason: String(e) })
  }

  const read = (from: number, to?: number): Effect.Effect<ReadonlyArray<Committed>, JournalReadError> =>
    Effect.try({
      try: () => {
        const last = Math.min(to ?? durableHead, durableHead)
        const out: Array<Committed> = []
        const first = index.find(Math.max(from, 1))
        if (first < 0 || last < Math.max(from, 1)) return out
        const end = index.find(last)
        // In groups of frames, each group one store read: the bytes held at once stay bounded.
        for (let i = first; i <= end; i += readFramesMax) {
          const frames = Array.from({ length: Math.min(readFramesMax, end - i + 1) }, (_, k) => i + k)
          for (const batch of readFrames(frames)) {
            for (const [k, event] of batch.events.entries()) {
              const position = batch.position + k
              if (position >= from && position <= last) out.push({ position, epoch: batch.epoch, event })
            }
          }
        }
        return out
      },
      catch: readError
    })

  const readMany = (positions: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<Committed>, JournalReadError> =>
    Effect.try({
      try: () => {
        const out = new Array<Committed>(positions.length)
        for (let from = 0; from < positions.length; from += readFramesMax) {
          const to = Math.min(positions.length, from + readFramesMax)
          // Each frame once, however many of the positions it holds.
          const frames: Array<number> = []
          const slotOf = new Map<number, number>()
          const slots: Array<number> = []
          for (let k = from; k < to; k++) {
            const position = positions[k] as number
            if (!(Number.isSafeInteger(position) && position >= 1 && position <= durableHead)) {
              assert(false, "PrefixRecoveryInv", `readMany of position ${position}, outside the durable log 1..${durableHead}`)
            }
            const i = index.find(position)
            let slot = slotOf.get(i)
            if (slot === undefined) {
              slot = frames.length
              slotOf.set(i, slot)
              frames.push(i)
            }
            slots.push(slot)
          }
          const batches = readFrames(frames)
          for (let k = from; k < to; k++) {
            const batch = batches[slots[k - from] as number] as Batch
            const position = positions[k] as number
            out[k] = { position, epoch: batch.epoch, event: batch.events[position - batch.position] as Event }
          }
        }
        return out
      },
      catch: readError
    })

  const acquireLease: JournalShape["acquireLease"] = (owner, options = {}) =>
    Effect.try({
      try: () => store.lock(owner, options.takeover ?? false),
      catch: (e) =>
        e instanceof SessionLocked || e instanceof JournalIOError ? e : new JournalIOError({ path: store.path, operation: "lock", reason: String(e) })
    }).pipe(Effect.andThen(Effect.suspend(() => append([{ _tag: "lease.acquired", epoch: epoch + 1, owner, time: options.time ?? 0 }], { epoch, head }))))

  const checkpoint = (data: unknown): Effect.Effect<void, JournalIOError> =>
    Effect.try({
      try: () => {
        // A checkpoint only covers durable frames; with appends in flight it is skipped (it is an optimisation).
        if (durableHead !== head) return
        const file: CheckpointFile = {
          v: checkpointVersion,
          head,
          epoch,
          mark: store.mark(),
          frames: [index.first, index.count, index.segment, index.offset, index.length],
          data
        }
        const json = encoder.encode(JSON.stringify(file))
        const bytes = new Uint8Array(4 + json.length)
        bytes.set(json, 4)
        new DataView(bytes.buffer).setUint32(0, crc32c(json), true)
        store.writeCheckpoint(bytes)
      },
      catch: (e) => new JournalIOError({ path: store.path, operation: "checkpoint", reason: String(e) })
    })

  return {
    path: store.path,
    head: () => head,
    durableHead: () => durableHead,
    epoch: () => epoch,
    recovery: {
      checkpoint: trusted !== undefined ? { head: trusted.head, data: trusted.data } : undefined,
      tail: decoded.batches,
      tornTail: torn
    },
    append,
    sequence,
    read,
    readMany,
    acquireLease,
    releaseLease: Effect.sync(() => store.unlock()),
    checkpoint
  }
}

function isTyped(e: unknown): e is OpenError {
  return e instanceof Error && "_tag" in e && typeof (e as { _tag: unknown })._tag === "string" && (e as { _tag: string })._tag !== "InvariantViolation"
}

/**
 * Opens the file journal in `dir` (created if missing). As a writer it takes
 * the lock and cuts a torn tail; as a reader (`writer: false`) it changes nothing.
 * Closed with the scope.
 */
export const openFile = (dir: string, options: OpenOptions = {}): Effect.Effect<JournalShape, OpenError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const checkpoint = options.verify === true ? undefined : parseCheckpoint(FileStore.readCheckpoint(dir))
        const opened = FileStore.open(dir, checkpoint !== undefined ? { ...options, trusted: checkpoint.mark } : options)
        try {
          const torn = opened.torn === null ? null : { offset: opened.torn.offset, reason: opened.torn.reason }
          const journal = fromStore(opened.store, opened.frames, torn, opened.trustedMatched ? checkpoint : undefined, options.migrations ?? new Map())
          return { journal, store: opened.store }
        } catch (e) {
          opened.store.close()
          throw e
        }
      },
      catch: (e) => {
        if (isTyped(e)) return e
        if (e instanceof Error && e.name === "InvariantViolation") throw e
        return new JournalIOError({ path: dir, operation: "open", reason: String(e) })
      }
    }),
    ({ store }) => Effect.sync(() => store.close())
  ).pipe(Effect.map(({ journal }) => journal))

/** A journal in memory over `store` (a fresh one by default); reopening the same store replays it. */
export const openMemory = (store: MemoryStore = new MemoryStore(), migrations: Migrations = new Map()): Effect.Effect<JournalShape, OpenError> =>
  Effect.try({
    try: () => {
      const checkpoint = parseCheckpoint(store.readCheckpoint())
      const frames = store.scan()
      const trusted = checkpoint !== undefined && checkpoint.head <= frames.length ? checkpoint : undefined
      return fromStore(store, trusted !== undefined ? frames.slice(trusted.frames[0].length) : frames, null, trusted, migrations)
    },
    catch: (e) => {
      if (isTyped(e)) return e
      throw e
    }
  })

export const layerMemory: Layer.Layer<Journal, OpenError> = Layer.effect(Journal, openMemory())
export const layerFile = (dir: string, options: OpenOptions = {}): Layer.Layer<Journal, OpenError> => Layer.effect(Journal, openFile(dir, options))
