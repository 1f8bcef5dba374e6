/**
 * The on-disk format. A segment file is a header followed by frames; one
 * frame holds one atomic batch of events, so a batch is on disk whole or not
 * at all (a torn frame is cut on recovery, never half-applied).
 *
 *   header (20 B): "KEEL" | u16 format version | u16 0 | u64 first position | u32 crc32c(previous 16 B)
 *   frame  (12 B + n): u32 n | u32 ~n | u32 crc32c(payload) | payload (n B, UTF-8 JSON)
 *   payload: {"v": record version, "p": first position, "e": epoch, "r": [event, ...]}
 *
 * The length is stored twice (n and its complement) so a bit flip in a length
 * is detected as corruption instead of looking like a short, torn tail.
 * Gotcha: all integers are little-endian; positions fit in 53 bits.
 */
import { Exit, Schema } from "effect"
import { Event } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { crc32c } from "../internal/crc32c.ts"
import { Limits } from "../Limits.ts"

// Warms the checksum before its first big input. V8 (Node 24) compiles crc-32's loop on-stack when the
// first checksum is a big buffer (the checkpoint, megabytes): V8 has then recorded no type feedback
// for the loop's tail, and that code deoptimises at the tail on every later call, ~50 µs each —
// reading 1,000 frames after an open paid ~50 ms. A few short calls first (V8 records feedback from
// the 9th call of a function on) leave nothing unrecorded. Belongs in src/internal/crc32c.ts.
for (let i = 0; i < 16; i++) crc32c(new Uint8Array(17 + i))

/** The segment format this build writes. */
export const formatVersion = 1
/** The payload (record) version this build writes; older ones go through `Migrations`. */
export const recordVersion = 1
export const headerBytes = 20
export const frameHeaderBytes = 12
const magic = [0x4b, 0x45, 0x45, 0x4c] // "KEEL"

/** One atomic batch: events at positions `position`, `position + 1`, … under lease `epoch`. */
export interface Batch {
  readonly position: number
  readonly epoch: number
  readonly events: ReadonlyArray<Event>
}

/**
 * Upgrades a payload of record version `v` to `v + 1`. The hook that lets a
 * newer Keel read an older journal without rewriting it.
 */
export type Migrations = ReadonlyMap<number, (payload: Record<string, unknown>) => Record<string, unknown>>

export type Problem = { readonly kind: "invalid" | "version" | "corrupt"; readonly reason: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })
// Events and payloads are plain data (no transformations): the Schema's type guard (`is`) accepts
// exactly what its decoder accepts, at a fraction of the cost. The decoder runs only to say what
// is wrong with a value the guard refused.
const isEvent = Schema.is(Event)
const decodeEvent = Schema.decodeUnknownExit(Event)
const Payload = Schema.Struct({
  v: Schema.Int,
  p: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  e: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  r: Schema.Array(Schema.Unknown)
})
const isPayload = Schema.is(Payload)
const decodePayload = Schema.decodeUnknownExit(Payload)

/** Validates events against the vocabulary; the first problem, or undefined. */
export function validateEvents(events: ReadonlyArray<unknown>): string | undefined {
  if (events.length === 0) return "a batch needs at least one event"
  if (events.length > Limits.batchEventsMax) return `a batch holds at most ${Limits.batchEventsMax} events`
  for (let i = 0; i < events.length; i++) {
    if (isEvent(events[i])) continue
    const exit = decodeEvent(events[i])
    return `event ${i}: ${Exit.isFailure(exit) ? String(exit.cause).slice(0, 500) : "refused by the Event schema"}`
  }
  return undefined
}

export function encodeHeader(firstPosition: number): Uint8Array {
  const bytes = new Uint8Array(headerBytes)
  const view = new DataView(bytes.buffer)
  bytes.set(magic, 0)
  view.setUint16(4, formatVersion, true)
  view.setBigUint64(8, BigInt(firstPosition), true)
  view.setUint32(16, crc32c(bytes.subarray(0, 16)), true)
  return bytes
}

export function decodeHeader(bytes: Uint8Array): { version: number; firstPosition: number } | Problem {
  if (bytes.length < headerBytes) return { kind: "invalid", reason: "shorter than a segment header" }
  for (let i = 0; i < 4; i++) if (bytes[i] !== magic[i]) return { kind: "invalid", reason: "no KEEL magic" }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes)
  if (view.getUint32(16, true) !== crc32c(bytes.subarray(0, 16))) {
    return { kind: "corrupt", reason: "segment header checksum mismatch" }
  }
  const version = view.getUint16(4, true)
  if (version > formatVersion) return { kind: "version", reason: String(version) }
  return { version, firstPosition: Number(view.getBigUint64(8, true)) }
}

