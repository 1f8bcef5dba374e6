/**
 * The embedded default store: a folder of segment files.
 *
 *   <dir>/segments/<first position, 20 digits>.seg   header + frames (Codec.ts)
 *   <dir>/writer.lock                                the single-writer lock
 *
 * Durable append = write + fdatasync, with **group commit**: while one fsync
 * is in flight, new frames queue; when it returns they are written with one
 * write and covered by one fsync, so N concurrent appenders share the cost.
 * A failed fsync closes the store for good (fail-stop: after a failed fsync
 * the kernel may have dropped the dirty pages, so nothing later is trusted).
 *
 * Gotcha: uses `node:fs`, which Node, Bun and Deno all provide; the rest of
 * the core (codec, journal, session) touches no runtime-specific API.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { assert } from "../internal/assert.ts"
import { Limits } from "../Limits.ts"
import { decodeHeader, encodeHeader, frameAt, frameHeaderBytes, headerBytes } from "./Codec.ts"
import { JournalCorrupt, JournalIOError, JournalNotFound, JournalVersionUnsupported, SessionLocked } from "./JournalError.ts"
import type { Location, ScannedFrame, Store, StoreMark } from "./Store.ts"

export type Durability = "fsync" | "os"

export interface FileStoreOptions {
  /** "fsync" (default): an append resolves once on disk. "os": once handed to the OS (survives a process crash, not a power cut). */
  readonly durability?: Durability
  /** Create the folder if it does not exist (default true). */
  readonly create?: boolean
  /** Open for writing: take the lock and cut a torn tail. Readers pass false and never need the lock. */
  readonly writer?: boolean
  /** Who holds the lock (shown to a refused second writer). */
  readonly owner?: string
  /** Break a lock held by another live owner (an operator's decision; its next write is refused by fencing). */
  readonly takeover?: boolean
  /** A prefix a checkpoint vouches for: the scan starts there if the mark still matches the files. */
  readonly trusted?: StoreMark
  readonly segmentBytesMax?: number
}

export interface FileStoreOpened {
  readonly store: FileStore
  /** Frames after the trusted mark (or all frames when the mark did not match). */
  readonly frames: ReadonlyArray<ScannedFrame>
  readonly trustedMatched: boolean
  /** The torn tail that was found (and, for a writer, cut), if any. */
  readonly torn: { readonly segment: number; readonly offset: number; readonly reason: string } | null
}

/** Raised by `append` when the file grew under us: another writer appended. */
export class ForeignWrite extends Error {
  override readonly name = "ForeignWrite"
}

interface Pending {
  readonly frame: Uint8Array
  readonly firstPosition: number
  readonly resolve: (location: Location) => void
  readonly reject: (error: unknown) => void
}

/**
 * `readPayloads` reads neighbouring frames with one read when at most this
 * many bytes lie between them (reading them costs less than another read,
 * and a cold read backwards would otherwise fetch a page at a time).
 */
const readGapBytesMax = 32 * 1024
/** Bytes one read of `readPayloads` covers at most (a frame bigger than this is read alone). */
const readSpanBytesMax = 1024 * 1024

const segmentName = (firstPosition: number) => `${String(firstPosition).padStart(20, "0")}.seg`
const segmentsDir = (dir: string) => nodePath.join(dir, "segments")
const lockPath = (dir: string) => nodePath.join(dir, "writer.lock")

function ioError(path: string, operation: string, e: unknown): JournalIOError {
  return new JournalIOError({ path, operation, reason: e instanceof Error ? e.message : String(e) })
}

function listSegments(dir: string): Array<number> {
  const names = fs.readdirSync(segmentsDir(dir))
  const firsts: Array<number> = []
  for (const name of names) {
    const match = /^(\d{20})\.seg$/.exec(name)
    if (match?.[1] !== undefined) firsts.push(Number(match[1]))
  }
  return firsts.sort((a, b) => a - b)
}

