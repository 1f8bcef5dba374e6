import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import { entry, segmentFile, tempDir } from "../support/tmp.ts"

const fenceOf = (j: Journal.JournalShape) => ({ epoch: j.epoch(), head: j.head() })
const tags = (records: ReadonlyArray<Journal.Committed>) => records.map((r) => `${r.position}:${r.event._tag}`)
const payloads = (records: ReadonlyArray<Journal.Committed>) => records.flatMap((r) => (r.event._tag === "entry.appended" ? [r.event.payload] : []))

/** A journal with a lease and `n` single-entry batches. */
const written = (dir: string, n: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const j = yield* Journal.openFile(dir, { owner: "t" })
      let fence = yield* j.acquireLease("t")
      for (let i = 0; i < n; i++) fence = yield* j.append([entry(i)], fence)
    })
  )

const reopen = (dir: string, options: Journal.OpenOptions = {}) => Journal.openFile(dir, { owner: "r", ...options })

describe("Journal (file)", () => {
  it.effect("appends batches atomically and reads them back after reopening", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Journal.openFile(dir, { owner: "t" })
          const fence = yield* j.acquireLease("t")
          assert.deepStrictEqual(fence, { epoch: 1, head: 1 })
          const after = yield* j.append([entry("a"), entry("b"), entry("c")], fence)
          assert.deepStrictEqual(after, { epoch: 1, head: 4 })
          assert.deepStrictEqual(tags(yield* j.read(2, 3)), ["2:entry.appended", "3:entry.appended"])
        })
      )
      const j = yield* reopen(dir, { writer: false })
      assert.strictEqual(j.head(), 4)
      assert.strictEqual(j.epoch(), 1)
      assert.deepStrictEqual(payloads(yield* j.read(1)), ["a", "b", "c"])
    })
  )

  it.effect("concurrent appenders share group commits and all land in sequence order", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const j = yield* Journal.openFile(dir, { owner: "t" })
      yield* j.acquireLease("t")
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => Effect.suspend(() => j.append([entry(i)], fenceOf(j))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(j.durableHead(), 201)
      assert.deepStrictEqual(
        payloads(yield* j.read(1)),
        Array.from({ length: 200 }, (_, i) => i)
      )
    })
  )

  it.effect("cuts a torn tail at every byte back to the last whole batch", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(dir, 3)
      const file = segmentFile(dir)
      const full = fs.readFileSync(file)
      const copy = path.join(dir, "..", `${path.basename(dir)}-copy`)
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(copy, { recursive: true, force: true })))
      // Frame boundaries from the codec: a cut must recover exactly the whole frames before it.
      const { frameAt, headerBytes, frameHeaderBytes } = yield* Effect.promise(() => import("../../src/journal/Codec.ts"))
      const ends: Array<number> = []
      for (let at = headerBytes; at < full.length; ) {
        const frame = frameAt(full, at)
        assert.strictEqual(frame.kind, "frame")
        at += frameHeaderBytes + (frame as { length: number }).length
        ends.push(at)
      }
      assert.strictEqual(ends.length, 4) // lease + 3 entries
      for (let cut = 0; cut <= full.length; cut += cut < 24 ? 1 : 3) {
        fs.rmSync(copy, { recursive: true, force: true })
        fs.cpSync(dir, copy, { recursive: true })
        fs.writeFileSync(segmentFile(copy), full.subarray(0, cut))
        const head = yield* Effect.scoped(Effect.map(reopen(copy), (j) => j.head()))
        const whole = ends.filter((end) => end <= cut)
        assert.strictEqual(head, whole.length, `cut at ${cut}`)
        assert.strictEqual(fs.statSync(segmentFile(copy)).size, whole.length === 0 ? headerBytes : (whole[whole.length - 1] as number), `cut at ${cut}`)
        // Reopening again finds no tear and the same head: the cut was made durable.
        const again = yield* Effect.scoped(Effect.map(reopen(copy), (j) => ({ head: j.head(), torn: j.recovery.tornTail })))
        assert.deepStrictEqual(again, { head, torn: null })
      }
    })
  )

  it.effect("a bit flip before the tail is JournalCorrupt naming file and offset", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(dir, 3)
      const file = segmentFile(dir)
      const bytes = fs.readFileSync(file)
      bytes[60] = (bytes[60] as number) ^ 0x10
      fs.writeFileSync(file, bytes)
      const error = yield* Effect.flip(reopen(dir))
      assert.strictEqual(error._tag, "JournalCorrupt")
      assert.include(error.message, file)
      assert.match(error.message, /at byte \d+/)
      // Nothing was cut: the damaged file is left for an operator.
      assert.strictEqual(fs.statSync(file).size, bytes.length)
    })
  )

  it.effect("a checksummed record that fails its Schema is JournalRecordInvalid", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(dir, 1)
      const { encodeFrame } = yield* Effect.promise(() => import("../../src/journal/Codec.ts"))
      const forged = encodeFrame({ position: 3, epoch: 1, events: [{ _tag: "entry.appended", branch: "", parentId: 0, type: "x", time: 0, payload: 1 }] })
      fs.appendFileSync(segmentFile(dir), forged)
      fs.appendFileSync(segmentFile(dir), encodeFrame({ position: 4, epoch: 1, events: [entry(1)] }))
      const error = yield* Effect.flip(reopen(dir))
      assert.strictEqual(error._tag, "JournalRecordInvalid")
    })
  )

  it.effect("a newer format version and a path that is not a journal are typed errors", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* written(dir, 1)
      const file = segmentFile(dir)
      const bytes = fs.readFileSync(file)
      const { encodeHeader } = yield* Effect.promise(() => import("../../src/journal/Codec.ts"))
      const header = encodeHeader(1)
      const view = new DataView(header.buffer)
      view.setUint16(4, 9, true)
      const { crc32c } = yield* Effect.promise(() => import("../../src/internal/crc32c.ts"))
      view.setUint32(16, crc32c(header.subarray(0, 16)), true)
      bytes.set(header, 0)
      fs.writeFileSync(file, bytes)
      const newer = yield* Effect.flip(reopen(dir))
      assert.strictEqual(newer._tag, "JournalVersionUnsupported")

      const plain = path.join(dir, "notes.txt")
      fs.writeFileSync(plain, "hello")
      assert.strictEqual((yield* Effect.flip(reopen(plain)))._tag, "JournalNotFound")
      const foreign = yield* tempDir()
      fs.writeFileSync(path.join(foreign, "x"), "y")
      assert.strictEqual((yield* Effect.flip(reopen(foreign)))._tag, "JournalNotFound")
      assert.strictEqual((yield* Effect.flip(reopen(path.join(foreign, "missing"), { writer: false })))._tag, "JournalNotFound")
    })
  )

  it.effect("a second writer gets SessionLocked; a reader needs no lease", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const first = yield* Journal.openFile(dir, { owner: "first" })
      yield* first.acquireLease("first")
      const error = yield* Effect.flip(Journal.openFile(dir, { owner: "second" }))
      assert.strictEqual(error._tag, "SessionLocked")
      assert.include(error.message, "first")
      const reader = yield* Journal.openFile(dir, { writer: false })
      assert.strictEqual(reader.head(), 1)
    })
  )

  it.effect("a writer whose lease was taken over is refused with StaleWriter and writes nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const old = yield* Journal.openFile(dir, { owner: "old" })
      const oldFence = yield* old.acquireLease("old")
      yield* old.append([entry("before")], oldFence).pipe(Effect.asVoid)
      const taker = yield* Journal.openFile(dir, { owner: "new", takeover: true })
      const fence = yield* taker.acquireLease("new", { takeover: true })
      assert.strictEqual(fence.epoch, 2)
      const size = fs.statSync(segmentFile(dir)).size
      const stale = yield* Effect.flip(old.append([entry("lost?")], { epoch: old.epoch(), head: old.head() }))
      assert.strictEqual(stale._tag, "StaleWriter")
      assert.strictEqual(fs.statSync(segmentFile(dir)).size, size)
      // And it stays refused (fail-stop), while the new writer goes on.
      assert.strictEqual((yield* Effect.flip(old.append([entry("again")], { epoch: old.epoch(), head: old.head() })))._tag, "StaleWriter")
      yield* taker.append([entry("after")], fence)
      const reader = yield* Journal.openFile(dir, { writer: false })
      assert.deepStrictEqual(payloads(yield* reader.read(1)), ["before", "after"])
    })
  )

  it.effect("a stale fence is refused before any write", () =>
    Effect.gen(function* () {
      const j = yield* Journal.openMemory()
      const fence = yield* j.acquireLease("t")
      yield* j.append([entry(1)], fence)
      const error = yield* Effect.flip(j.append([entry(2)], fence))
      assert.strictEqual(error._tag, "StaleWriter")
      assert.deepStrictEqual(error._tag === "StaleWriter" && [error.expectedHead, error.actualHead], [1, 2])
      assert.strictEqual(j.head(), 2)
    })
  )

  it.effect("rejects malformed batches with nothing written", () =>
    Effect.gen(function* () {
      const j = yield* Journal.openMemory()
      const fence = yield* j.acquireLease("t")
      const empty = yield* Effect.flip(j.append([], fence))
      assert.strictEqual(empty._tag, "JournalAppendRejected")
      const lease = yield* Effect.flip(j.append([{ _tag: "lease.acquired", epoch: 5, owner: "x", time: 0 }], fence))
      assert.strictEqual(lease._tag, "JournalAppendRejected")
      const invalid = yield* Effect.flip(j.append([{ ...entry(1), branch: "" }], fence))
      assert.strictEqual(invalid._tag, "JournalAppendRejected")
      assert.strictEqual(j.head(), 1)
    })
  )

  it.effect("a checkpoint lets reopening skip the scan, and a stale one is ignored", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Journal.openFile(dir, { owner: "t" })
          let fence = yield* j.acquireLease("t")
          for (let i = 0; i < 5; i++) fence = yield* j.append([entry(i)], fence)
          yield* j.checkpoint({ summary: "five" })
          yield* j.append([entry(5)], fence)
        })
      )
      const fast = yield* Effect.scoped(Effect.map(reopen(dir, { writer: false }), (j) => ({ cp: j.recovery.checkpoint, tail: j.recovery.tail.length })))
      assert.deepStrictEqual(fast, { cp: { head: 6, data: { summary: "five" } }, tail: 1 })
      const all = yield* Effect.scoped(Effect.flatMap(reopen(dir, { writer: false }), (j) => j.read(1)))
      assert.deepStrictEqual(payloads(all), [0, 1, 2, 3, 4, 5])
      // Cut the log below the checkpoint: the checkpoint no longer matches and is ignored.
      const file = segmentFile(dir)
      const bytes = fs.readFileSync(file)
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 200))
      const rebuilt = yield* Effect.scoped(Effect.map(reopen(dir), (j) => ({ cp: j.recovery.checkpoint, head: j.head() })))
      assert.strictEqual(rebuilt.cp, undefined)
      assert.isBelow(rebuilt.head, 7)
      // A corrupt checkpoint file is ignored too.
      fs.writeFileSync(path.join(dir, "checkpoint"), "garbage")
      const again = yield* Effect.scoped(Effect.map(reopen(dir), (j) => j.head()))
      assert.strictEqual(again, rebuilt.head)
    })
  )

  it.effect("rolls over to a new segment and reads across segments", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Journal.openFile(dir, { owner: "t", segmentBytesMax: 300 })
          let fence = yield* j.acquireLease("t")
          for (let i = 0; i < 20; i++) fence = yield* j.append([entry({ i, pad: "x".repeat(50) })], fence)
        })
      )
      assert.isAbove(fs.readdirSync(path.join(dir, "segments")).length, 3)
      const j = yield* reopen(dir, { segmentBytesMax: 300 })
      assert.strictEqual(j.head(), 21)
      assert.deepStrictEqual(
        payloads(yield* j.read(1)).map((p) => (p as { i: number }).i),
        Array.from({ length: 20 }, (_, i) => i)
      )
    })
  )

  it.effect("damage under a checkpoint: found on read, or on open with verify", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Journal.openFile(dir, { owner: "t" })
          let fence = yield* j.acquireLease("t")
          for (let i = 0; i < 5; i++) fence = yield* j.append([entry(i)], fence)
          yield* j.checkpoint(null)
        })
      )
      const file = segmentFile(dir)
      const bytes = fs.readFileSync(file)
      bytes[80] = (bytes[80] as number) ^ 0x01
      fs.writeFileSync(file, bytes)
      const j = yield* reopen(dir, { writer: false })
      const onRead = yield* Effect.flip(j.read(1))
      assert.strictEqual(onRead._tag, "JournalCorrupt")
      const onOpen = yield* Effect.flip(reopen(dir, { writer: false, verify: true }))
      assert.strictEqual(onOpen._tag, "JournalCorrupt")
    })
  )

  it.effect("a checkpoint in an older segment, then more segments: reopening reads only the rest, and agrees", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const options = { owner: "t", segmentBytesMax: 400 }
      yield* Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Journal.openFile(dir, options)
          let fence = yield* j.acquireLease("t")
          for (let i = 0; i < 10; i++) fence = yield* j.append([entry({ i, pad: "y".repeat(40) })], fence)
          yield* j.checkpoint("at 11")
          for (let i = 10; i < 30; i++) fence = yield* j.append([entry({ i, pad: "y".repeat(40) })], fence)
        })
      )
      const j = yield* reopen(dir, options)
      assert.deepStrictEqual(j.recovery.checkpoint, { head: 11, data: "at 11" })
      assert.strictEqual(j.recovery.tail.length, 20)
      assert.deepStrictEqual(
        payloads(yield* j.read(1)).map((p) => (p as { i: number }).i),
        Array.from({ length: 30 }, (_, i) => i)
      )
      const fence = yield* j.acquireLease("t")
      assert.deepStrictEqual(fence, { epoch: 2, head: 32 })
    })
  )

  it.effect("a memory journal reopened over the same store replays it", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const j = yield* Journal.openMemory(store)
      const fence = yield* j.acquireLease("t")
      yield* j.append([entry("x"), entry("y")], fence)
      j.releaseLease.pipe(Effect.runSync)
      const again = yield* Journal.openMemory(store)
      assert.deepStrictEqual([again.head(), again.epoch()], [3, 1])
      assert.deepStrictEqual(payloads(yield* again.read(1)), ["x", "y"])
      const exit = yield* Effect.exit(again.acquireLease("u"))
      assert.isTrue(Exit.isSuccess(exit))
    })
  )
})
