// journal.readMany: the batched read of many positions (one Effect, one store read per group of frames).
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import type { Event } from "../../src/Event.ts"
import { crc32c } from "../../src/internal/crc32c.ts"
import { frameHeaderBytes, headerBytes } from "../../src/journal/Codec.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import { entry, segmentFile, tempDir } from "../support/tmp.ts"

const segments = (dir: string) =>
  fs
    .readdirSync(path.join(dir, "segments"))
    .filter((n) => n.endsWith(".seg"))
    .sort()
    .map((n) => path.join(dir, "segments", n))

/** Every frame of a segment file: byte offset, length, first position. */
const framesOf = (file: string) => {
  const bytes = fs.readFileSync(file)
  const out: Array<{ offset: number; length: number; position: number }> = []
  for (let offset = headerBytes; offset + frameHeaderBytes <= bytes.length; ) {
    const n = bytes.readUInt32LE(offset)
    const payload = JSON.parse(bytes.subarray(offset + frameHeaderBytes, offset + frameHeaderBytes + n).toString("utf8")) as { p: number }
    out.push({ offset, length: frameHeaderBytes + n, position: payload.p })
    offset += frameHeaderBytes + n
  }
  return out
}

/** The frame holding `position` in the only segment of `dir`. */
const frameAt = (dir: string, position: number) => {
  const frame = framesOf(segmentFile(dir)).find((f) => f.position === position)
  if (frame === undefined) throw new Error(`no frame starts at position ${position}`)
  return frame
}

/**
 * A journal of `batches` (each a list of payloads: one entry.appended per
 * payload), checkpointed and closed: a reader opened on it trusts the
 * checkpoint and checks frames only when it reads them.
 */
const written = (dir: string, batches: ReadonlyArray<ReadonlyArray<unknown>>, options: Journal.OpenOptions = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const j = yield* Journal.openFile(dir, { owner: "t", ...options })
      let fence = yield* j.acquireLease("t")
      for (const batch of batches)
        fence = yield* j.append(
          batch.map((p) => entry(p as never)),
          fence
        )
      yield* j.checkpoint(null)
    })
  )

const reader = (dir: string, options: Journal.OpenOptions = {}) => Journal.openFile(dir, { writer: false, ...options })

/** The positions in a scrambled order, with repeats. */
const scrambled = (head: number) => {
  const all = Array.from({ length: head }, (_, i) => i + 1)
  const out: Array<number> = []
  for (let k = 0; k < all.length; k++) out.push(all[(k * 7919) % all.length] as number)
  return [...out, head, 1, head, Math.ceil(head / 2)]
}

/** readMany must agree with read, position by position. */
const agrees = (j: Journal.JournalShape, positions: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const byPosition = new Map<number, Journal.Committed>()
    for (const position of new Set(positions)) for (const c of yield* j.read(position, position)) byPosition.set(c.position, c)
    const many = yield* j.readMany(positions)
    assert.strictEqual(many.length, positions.length)
    for (const [k, position] of positions.entries()) assert.deepStrictEqual(many[k], byPosition.get(position), `position ${position}`)
  })

const isDefect = (exit: Exit.Exit<unknown, unknown>, invariant: string) =>
  Exit.isFailure(exit) && Cause.hasDies(exit.cause) && String(Cause.squash(exit.cause)).includes(invariant)