function fsyncDir(dir: string): void {
  // Makes a created or renamed file's name durable. Some runtimes cannot open a directory; then the OS decides.
  let fd: number | undefined
  try {
    fd = fs.openSync(dir, "r")
    fs.fsyncSync(fd)
  } catch {
    // best effort, see above
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

export class FileStore implements Store {
  readonly path: string
  private readonly durability: Durability
  private readonly segmentBytesMax: number
  private fd: number
  private segment: number
  private size: number
  private lastFrame: { offset: number; crc: number } | null
  private pending: Array<Pending> = []
  private cycling = false
  /** Frames in the previous cycle: 1 twice in a row means a lone appender (see `cycle`). */
  private lastBatchLength = 0
  /** The next cycle is scheduled (see `deferCycle`); appends queue for it. */
  private deferred = false
  private failed: JournalIOError | undefined
  private readonly readers = new Map<number, number>()
  /** Segment file paths, built once per segment (not on every read). */
  private readonly files = new Map<number, string>()
  private lockToken: string | undefined
  private closed = false

  private constructor(dir: string, options: FileStoreOptions, segment: number, fd: number, size: number, last: { offset: number; crc: number } | null) {
    this.path = dir
    this.durability = options.durability ?? "fsync"
    this.segmentBytesMax = options.segmentBytesMax ?? Limits.segmentBytesMax
    this.segment = segment
    this.fd = fd
    this.size = size
    this.lastFrame = last
  }

  /**
   * Opens (or creates) the store and scans it. Throws the typed errors of
   * JournalError.ts: JournalNotFound, JournalCorrupt, JournalVersionUnsupported,
   * JournalIOError, SessionLocked.
   */
  static open(dir: string, options: FileStoreOptions = {}): FileStoreOpened {
    const writer = options.writer ?? true
    prepareFolder(dir, options.create ?? true, writer)
    const token = writer ? takeLock(dir, options.owner ?? "keel", options.takeover ?? false) : undefined
    if (writer) removeCheckpointLeftovers(dir)
    try {
      dropUnfinishedSegment(dir, writer)
      if (writer && listSegments(dir).length === 0) createSegment(dir, 1)
      const segments = listSegments(dir).filter(
        (first, i, all) => writer || i < all.length - 1 || fs.statSync(nodePath.join(segmentsDir(dir), segmentName(first))).size >= headerBytes
      )
      if (segments.length === 0) throw new JournalNotFound({ path: dir, reason: "no segments (never written)" })
      const trusted = options.trusted !== undefined && markMatches(dir, options.trusted, segments) ? options.trusted : undefined
      const frames: Array<ScannedFrame> = []
      let torn: FileStoreOpened["torn"] = null
      let end = { segment: 1, size: headerBytes, last: null as { offset: number; crc: number } | null }
      for (const [i, first] of segments.entries()) {
        if (trusted !== undefined && first < trusted.segment) continue
        const file = nodePath.join(segmentsDir(dir), segmentName(first))
        const from = trusted !== undefined && first === trusted.segment ? trusted.end : 0
        // `bytes` holds the segment from byte `base` on: a trusted prefix is neither read nor checked again.
        const { bytes, base } = readSegment(file, first, from)
        let offset = from === 0 ? headerBytes : 0
        let last = trusted !== undefined && first === trusted.segment ? trusted.lastFrame : null
        while (offset < bytes.length) {
          const at = frameAt(bytes, offset)
          if (at.kind === "corrupt") throw new JournalCorrupt({ path: file, offset: base + offset, reason: at.reason })
          if (at.kind === "torn") {
            if (i !== segments.length - 1) throw new JournalCorrupt({ path: file, offset: base + offset, reason: `${at.reason} in a sealed segment` })
            torn = { segment: first, offset: base + offset, reason: at.reason }
            break
          }
          const length = frameHeaderBytes + at.length
          frames.push({
            location: { segment: first, offset: base + offset, length },
            crc: at.crc,
            payload: bytes.subarray(offset + frameHeaderBytes, offset + length)
          })
          last = { offset: base + offset, crc: at.crc }
          offset += length
        }
        end = { segment: first, size: base + offset, last }
      }
      if (torn !== null && writer) cutTornTail(dir, torn.segment, torn.offset)
      const fd = writer ? fs.openSync(nodePath.join(segmentsDir(dir), segmentName(end.segment)), "r+") : -1
      const store = new FileStore(dir, options, end.segment, fd, end.size, end.last)
      store.lockToken = token
      return { store, frames, trustedMatched: trusted !== undefined, torn }
    } catch (e) {
      if (token !== undefined) releaseLock(dir, token)
      if (e instanceof Error && "_tag" in e) throw e
      throw ioError(dir, "open", e)
    }
  }

  append(frame: Uint8Array, firstPosition: number): Promise<Location> {
    if (this.failed !== undefined) return Promise.reject(this.failed)
    if (this.closed || this.fd < 0) return Promise.reject(ioError(this.path, "append", "the store is closed or read-only"))
    if (this.pending.length >= Limits.appendsPendingMax) {
      return Promise.reject(ioError(this.path, "append", `more than ${Limits.appendsPendingMax} appends waiting`))
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ frame, firstPosition, resolve, reject })
      if (!this.cycling && !this.deferred) this.cycle()
    })
  }

  /** One group-commit cycle: write everything queued with one write, then one fsync for all of it. */
  private cycle(): void {
    assert(!this.cycling, "WalInv", "two group-commit cycles at once")
    const batch = this.takeBatch()
    if (batch.length === 0) return
    this.cycling = true
    let locations: Array<Location>
    try {
      locations = this.writeBatch(batch)
    } catch (e) {
      this.cycling = false
      const error = e instanceof ForeignWrite ? e : this.fail(ioError(this.path, "write", e))
      for (const p of batch) p.reject(error)
      this.failRest(error)
      return
    }
    const done = (error: NodeJS.ErrnoException | null) => {
      this.cycling = false
      if (error !== null) {
        const failure = this.fail(ioError(this.path, "fdatasync", error))
        for (const p of batch) p.reject(failure)
        this.failRest(failure)
        return
      }
      for (const [i, p] of batch.entries()) p.resolve(locations[i] as Location)
      if (this.pending.length > 0 || batch.length > 1) this.deferCycle()
    }
    if (this.durability === "os") queueMicrotask(() => done(null))
    else if (batch.length === 1 && this.lastBatchLength === 1) {
      // A lone appender (this cycle and the last carried one frame): fsync on this thread, saving
      // the thread-pool round trip (~70 µs here). Under concurrency cycles carry more than one frame
      // and fsync goes to the thread pool, so appenders keep queueing for the next group commit.
      let error: NodeJS.ErrnoException | null = null
      try {
        fs.fdatasyncSync(this.fd)
      } catch (e) {
        error = e as NodeJS.ErrnoException
      }
      queueMicrotask(() => done(error))
    } else fs.fdatasync(this.fd, done)
    this.lastBatchLength = batch.length
  }

  /**
   * Holds the next cycle for two turns of the event loop. The appenders this
   * cycle just acknowledged resume on the next turn (Effect schedules fibers
   * with setImmediate) and usually append again at once; starting at once
   * would send the first of them alone and make the rest wait a whole fsync
   * (cycles of 1, 100, 1, 100…). A lone appender never waits: after a cycle
   * of one with nothing queued, `append` starts the next cycle directly.
   */
  private deferCycle(): void {
    this.deferred = true
    nextTurn(() =>
      nextTurn(() => {
        this.deferred = false
        if (this.pending.length > 0 && !this.cycling) this.cycle()
      })
    )
  }

  private takeBatch(): Array<Pending> {
    let bytes = 0
    let n = 0
    while (n < this.pending.length && (n === 0 || bytes + (this.pending[n] as Pending).frame.length <= Limits.groupCommitBytesMax)) {
      bytes += (this.pending[n] as Pending).frame.length
      n++
    }
    return this.pending.splice(0, n)
  }

  private writeBatch(batch: ReadonlyArray<Pending>): Array<Location> {
    // A file that grew under us means another writer appended: refuse (fencing), write nothing.
    if (fs.fstatSync(this.fd).size !== this.size) throw new ForeignWrite(`${this.path} grew under this writer`)
    const first = batch[0] as Pending
    if (this.size >= this.segmentBytesMax) this.rollOver(first.firstPosition)
    let total = 0
    for (const p of batch) total += p.frame.length
    const bytes = batch.length === 1 ? first.frame : new Uint8Array(total)
    const locations: Array<Location> = []
    let offset = this.size
    for (const p of batch) {
      if (bytes !== p.frame) bytes.set(p.frame, offset - this.size)
      locations.push({ segment: this.segment, offset, length: p.frame.length })
      offset += p.frame.length
    }
    let written = 0
    while (written < total) written += fs.writeSync(this.fd, bytes, written, total - written, this.size + written)
    const lastLocation = locations[locations.length - 1] as Location
    const lastFrame = batch[batch.length - 1] as Pending
    this.lastFrame = { offset: lastLocation.offset, crc: new DataView(lastFrame.frame.buffer, lastFrame.frame.byteOffset).getUint32(8, true) }
    this.size += total
    return locations
  }

  private rollOver(firstPosition: number): void {
    // The previous cycle's fsync covered the old segment; the new one is created exclusively so two writers cannot both roll over.
    fs.closeSync(this.fd)
    this.fd = createSegment(this.path, firstPosition, true)
    this.segment = firstPosition
    this.size = headerBytes
    this.lastFrame = null
  }

  private fail(error: JournalIOError): JournalIOError {
    this.failed ??= error
    return this.failed
  }

  private failRest(error: unknown): void {
    const rest = this.pending.splice(0)
    for (const p of rest) p.reject(error)
  }

  readPayload(location: Location): Uint8Array {
    return this.payloadAt(this.readSpan(location.segment, location.offset, location.length), 0, location)
  }

  readPayloads(locations: ReadonlyArray<Location>): Array<Uint8Array> {
    const out = new Array<Uint8Array>(locations.length)
    const at = (k: number) => locations[k] as Location
    // File order; then frames close together are read as one span: one read, fewer syscalls.
    const order = locations.map((_, k) => k).sort((a, b) => at(a).segment - at(b).segment || at(a).offset - at(b).offset)
    for (let k = 0; k < order.length; ) {
      const first = at(order[k] as number)
      let end = first.offset + first.length
      let m = k + 1
      for (; m < order.length; m++) {
        const next = at(order[m] as number)
        const nextEnd = Math.max(end, next.offset + next.length)
        if (next.segment !== first.segment || next.offset - end > readGapBytesMax || nextEnd - first.offset > readSpanBytesMax) break
        end = nextEnd
      }
      const span = this.readSpan(first.segment, first.offset, end - first.offset)
      for (; k < m; k++) {
        const location = at(order[k] as number)
        out[order[k] as number] = this.payloadAt(span, location.offset - first.offset, location)
      }
    }
    return out
  }

  /** `length` bytes of segment `segment` from byte `offset`, or fewer where the file ends first. */
  private readSpan(segment: number, offset: number, length: number): Uint8Array {
    const bytes = new Uint8Array(length)
    const fd = this.readerFor(segment)
    let read = 0
    while (read < length) {
      const n = fs.readSync(fd, bytes, read, length - read, offset + read)
      if (n === 0) break
      read += n
    }
    return read === length ? bytes : bytes.subarray(0, read)
  }

  /** The checked payload of the frame at `location`, which starts at byte `start` of `span`. */
  private payloadAt(span: Uint8Array, start: number, location: Location): Uint8Array {
    const end = start + location.length
    if (end > span.length) {
      throw new JournalCorrupt({ path: this.fileOf(location.segment), offset: location.offset, reason: "frame ends past the end of the file" })
    }
    const bytes = span.subarray(start, end)
    // A frame read by its location is committed data: any mismatch is corruption, never a torn tail.
    const at = frameAt(bytes, 0)
    if (at.kind !== "frame" || at.length + frameHeaderBytes !== location.length) {
      const reason = at.kind === "frame" ? "frame length changed" : at.kind === "torn" ? "frame checksum or length mismatch" : at.reason
      throw new JournalCorrupt({ path: this.fileOf(location.segment), offset: location.offset, reason })
    }
    return bytes.subarray(frameHeaderBytes)
  }

  private fileOf(segment: number): string {
    let file = this.files.get(segment)
    if (file === undefined) {
      file = nodePath.join(segmentsDir(this.path), segmentName(segment))
      this.files.set(segment, file)
    }
    return file
  }

  /** A read descriptor per segment, kept open until `close` (reading 10^5 entries must not open 10^5 files). */
  private readerFor(segment: number): number {
    if (this.fd >= 0 && segment === this.segment) return this.fd
    let fd = this.readers.get(segment)
    if (fd === undefined) {
      fd = fs.openSync(this.fileOf(segment), "r")
      this.readers.set(segment, fd)
    }
    return fd
  }

  mark(): StoreMark {
    return { segment: this.segment, end: this.size, lastFrame: this.lastFrame }
  }

  writeCheckpoint(bytes: Uint8Array): void {
    const file = nodePath.join(this.path, "checkpoint")
    const temp = `${file}.${process.pid}.tmp`
    const fd = fs.openSync(temp, "w")
    try {
      fs.writeSync(fd, bytes)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(temp, file)
    fsyncDir(this.path)
  }

  readCheckpoint(): Uint8Array | undefined {
    return FileStore.readCheckpoint(this.path)
  }

  /** The checkpoint of a folder, read before opening (it says where the scan may start). */
  static readCheckpoint(dir: string): Uint8Array | undefined {
    try {
      return new Uint8Array(fs.readFileSync(nodePath.join(dir, "checkpoint")))
    } catch {
      return undefined
    }
  }

  lock(owner: string, takeover: boolean): void {
    this.lockToken ??= takeLock(this.path, owner, takeover)
  }

  unlock(): void {
    if (this.lockToken !== undefined) releaseLock(this.path, this.lockToken)
    this.lockToken = undefined
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.failRest(ioError(this.path, "append", "the store was closed"))
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
    for (const fd of this.readers.values()) fs.closeSync(fd)
    this.readers.clear()
    this.unlock()
  }
}

