import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { allowAll } from "../support/authority.ts"
import { tempDir } from "../support/tmp.ts"

/** A world outside the runtime: what each idempotency key did, to count real executions. */
class Ledger {
  readonly runs: Array<{ key: string; attempt: number }> = []
  count(key: string): number {
    return this.runs.filter((r) => r.key === key).length
  }
}

const input = Schema.Struct({ n: Schema.Finite })
const output = Schema.Struct({ doubled: Schema.Finite })

/** A tool whose attempts follow `script` (then succeed), recording every execution in `ledger`. */
function scripted(
  ledger: Ledger,
  semantics: Tool.Semantics,
  script: ReadonlyArray<"fail" | "retryable" | "die" | "hang" | "bad-output"> = [],
  extra: Partial<Tool.ToolSpec<typeof input, typeof output>> = {}
) {
  return Tool.make({
    name: `double_${semantics}`,
    description: "doubles n",
    input,
    output,
    semantics,
    timeoutMs: 1000,
    retry: semantics === "readOnly" || semantics === "idempotent" ? { attemptsMax: 3, baseMs: 10, capMs: 40 } : {},
    compensate: () => Effect.void,
    run: ({ n }, ctx) =>
      Effect.suspend(() => {
        ledger.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
        const step = script[ctx.attempt - 1]
        if (step === "fail") return Effect.fail(new Tool.ToolFailure({ message: "no", retryable: false }))
        if (step === "retryable") return Effect.fail(new Tool.ToolFailure({ message: "rate limited", retryable: true }))
        if (step === "die") return Effect.die(new Error("boom"))
        if (step === "hang") return Effect.never
        if (step === "bad-output") return Effect.succeed({ doubled: "NaN?" } as unknown as { doubled: number })
        return Effect.succeed({ doubled: n * 2 })
      }),
    ...extra
  })
}

const proposeOne = (s: Session.Session, tool: string, args: Schema.Json, callId = "c1") =>
  Effect.map(s.propose("assistant", { text: "calling" }, [{ callId, tool, input: args }]), (r) => r.calls.map((c) => c.callId))

/** The tool-call records of the journal, as `tag attempt` strings. */
const toolRecords = (store: MemoryStore) =>
  Effect.map(Journal.openMemory(store), (j) => j).pipe(
    Effect.flatMap((j) => j.read(1)),
    Effect.map((records) =>
      records.flatMap((r) =>
        r.event._tag.startsWith("tool.call.") && r.event._tag !== "tool.call.proposed"
          ? [`${r.event._tag.slice(10)} ${"attempt" in r.event ? r.event.attempt : ""}`.trim()]
          : []
      )
    )
  )

