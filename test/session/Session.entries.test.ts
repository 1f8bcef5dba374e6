// session.entries: many entries with one batched journal read (what context assembly uses).
import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { frameHeaderBytes, headerBytes } from "../../src/journal/Codec.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import * as Session from "../../src/session/Session.ts"
import { segmentFile, tempDir } from "../support/tmp.ts"

/** Byte offset of the frame whose first position is `position`, in the only segment of `dir`. */
const frameOffset = (dir: string, position: number) => {
  const bytes = fs.readFileSync(segmentFile(dir))
  for (let offset = headerBytes; offset + frameHeaderBytes <= bytes.length; ) {
    const n = bytes.readUInt32LE(offset)
    const payload = JSON.parse(bytes.subarray(offset + frameHeaderBytes, offset + frameHeaderBytes + n).toString("utf8")) as { p: number }
    if (payload.p === position) return offset
    offset += frameHeaderBytes + n
  }
  throw new Error(`no frame starts at position ${position}`)
}

/** A session with two branches, labels and a fork record between entries; returns the ids. */
const populate = (s: Session.Session) =>
  Effect.gen(function* () {
    const ids: Array<number> = []
    for (let i = 0; i < 30; i++) {
      ids.push((yield* s.append("message", { text: `m${i}`, pad: "p".repeat(i * 10) })).id)
      if (i === 10) yield* s.fork(ids[5] as number, "side")
    }
    yield* s.label(ids[3] as number, "third")
    yield* s.switchTo("side")
    for (let i = 0; i < 5; i++) ids.push((yield* s.append("message", { text: `s${i}` })).id)
    return ids
  })

/** entries(ids) must be, id by id, what entry(id) gives. */
const agrees = (s: Session.Session, ids: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const many = yield* s.entries(ids)
    assert.strictEqual(many.length, ids.length)
    for (const [k, id] of ids.entries()) assert.deepStrictEqual(many[k], yield* s.entry(id), `entry ${id}`)
  })

describe("Session.entries", () => {
  it.effect("gives the entries asked, in that order (repeats too), each as entry gives it, cached or read from the journal", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const ids = yield* populate(s)
      const asked = [ids[20], ids[3], ids[0], ids[3], ids[34], ids[12]] as Array<number>
      yield* agrees(s, asked)
      assert.strictEqual((yield* s.entries([ids[3] as number]))[0]?.label, "third")
      assert.deepStrictEqual(yield* s.entries([]), [])
      // A reader over the same journal has an empty cache: everything comes from one batched read.
      const r = yield* Session.openMemory(store, { writer: false })
      const fresh = yield* r.entries(asked)
      assert.deepStrictEqual(fresh, yield* s.entries(asked))
      assert.deepStrictEqual(yield* r.entries(r.tree().pathTo(yield* r.head("main"))), yield* r.path("main"))
    })
  )

  it.effect("on disk after reopening: the whole branch in one call equals path(), in any order", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(Effect.flatMap(Session.openFile(dir, { owner: "w", durability: "os" }), populate))
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { writer: false })
          const path = s.tree().pathTo(yield* s.head("main"))
          const reversed = [...path].reverse()
          const entries = yield* s.entries(reversed)
          assert.deepStrictEqual([...entries].reverse(), [...(yield* s.path("main"))])
          yield* agrees(s, reversed)
        })
      )
    })
  )

  it.effect("positions that are not entries are refused with UnknownEntry, naming the first, as entry refuses them", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      const ids = yield* populate(s)
      const fork = (ids[11] as number) - 1 // the branch.forked record between entries 10 and 11
      assert.isFalse(s.tree().isEntry(fork))
      const head = s.fence().head
      for (const bad of [fork, 0, -1, 1.5, head + 1, 12345]) {
        const error = yield* Effect.flip(s.entries([ids[0] as number, bad, ids[1] as number]))
        assert.strictEqual(error._tag, "UnknownEntry", `id ${bad}`)
        assert.strictEqual((error as { entryId: number }).entryId, bad)
        assert.deepStrictEqual(yield* Effect.flip(s.entry(bad)), error)
      }
      const first = yield* Effect.flip(s.entries([0, fork]))
      assert.strictEqual((first as { entryId: number }).entryId, 0)
    })
  )

  it.effect("a corrupt frame among the entries read is JournalCorrupt naming its offset; the others still read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const ids = yield* Effect.scoped(Effect.flatMap(Session.openFile(dir, { owner: "w", durability: "os" }), populate))
      const damaged = ids[15] as number
      const offset = frameOffset(dir, damaged)
      const file = segmentFile(dir)
      const bytes = fs.readFileSync(file)
      bytes[offset + frameHeaderBytes + 20] = (bytes[offset + frameHeaderBytes + 20] as number) ^ 0x01
      fs.writeFileSync(file, bytes)
      yield* Effect.scoped(
        Effect.gen(function* () {
          // A reader trusts the checkpoint the writer saved: the damage is found when the entry is read.
          const s = yield* Session.openFile(dir, { writer: false })
          const path = s.tree().pathTo(yield* s.head("main"))
          const error = yield* Effect.flip(s.entries(path))
          assert.strictEqual(error._tag, "JournalCorrupt")
          assert.strictEqual((error as { offset: number }).offset, offset)
          assert.include(error.message, file)
          assert.deepStrictEqual(yield* Effect.flip(s.entry(damaged)), error)
          const rest = path.filter((id) => id !== damaged)
          assert.strictEqual((yield* s.entries(rest)).length, rest.length)
        })
      )
    })
  )
})