const nextTurn: (f: () => void) => void = typeof setImmediate === "function" ? (f) => setImmediate(f) : (f) => setTimeout(f, 0)

/** A writer killed while saving a checkpoint leaves its temp file; the lock holder removes it. */
function removeCheckpointLeftovers(dir: string): void {
  for (const name of fs.readdirSync(dir)) if (/^checkpoint\.\d+\.tmp$/.test(name)) fs.rmSync(nodePath.join(dir, name), { force: true })
}

function prepareFolder(dir: string, create: boolean, writer: boolean): void {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(dir)
  } catch {
    stat = undefined
  }
  if (stat === undefined) {
    if (!create || !writer) throw new JournalNotFound({ path: dir, reason: "no such folder" })
    fs.mkdirSync(segmentsDir(dir), { recursive: true })
    return
  }
  if (!stat.isDirectory()) throw new JournalNotFound({ path: dir, reason: "a file, not a session folder" })
  if (!fs.existsSync(segmentsDir(dir))) {
    if (fs.readdirSync(dir).length > 0 || !writer) throw new JournalNotFound({ path: dir, reason: "the folder holds no segments/" })
    fs.mkdirSync(segmentsDir(dir))
  }
}

/**
 * A crash while a segment was being created can leave a last segment shorter
 * than its header, holding nothing committed: a writer removes it (a torn
 * tail at segment granularity); readers skip it.
 */