/** Encodes one batch as one frame. The events must already be valid (`validateEvents`). */
export function encodeFrame(batch: Batch): Uint8Array {
  assert(batch.events.length > 0, "WalInv", "empty batch")
  assert(Number.isSafeInteger(batch.position) && batch.position >= 1, "TreeInv", "position must be ≥ 1")
  const payload = encoder.encode(JSON.stringify({ v: recordVersion, p: batch.position, e: batch.epoch, r: batch.events }))
  const n = payload.length
  const frame = new Uint8Array(frameHeaderBytes + n)
  frame.set(payload, frameHeaderBytes)
  const view = new DataView(frame.buffer)
  view.setUint32(0, n, true)
  view.setUint32(4, ~n >>> 0, true)
  view.setUint32(8, crc32c(payload), true)
  return frame
}

/** What a scan found at one offset. */
export type FrameAt =
  | { readonly kind: "frame"; readonly length: number; readonly crc: number }
  | { readonly kind: "torn"; readonly reason: string }
  | { readonly kind: "corrupt"; readonly reason: string }

/**
 * Classifies the bytes at `offset` of a segment whose data ends at
 * `bytes.length`: a whole frame, a torn tail (a partial last write, safe to
 * cut) or corruption (damage to committed data, a typed error).
 *
 * A torn tail is recognised only where it can be nothing else: a frame header
 * cut short, a payload running past the end of the file, a bad last frame
 * that ends exactly at the end, or an all-zero tail. Anything followed by more
 * data is corruption, so a damaged record in the middle is never skipped.
 */
export function frameAt(bytes: Uint8Array, offset: number): FrameAt {
  const remaining = bytes.length - offset
  if (remaining < frameHeaderBytes) return { kind: "torn", reason: "frame header cut short" }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, frameHeaderBytes)
  const length = view.getUint32(0, true)
  if (~length >>> 0 !== view.getUint32(4, true)) {
    return allZero(bytes, offset) ? { kind: "torn", reason: "zero-filled tail" } : { kind: "corrupt", reason: "frame length and its complement disagree" }
  }
  if (length > Limits.frameBytesMax) return { kind: "corrupt", reason: `frame length ${length} exceeds the limit` }
  const end = offset + frameHeaderBytes + length
  if (end > bytes.length) return { kind: "torn", reason: "payload cut short" }
  const crc = view.getUint32(8, true)
  if (crc32c(bytes.subarray(offset + frameHeaderBytes, end)) !== crc) {
    return end === bytes.length ? { kind: "torn", reason: "last frame fails its checksum" } : { kind: "corrupt", reason: "frame checksum mismatch" }
  }
  return { kind: "frame", length, crc }
}

function allZero(bytes: Uint8Array, offset: number): boolean {
  for (let i = offset; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

/**
 * Decodes a whole, checksummed frame payload and validates it (the second
 * half of the pair of boundary checks). Applies `migrations` to older
 * record versions; a newer version is a Problem of kind "version".
 */
export function decodePayloadBytes(payload: Uint8Array, migrations: Migrations): Batch | Problem {
  let raw: unknown
  try {
    raw = JSON.parse(decoder.decode(payload))
  } catch (e) {
    return { kind: "invalid", reason: `payload is not UTF-8 JSON: ${String(e)}` }
  }
  if (typeof raw !== "object" || raw === null) return { kind: "invalid", reason: "payload is not an object" }
  let record = raw as Record<string, unknown>
  const version = record.v
  if (typeof version !== "number") return { kind: "invalid", reason: "payload has no version" }
  if (version > recordVersion) return { kind: "version", reason: String(version) }
  for (let v = version; v < recordVersion; v++) {
    const migrate = migrations.get(v)
    if (migrate === undefined) return { kind: "invalid", reason: `no migration from record version ${v}` }
    record = migrate(record)
  }
  if (!isPayload(record)) {
    const exit = decodePayload(record)
    return { kind: "invalid", reason: Exit.isFailure(exit) ? String(exit.cause).slice(0, 500) : "refused by the payload schema" }
  }
  const problem = validateEvents(record.r)
  if (problem !== undefined) return { kind: "invalid", reason: problem }
  return { position: record.p, epoch: record.e, events: record.r as ReadonlyArray<Event> }
}

export const isProblem = (x: object): x is Problem => "kind" in x && "reason" in x && !("events" in x)
