import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import * as Session from "../../src/session/Session.ts"
import { tempDir } from "../support/tmp.ts"

const texts = (entries: ReadonlyArray<Session.Entry>) => entries.map((e) => (e.payload as { text: string }).text)

describe("Session", () => {
  it.effect("appends, forks in O(1), switches, and gives root→head paths", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      assert.strictEqual(s.status(), "active")
      const a = yield* s.append("message", { text: "a" })
      const b = yield* s.append("message", { text: "b" })
      yield* s.append("message", { text: "c" })
      yield* s.fork(b.id, "alt")
      // A fork writes one record whatever the depth: history is never copied.
      const before = s.fence().head
      yield* s.fork(a.id, "early")
      assert.strictEqual(s.fence().head, before + 1)
      yield* s.switchTo("alt")
      const d = yield* s.append("message", { text: "d" })
      assert.strictEqual(d.parentId, b.id)
      assert.deepStrictEqual(texts(yield* s.path()), ["a", "b", "d"])
      assert.deepStrictEqual(texts(yield* s.path("main")), ["a", "b", "c"])
      assert.deepStrictEqual(texts(yield* s.path("early")), ["a"])
      assert.strictEqual(s.activeBranch(), "alt")
    })
  )

  it.effect("concurrent appends and forks are checked and sequenced in one step (no stale parent, one winner per name)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "w" })
          const entries = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => s.append("message", { text: String(i) }),
            {
              concurrency: "unbounded"
            }
          )
          // Each entry's parent is the one sequenced just before it: one chain, nothing stale.
          const ids = entries.map((e) => e.id).sort((a, b) => a - b)
          for (let i = 1; i < ids.length; i++) assert.strictEqual(s.tree().parentOf(ids[i] as number), ids[i - 1])
          const forks = yield* Effect.forEach([1, 2, 3], () => Effect.exit(s.fork(ids[0] as number, "same")), { concurrency: "unbounded" })
          assert.strictEqual(forks.filter((e) => e._tag === "Success").length, 1)
        }).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, 3))
      )
      // And the journal replays.
      const again = yield* Session.openFile(dir, { owner: "w2" })
      assert.strictEqual((yield* again.path("main")).length, 20)
    })
  )

  it.effect("a forged record the tree refuses is JournalRecordInvalid on open, not a defect", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const journal = yield* Journal.openMemory(store)
      yield* journal.append([{ _tag: "session.created", sessionId: "x", time: 0 }], { epoch: 0, head: 0 })
      const fence = yield* journal.acquireLease("forger")
      // An entry whose parent is not its branch's head.
      yield* journal.append([{ _tag: "entry.appended", branch: "main", parentId: 77, type: "m", time: 0, payload: null }], fence)
      const error = yield* Effect.flip(Session.openMemory(store, { writer: false }))
      assert.strictEqual(error._tag, "JournalRecordInvalid")
      assert.include(error.message, "record 3")
    })
  )

  it.effect("entries carry the Clock's time (TestClock)", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      yield* TestClock.adjust("5 seconds")
      const e = yield* s.append("message", { text: "t" })
      assert.strictEqual(e.at, 5000)
      assert.strictEqual((yield* s.entry(e.id)).at, 5000)
    })
  )

  it.effect("labels entries; the latest label wins and survives replay", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const e = yield* s.append("message", { text: "x" })
      yield* s.label(e.id, "first")
      yield* s.label(e.id, "better")
      assert.strictEqual((yield* s.entry(e.id)).label, "better")
      yield* s.suspend
      const again = yield* Session.openMemory(store)
      assert.strictEqual(again.labels().get(e.id), "better")
    })
  )

  it.effect("bad requests are typed errors and write nothing", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      const e = yield* s.append("message", { text: "x" })
      const head = s.fence().head
      assert.strictEqual((yield* Effect.flip(s.switchTo("nope")))._tag, "UnknownBranch")
      assert.strictEqual((yield* Effect.flip(s.fork(999, "x")))._tag, "UnknownEntry")
      assert.strictEqual((yield* Effect.flip(s.fork(e.id, "main")))._tag, "BranchExists")
      assert.strictEqual((yield* Effect.flip(s.fork(e.id, "")))._tag, "InvalidRequest")
      assert.strictEqual((yield* Effect.flip(s.label(12345, "x")))._tag, "UnknownEntry")
      assert.strictEqual((yield* Effect.flip(s.entry(12345)))._tag, "UnknownEntry")
      assert.strictEqual((yield* Effect.flip(s.path("ghost")))._tag, "UnknownBranch")
      assert.strictEqual((yield* Effect.flip(s.append("", {})))._tag, "InvalidRequest")
      assert.strictEqual((yield* Effect.flip(s.append("message", { f: (() => 1) as unknown as number })))._tag, "InvalidRequest")
      // The lease record of position 2 is not an entry either.
      assert.strictEqual((yield* Effect.flip(s.entry(2)))._tag, "UnknownEntry")
      assert.strictEqual(s.fence().head, head)
    })
  )

  it.effect("lifecycle: open → active ⇄ suspended → closed, folded from the journal", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      yield* s.append("message", { text: "x" })
      yield* s.suspend
      assert.strictEqual(s.status(), "suspended")
      assert.strictEqual((yield* Effect.flip(s.append("message", { text: "late" })))._tag, "SessionNotActive")
      const reader = yield* Session.openMemory(store, { writer: false })
      assert.strictEqual(reader.status(), "suspended")
      const resumed = yield* Session.openMemory(store)
      assert.strictEqual(resumed.status(), "active")
      assert.strictEqual(resumed.fence().epoch, 2)
      yield* resumed.close
      assert.strictEqual(resumed.status(), "closed")
      const closed = yield* Effect.flip(Session.openMemory(store))
      assert.strictEqual(closed._tag, "SessionNotActive")
      const view = yield* Session.openMemory(store, { writer: false })
      assert.deepStrictEqual([view.status(), texts(yield* view.path())], ["closed", ["x"]])
    })
  )

  it.effect("a reader cannot write", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      yield* s.append("message", { text: "x" })
      const reader = yield* Session.openMemory(store, { writer: false })
      assert.strictEqual((yield* Effect.flip(reader.append("message", { text: "no" })))._tag, "SessionNotActive")
    })
  )

  it.effect("resume after a crash (no suspend) replays to the same tree, on disk", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const before = yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "one" })
          const a = yield* s.append("message", { text: "a" })
          yield* s.append("message", { text: "b" })
          yield* s.fork(a.id, "side")
          yield* s.switchTo("side")
          yield* s.append("message", { text: "s" })
          // Simulate kill -9: let go of the lock without writing session.suspended.
          yield* Effect.sync(() => fs.unlinkSync(`${dir}/writer.lock`))
          return { branches: s.branches(), active: s.activeBranch(), id: s.id }
        })
      )
      const s = yield* Session.resume(dir, { owner: "two" })
      assert.deepStrictEqual(s.branches(), before.branches)
      assert.strictEqual(s.activeBranch(), before.active)
      assert.strictEqual(s.id, before.id)
      assert.strictEqual(s.status(), "active")
      assert.deepStrictEqual(texts(yield* s.path()), ["a", "s"])
      assert.deepStrictEqual(texts(yield* s.path("main")), ["a", "b"])
    })
  )

  it.effect("a second writer on disk is refused with SessionLocked; readers open freely", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const s = yield* Session.openFile(dir, { owner: "first" })
      yield* s.append("message", { text: "x" })
      assert.strictEqual((yield* Effect.flip(Session.openFile(dir, { owner: "second" })))._tag, "SessionLocked")
      const reader = yield* Session.openFile(dir, { writer: false })
      assert.deepStrictEqual(texts(yield* reader.path()), ["x"])
    })
  )

  it.effect("a taken-over writer gets StaleWriter and the new writer's history wins", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const old = yield* Session.openFile(dir, { owner: "old" })
      yield* old.append("message", { text: "kept" })
      const taker = yield* Session.openFile(dir, { owner: "new", takeover: true })
      yield* taker.append("message", { text: "new" })
      assert.strictEqual((yield* Effect.flip(old.append("message", { text: "lost" })))._tag, "StaleWriter")
      assert.deepStrictEqual(texts(yield* taker.path()), ["kept", "new"])
    })
  )

  it.effect("reopening a big session uses the checkpoint and matches a full replay", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "w", durability: "os" })
          for (let i = 0; i < 5000; i++) {
            const e = yield* s.append("message", { text: String(i) })
            if (i % 1000 === 0) yield* s.fork(e.id, `b${i}`)
          }
        })
      )
      const fast = yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { writer: false })
          return { branches: s.branches(), path: s.tree().pathTo(yield* s.head()), active: s.activeBranch() }
        })
      )
      fs.rmSync(`${dir}/checkpoint`)
      const slow = yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { writer: false })
          return { branches: s.branches(), path: s.tree().pathTo(yield* s.head()), active: s.activeBranch() }
        })
      )
      assert.deepStrictEqual(fast, slow)
      assert.strictEqual(fast.path.length, 5000)
    })
  )
})