function dropUnfinishedSegment(dir: string, writer: boolean): void {
  const segments = listSegments(dir)
  const last = segments[segments.length - 1]
  if (last === undefined || !writer) return
  const file = nodePath.join(segmentsDir(dir), segmentName(last))
  if (fs.statSync(file).size < headerBytes) {
    fs.unlinkSync(file)
    fsyncDir(segmentsDir(dir))
  }
}

/** Reads segment `file` from byte `from` (0: the whole file, header checked). */
function readSegment(file: string, first: number, from: number): { bytes: Uint8Array; base: number } {
  const fd = fs.openSync(file, "r")
  try {
    const size = fs.fstatSync(fd).size
    const start = from === 0 ? 0 : from
    const bytes = new Uint8Array(Math.max(0, size - start))
    let read = 0
    while (read < bytes.length) {
      const n = fs.readSync(fd, bytes, read, bytes.length - read, start + read)
      if (n === 0) break
      read += n
    }
    if (from !== 0) return { bytes: bytes.subarray(0, read), base: start }
    checkHeader(file, first, bytes)
    return { bytes: bytes.subarray(0, read), base: 0 }
  } finally {
    fs.closeSync(fd)
  }
}

function checkHeader(file: string, first: number, bytes: Uint8Array): void {
  const header = decodeHeader(bytes)
  if ("kind" in header) {
    if (header.kind === "version") {
      throw new JournalVersionUnsupported({ path: file, version: Number(header.reason), supported: 1 })
    }
    if (header.kind === "corrupt") throw new JournalCorrupt({ path: file, offset: 0, reason: header.reason })
    throw new JournalNotFound({ path: file, reason: header.reason })
  }
  if (header.firstPosition !== first) {
    throw new JournalCorrupt({ path: file, offset: 8, reason: `header says first position ${header.firstPosition}, name says ${first}` })
  }
}