describe("Journal.readMany", () => {
  it.effect("gives the events at the positions asked, in that order (repeats and shared frames too), as read does", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const batches = Array.from({ length: 40 }, (_, i) => Array.from({ length: 1 + (i % 3) }, (_, k) => ({ i, k, pad: "z".repeat(i * 3) })))
      yield* written(dir, batches, { segmentBytesMax: 900 })
      assert.isAbove(segments(dir).length, 3)
      const j = yield* reader(dir, { segmentBytesMax: 900 })
      yield* agrees(j, scrambled(j.durableHead()))
      yield* agrees(j, [j.durableHead(), 2, 3, 2])
      assert.deepStrictEqual(yield* j.readMany([]), [])
      // The same without the checkpoint (every frame scanned on open) and in memory.
      fs.rmSync(path.join(dir, "checkpoint"))
      const scanned = yield* reader(dir, { segmentBytesMax: 900 })
      yield* agrees(scanned, scrambled(scanned.durableHead()))
      const store = new MemoryStore()
      const m = yield* Journal.openMemory(store)
      let fence = yield* m.acquireLease("t")
      for (const batch of batches) {
        const events = batch.map((p) => entry(p))
        fence = yield* m.append(events, fence)
      }
      yield* agrees(m, scrambled(m.durableHead()))
    })
  )

  it.effect("frames far apart, and more frames than one read covers, are read whole", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      // 128 KiB payloads: small frames around them are further apart than one read bridges, and all of
      // them together exceed what one read covers (1 MiB); one frame is bigger than that on its own.
      const big = (i: number, kib: number) => ({ i, pad: String(i % 10).repeat(kib * 1024) })
      const batches = Array.from({ length: 40 }, (_, i) => (i === 21 ? [big(i, 1100)] : i % 4 === 0 ? [big(i, 128)] : [{ i }]))
      yield* written(dir, batches)
      const j = yield* reader(dir)
      const head = j.durableHead()
      yield* agrees(j, scrambled(head))
      yield* agrees(
        j,
        Array.from({ length: head }, (_, i) => head - i)
      )
      const small = Array.from({ length: head }, (_, i) => i + 1).filter((p) => p % 4 !== 2 && p !== 23)
      yield* agrees(j, small)
      yield* agrees(j, [23, 2, 41, 6, 30])
    })
  )

  it.effect("a corrupt frame in the middle of a batched read is JournalCorrupt naming its file and offset, as a single read says", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(
        dir,
        Array.from({ length: 10 }, (_, i) => [{ i }])
      )
      const file = segmentFile(dir)
      const damaged = frameAt(dir, 6)
      const bytes = fs.readFileSync(file)
      const at = damaged.offset + frameHeaderBytes + 5
      bytes[at] = (bytes[at] as number) ^ 0x04
      fs.writeFileSync(file, bytes)
      const j = yield* reader(dir) // the checkpoint vouches for the frames: nothing is checked on open
      const many = yield* Effect.flip(j.readMany([2, 4, 6, 8, 10]))
      assert.strictEqual(many._tag, "JournalCorrupt")
      assert.strictEqual((many as { offset: number }).offset, damaged.offset)
      assert.include(many.message, file)
      const single = yield* Effect.flip(j.read(6, 6))
      assert.deepStrictEqual(single, many)
      // Asked in any order, or alone, the same frame is named.
      assert.deepStrictEqual(yield* Effect.flip(j.readMany([10, 6, 2])), many)
      assert.deepStrictEqual(yield* Effect.flip(j.readMany([6])), many)
      // Its neighbours are read and checked, each on its own.
      yield* agrees(j, [2, 4, 5, 7, 8, 10])
    })
  )

  it.effect("a checksummed frame whose events fail their Schema is JournalRecordInvalid on a batched read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(
        dir,
        Array.from({ length: 8 }, (_, i) => [{ i }])
      )
      const file = segmentFile(dir)
      const forged = frameAt(dir, 5)
      const bytes = fs.readFileSync(file)
      const payload = bytes.subarray(forged.offset + frameHeaderBytes, forged.offset + forged.length)
      const text = payload.toString("utf8")
      // Same length, valid JSON, a valid checksum: only the Schema can tell (a branch name that is a number).
      const swapped = text.replace('"branch":"main"', '"branch":123456')
      assert.notStrictEqual(swapped, text)
      payload.set(Buffer.from(swapped, "utf8"))
      bytes.writeUInt32LE(crc32c(payload), forged.offset + 8)
      fs.writeFileSync(file, bytes)
      const j = yield* reader(dir)
      const error = yield* Effect.flip(j.readMany([3, 5, 7]))
      assert.strictEqual(error._tag, "JournalRecordInvalid")
      assert.strictEqual((error as { offset: number }).offset, forged.offset)
      yield* agrees(j, [3, 4, 6, 7])
    })
  )

  it.effect("positions outside the durable log are refused (a caller's bug: a defect), before anything is read", () =>
    Effect.gen(function* () {
      const j = yield* Journal.openMemory()
      const fence = yield* j.acquireLease("t")
      yield* j.append([entry("a"), entry("b")], fence)
      assert.strictEqual(j.durableHead(), 3)
      for (const bad of [0, -1, 4, 1.5, Number.NaN]) {
        const exit = yield* Effect.exit(j.readMany([2, bad]))
        assert.isTrue(isDefect(exit, "PrefixRecoveryInv"), `position ${bad}`)
      }
      const ok = yield* j.readMany([3, 1])
      assert.deepStrictEqual(
        ok.map((c) => `${c.position}:${(c.event as Event)._tag}`),
        ["3:entry.appended", "1:lease.acquired"]
      )
    })
  )
})