describe("Executor", () => {
  it.effect("journals started before the effect and exactly one outcome after it", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const ledger = new Ledger()
      const tool = scripted(ledger, "readOnly")
      const [done] = yield* Executor.runCalls(s, Executor.registry([tool], allowAll), yield* proposeOne(s, tool.name, { n: 21 }))
      assert.deepStrictEqual([done?.state, done?.outcome], ["succeeded", { kind: "succeeded", output: { doubled: 42 }, reconciled: false }])
      assert.deepStrictEqual(yield* toolRecords(store), ["authorized", "started 1", "succeeded 1"])
      assert.deepStrictEqual(ledger.runs, [{ key: Tool.idempotencyKey(s.id, "c1"), attempt: 1 }])
    })
  )

  it.effect("the effect starts only once its started record is on disk (WAL)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const s = yield* Session.openFile(dir, { owner: "w" })
      let seenOnDisk = false
      const probe = Tool.make({
        name: "probe",
        description: "checks the journal from outside",
        input: Schema.Struct({}),
        output: Schema.Boolean,
        semantics: "unsafe",
        timeoutMs: 5000,
        run: () =>
          Effect.scoped(
            Effect.gen(function* () {
              const reader = yield* Journal.openFile(dir, { writer: false })
              const records = yield* reader.read(1)
              seenOnDisk = records.some((r) => r.event._tag === "tool.call.started")
              return seenOnDisk
            })
          ).pipe(Effect.orDie)
      })
      yield* Executor.runCalls(s, Executor.registry([probe], allowAll), yield* proposeOne(s, "probe", {}))
      assert.isTrue(seenOnDisk)
    })
  )

  it.effect("retries retryable failures of idempotent tools with the same key, with backoff", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const ledger = new Ledger()
      const tool = scripted(ledger, "idempotent", ["retryable", "retryable"])
      const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry([tool], allowAll), yield* proposeOne(s, tool.name, { n: 1 })))
      yield* TestClock.adjust("1 second")
      const [done] = yield* Fiber.join(fiber)
      assert.strictEqual(done?.state, "succeeded")
      assert.deepStrictEqual(yield* toolRecords(store), ["authorized", "started 1", "failed 1", "started 2", "failed 2", "started 3", "succeeded 3"])
      assert.deepStrictEqual(new Set(ledger.runs.map((r) => r.key)).size, 1)
      assert.strictEqual(ledger.runs.length, 3)
    })
  )

  it.effect("never retries an unsafe tool, and stops after the attempts allowed", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const ledger = new Ledger()
      const unsafe = scripted(ledger, "unsafe", ["retryable"])
      const [a] = yield* Executor.runCalls(s, Executor.registry([unsafe], allowAll), yield* proposeOne(s, unsafe.name, { n: 1 }))
      assert.deepStrictEqual([a?.state, ledger.runs.length], ["failed", 1])
      const stubborn = scripted(ledger, "readOnly", ["retryable", "retryable", "retryable", "retryable"])
      const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry([stubborn], allowAll), yield* proposeOne(s, stubborn.name, { n: 1 }, "c2")))
      yield* TestClock.adjust("1 second")
      const [b] = yield* Fiber.join(fiber)
      assert.deepStrictEqual([b?.state, b?.attempt], ["failed", 3])
    })
  )

  it.effect("bad input, an unknown tool, a defect, bad output and a timeout are outcomes the model sees", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      const ledger = new Ledger()
      const tools = Executor.registry(
        [scripted(ledger, "readOnly", ["die"]), scripted(ledger, "idempotent", ["bad-output"]), scripted(ledger, "unsafe", ["hang"])],
        allowAll
      )
      const { calls } = yield* s.propose("assistant", { text: "five calls" }, [
        { callId: "bad-input", tool: "double_readOnly", input: { n: "twelve" } },
        { callId: "no-tool", tool: "rm_rf", input: {} },
        { callId: "defect", tool: "double_readOnly", input: { n: 1 } },
        { callId: "bad-output", tool: "double_idempotent", input: { n: 1 } },
        { callId: "hangs", tool: "double_unsafe", input: { n: 1 } }
      ])
      const fiber = yield* Effect.forkChild(
        Executor.runCalls(
          s,
          tools,
          calls.map((c) => c.callId)
        )
      )
      yield* TestClock.adjust("2 seconds")
      const done = yield* Fiber.join(fiber)
      const summary = done.map((c) => `${c.callId}: ${c.state}${c.outcome?.kind === "failed" ? ` ${c.outcome.reason}` : ""}`)
      assert.deepStrictEqual(summary, [
        "bad-input: failed invalidInput",
        "no-tool: failed unknownTool",
        "defect: failed defect",
        "bad-output: failed invalidOutput",
        "hangs: timedOut"
      ])
      // Bad input and an unknown tool never ran anything.
      assert.strictEqual(ledger.runs.filter((r) => r.key.endsWith(":bad-input") || r.key.endsWith(":no-tool")).length, 0)
      const context = yield* s.context()
      assert.strictEqual(context.at(-1)?.calls.length, 5)
    })
  )

  it.effect("a tool that throws instead of failing is a defect outcome, not a crash of the runtime", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const thrower = Tool.make({
        name: "thrower",
        description: "throws synchronously",
        input: Schema.Struct({}),
        output: Schema.Null,
        semantics: "unsafe",
        timeoutMs: 100,
        run: () => {
          throw new Error("not an Effect")
        }
      })
      const [done] = yield* Executor.runCalls(s, Executor.registry([thrower], allowAll), yield* proposeOne(s, "thrower", {}))
      assert.deepStrictEqual([done?.state, done?.outcome?.kind === "failed" ? done.outcome.reason : ""], ["failed", "defect"])
      assert.deepStrictEqual(yield* toolRecords(store), ["authorized", "started 1", "failed 1"])
    })
  )

  it.effect("parallel calls: one failing does not lose the others' results", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      const ledger = new Ledger()
      const tools = Executor.registry([scripted(ledger, "readOnly"), scripted(ledger, "unsafe", ["fail"])], allowAll)
      const { calls } = yield* s.propose("assistant", { text: "three" }, [
        { callId: "a", tool: "double_readOnly", input: { n: 1 } },
        { callId: "b", tool: "double_unsafe", input: { n: 2 } },
        { callId: "c", tool: "double_readOnly", input: { n: 3 } }
      ])
      const done = yield* Executor.runCalls(
        s,
        tools,
        calls.map((c) => c.callId)
      )
      assert.deepStrictEqual(
        done.map((c) => c.state),
        ["succeeded", "failed", "succeeded"]
      )
    })
  )

  it.effect("interrupting a run journals cancelled for the calls in flight", () =>
    Effect.gen(function* () {
      const store = new MemoryStore()
      const s = yield* Session.openMemory(store)
      const ledger = new Ledger()
      const tool = scripted(ledger, "unsafe", ["hang"])
      const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry([tool], allowAll), yield* proposeOne(s, tool.name, { n: 1 })))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(s.calls().get("c1")?.state, "cancelled")
      assert.deepStrictEqual(yield* toolRecords(store), ["authorized", "started 1", "cancelled 1"])
    })
  )

  it.effect("a second outcome, or one for a call never started, is refused", () =>
    Effect.gen(function* () {
      const s = yield* Session.openMemory()
      yield* proposeOne(s, "t", {})
      const neverStarted = yield* Effect.flip(
        s.recordCall((time) => ({ _tag: "tool.call.succeeded", callId: "c1", attempt: 1, output: null, reconciled: false, time }))
      )
      assert.strictEqual(neverStarted._tag, "ToolCallRefused")
      const unknown = yield* Effect.flip(s.recordCall((time) => ({ _tag: "tool.call.cancelled", callId: "ghost", attempt: 1, time })))
      assert.strictEqual(unknown._tag, "ToolCallRefused")
      const duplicate = yield* Effect.flip(s.propose("assistant", {}, [{ callId: "c1", tool: "t", input: {} }]))
      assert.strictEqual(duplicate._tag, "ToolCallRefused")
      yield* s.recordCall((time) => [
        { _tag: "tool.call.authorized", callId: "c1", capability: "test-capability", blocks: ["test-capability"], approvalRequired: false, time },
        { _tag: "tool.call.started", callId: "c1", key: "k", attempt: 1, time }
      ])
      yield* s.recordCall((time) => ({ _tag: "tool.call.cancelled", callId: "c1", attempt: 1, time }))
      const twice = yield* Effect.flip(s.recordCall((time) => ({ _tag: "tool.call.timedOut", callId: "c1", attempt: 1, time })))
      assert.strictEqual(twice._tag, "ToolCallRefused")
    })
  )

  it.effect("after a crash: idempotent calls re-run with the same key, unsafe ones are reconciled or closed unknown, never re-run", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const ledger = new Ledger()
      const idempotent = scripted(ledger, "idempotent")
      const unsafe = scripted(ledger, "unsafe")
      const reconcilable = Tool.make({
        name: "pay",
        description: "pays once",
        input,
        output,
        semantics: "unsafe",
        timeoutMs: 1000,
        run: ({ n }, ctx) =>
          Effect.sync(() => {
            ledger.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
            return { doubled: n * 2 }
          }),
        reconcile: ({ n }, ctx) => Effect.succeed(ledger.count(ctx.idempotencyKey) > 0 ? { executed: true, output: { doubled: n * 2 } } : { executed: false })
      })
      const tools = Executor.registry([idempotent, unsafe, reconcilable], allowAll)
      // The first process: three calls started (their effects ran: the ledger has them), then it dies.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "first" })
          yield* s.propose("assistant", { text: "three" }, [
            { callId: "i", tool: idempotent.name, input: { n: 1 } },
            { callId: "u", tool: unsafe.name, input: { n: 2 } },
            { callId: "p", tool: "pay", input: { n: 3 } }
          ])
          for (const callId of ["i", "u", "p"]) {
            const key = Tool.idempotencyKey(s.id, callId)
            yield* s.recordCall((time) => [
              { _tag: "tool.call.authorized", callId: callId, capability: "test-capability", blocks: ["test-capability"], approvalRequired: false, time },
              { _tag: "tool.call.started", callId, key, attempt: 1, time }
            ])
            ledger.runs.push({ key, attempt: 1 })
          }
          fs.unlinkSync(`${dir}/writer.lock`) // kill -9: no suspend, the lock's owner is gone
        })
      )
      const s = yield* Session.openFile(dir, { owner: "second" })
      assert.deepStrictEqual(
        s
          .calls()
          .all()
          .map((c) => c.state),
        ["inDoubt", "inDoubt", "inDoubt"]
      )
      // Nothing is handed to a model before recovery.
      const early = yield* Effect.exit(s.context())
      assert.isTrue(early._tag === "Failure")
      yield* Recovery.recover(s, tools)
      const byId = (id: string) => s.calls().get(id)
      assert.deepStrictEqual([byId("i")?.state, byId("i")?.attempt], ["succeeded", 2])
      const unsafeOutcome = byId("u")?.outcome
      assert.deepStrictEqual([byId("u")?.state, unsafeOutcome?.kind === "failed" ? unsafeOutcome.reason : ""], ["failed", "unknown"])
      assert.deepStrictEqual(byId("p")?.outcome, { kind: "succeeded", output: { doubled: 6 }, reconciled: true })
      // The unsafe tools ran once each (before the crash); the idempotent one twice, with one key.
      assert.strictEqual(ledger.count(Tool.idempotencyKey(s.id, "u")), 1)
      assert.strictEqual(ledger.count(Tool.idempotencyKey(s.id, "p")), 1)
      assert.strictEqual(ledger.count(Tool.idempotencyKey(s.id, "i")), 2)
      const context = yield* s.context()
      assert.strictEqual(context.at(-1)?.calls.length, 3)
    })
  )
})