function createSegment(dir: string, firstPosition: number, keepOpen = false): number {
  const file = nodePath.join(segmentsDir(dir), segmentName(firstPosition))
  const fd = fs.openSync(file, "wx+")
  fs.writeSync(fd, encodeHeader(firstPosition))
  fs.fsyncSync(fd)
  fsyncDir(segmentsDir(dir))
  if (keepOpen) return fd
  fs.closeSync(fd)
  return -1
}

function markMatches(dir: string, mark: StoreMark, segments: ReadonlyArray<number>): boolean {
  if (!segments.includes(mark.segment)) return false
  const file = nodePath.join(segmentsDir(dir), segmentName(mark.segment))
  try {
    if (fs.statSync(file).size < mark.end) return false
    if (mark.lastFrame === null) return mark.end === headerBytes
    const fd = fs.openSync(file, "r")
    try {
      const head = new Uint8Array(frameHeaderBytes)
      fs.readSync(fd, head, 0, frameHeaderBytes, mark.lastFrame.offset)
      const view = new DataView(head.buffer)
      const length = view.getUint32(0, true)
      return (
        ~length >>> 0 === view.getUint32(4, true) &&
        view.getUint32(8, true) === mark.lastFrame.crc &&
        mark.lastFrame.offset + frameHeaderBytes + length === mark.end
      )
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return false
  }
}

function cutTornTail(dir: string, segment: number, offset: number): void {
  const file = nodePath.join(segmentsDir(dir), segmentName(segment))
  const fd = fs.openSync(file, "r+")
  try {
    fs.ftruncateSync(fd, offset)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

interface LockOwner {
  readonly pid: number
  readonly host: string
  readonly owner: string
  readonly token: string
}

function takeLock(dir: string, owner: string, takeover: boolean): string {
  const path = lockPath(dir)
  const me: LockOwner = { pid: process.pid, host: os.hostname(), owner, token: crypto.randomUUID() }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(path, "wx")
      fs.writeSync(fd, JSON.stringify(me))
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      return me.token
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(path, "lock", e)
    }
    const holder = readLock(path)
    if (holder !== undefined && !takeover && isAlive(holder)) {
      throw new SessionLocked({ path: dir, owner: `${holder.owner} (pid ${holder.pid} on ${holder.host})` })
    }
    // A dead owner's (or unreadable, or overridden) lock: remove it and race for a fresh one.
    // Two racers may both get here; O_EXCL lets one win, and fencing refuses the loser's writes.
    try {
      fs.unlinkSync(path)
    } catch {
      // someone else removed it first
    }
  }
  throw new SessionLocked({ path: dir, owner: "a writer that keeps re-taking the lock" })
}

function readLock(path: string): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(path, "utf8")) as LockOwner
  } catch {
    return undefined
  }
}

function isAlive(holder: LockOwner): boolean {
  if (holder.host !== os.hostname()) return true // cannot tell: assume alive, never steal across machines
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

function releaseLock(dir: string, token: string): void {
  const path = lockPath(dir)
  if (readLock(path)?.token === token) {
    try {
      fs.unlinkSync(path)
    } catch {
      // already gone
    }
  }
}
