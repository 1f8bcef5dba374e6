// Scenarios from the field, as named tests: what happens to tool calls when the process dies, is
// interrupted, tears its last record, or retries after a transient error.
//
// A process "dies" here the way SIGKILL leaves it: the folder is copied as it is on disk at that
// moment (all that was written survives, nothing more is written, the writer's lock is left by a
// dead owner and removed), and the next process opens the copy. The dying process goes on in the
// original folder, untouched by the rest of the test, and is interrupted at the end.
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { decodePayloadBytes, frameAt, frameHeaderBytes, headerBytes } from "../../src/journal/Codec.ts"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import type { Call } from "../../src/toolcall/ToolCalls.ts"
import { allowAll } from "../support/authority.ts"
import { segmentFile, tempDir } from "../support/tmp.ts"

/** The outside world: every request a tool sent, with its key (a request may or may not have an effect). */
class World {
  readonly requests: Array<{ readonly callId: string; readonly key: string; readonly attempt: number }> = []
  of(callId: string) {
    return this.requests.filter((r) => r.callId === callId)
  }
}

const input = Schema.Struct({ q: Schema.String })
const output = Schema.Struct({ answer: Schema.String })
type Step = "ok" | "rateLimited" | "hang" | "resetAfterCommit"

/** A tool whose attempts follow `script` (then succeed); every attempt is a request to `world`. */
function tool(
  world: World,
  name: string,
  semantics: Tool.Semantics,
  script: ReadonlyArray<Step>,
  extra: Partial<Tool.ToolSpec<typeof input, typeof output>> = {}
) {
  const rerunnable = semantics === "readOnly" || semantics === "idempotent"
  return Tool.make({
    name,
    description: `${semantics} tool`,
    input,
    output,
    semantics,
    timeoutMs: 60_000,
    retry: rerunnable ? { attemptsMax: 3, baseMs: 1000, capMs: 4000 } : {},
    ...(semantics === "compensatable" ? { compensate: () => Effect.void } : {}),
    run: ({ q }, ctx) =>
      Effect.suspend(() => {
        const step = script[ctx.attempt - 1] ?? "ok"
        if (step === "rateLimited") return Effect.fail(new Tool.ToolFailure({ message: "429 rate limited, retry in 1 s", retryable: true }))
        world.requests.push({ callId: ctx.callId, key: ctx.idempotencyKey, attempt: ctx.attempt })
        if (step === "hang") return Effect.never
        if (step === "resetAfterCommit") return Effect.fail(new Tool.ToolFailure({ message: "connection reset", retryable: true }))
        return Effect.succeed({ answer: `${name}(${q})` })
      }),
    ...extra
  })
}

/**
 * What SIGKILL leaves: `dir` as it is on disk now, copied into `into` (a temp folder of the test's
 * scope, not of the dying process's), with its dead owner's lock removed.
 */
const killInto = (dir: string, into: string) =>
  Effect.sync(() => {
    fs.cpSync(dir, into, { recursive: true })
    fs.rmSync(path.join(into, "writer.lock"), { force: true })
    return into
  })

/** `killInto` a fresh temp folder, for a process that is not inside a scope of its own. */
const killed = (dir: string) => Effect.flatMap(tempDir("keel-killed-"), (into) => killInto(dir, into))

/** The journal as it is on disk (a reader: nothing is recovered or cut). */
const onDisk = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* Journal.openFile(dir, { writer: false })
      return { records: yield* journal.read(1), torn: journal.recovery.tornTail }
    })
  )

/** The tool-call records of a journal, as `callId tag attempt` strings. */
const callRecords = (records: ReadonlyArray<Journal.Committed>) =>
  records.flatMap((r) => {
    const e = r.event
    if (!e._tag.startsWith("tool.call.") || e._tag === "tool.call.proposed" || !("callId" in e)) return []
    return [`${e.callId} ${e._tag.slice("tool.call.".length)} ${"attempt" in e ? e.attempt : ""}`.trim()]
  })

/** Waits (real time: the journal's writes are real I/O) until `ready` holds; fails after 10 s. */
const waitFor = <E>(what: string, ready: Effect.Effect<boolean, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 5000; i++) {
      if (yield* ready) return
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })

const hasRecords = (dir: string, expected: ReadonlyArray<string>) =>
  Effect.map(onDisk(dir), ({ records }) => {
    const got = callRecords(records)
    return expected.every((r) => got.includes(r))
  })

/**
 * Pairing, from the records on disk: every started attempt of every call has exactly one outcome
 * (an outcome names its attempt; a rejection before start is attempt 0).
 */
function assertOneOutcomePerAttempt(records: ReadonlyArray<Journal.Committed>) {
  const started = new Map<string, number>()
  const outcomes = new Map<string, number>()
  for (const { event: e } of records) {
    if (!("callId" in e) || !("attempt" in e)) continue
    const key = `${e.callId} attempt ${e.attempt}`
    if (e._tag === "tool.call.started") started.set(key, (started.get(key) ?? 0) + 1)
    else outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
  }
  for (const [key, n] of started) {
    assert.strictEqual(n, 1, `${key} started ${n} times`)
    assert.strictEqual(outcomes.get(key) ?? 0, 1, `${key}: ${outcomes.get(key) ?? 0} outcomes (records: ${callRecords(records).join(", ")})`)
  }
  for (const key of outcomes.keys()) assert.isTrue(started.has(key) || key.endsWith(" attempt 0"), `${key} has an outcome but never started`)
}

/** Opens `dir` as the next writer, checks that nothing is left to resolve and that a model can be given the context. */
const resumesClean = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const s = yield* Session.openFile(dir, { owner: "later" })
      assert.deepStrictEqual(
        s
          .calls()
          .unresolved()
          .map((c) => `${c.callId} ${c.state}`),
        []
      )
      return yield* s.context()
    })
  )

describe("scenarios from the field", () => {
  describe("three parallel calls; the second hits a rate limit mid-flight and the process dies → resumable, two results kept, the third resolved", () => {
    const variants = [
      {
        third: "idempotent (re-run with the same key)",
        make: (world: World) => tool(world, "put_record", "idempotent", ["hang"]),
        expect: (world: World, call: Call | undefined, key: string) => {
          assert.strictEqual(call?.state, "succeeded")
          assert.strictEqual(call?.attempt, 2)
          assert.deepStrictEqual(
            world.of("c3").map((r) => r.key),
            [key, key]
          )
        }
      },
      {
        third: "compensatable with reconcile (reconciled: it ran)",
        make: (world: World) =>
          tool(world, "book_room", "compensatable", ["hang"], {
            reconcile: ({ q }, ctx) =>
              Effect.sync(() =>
                world.requests.some((r) => r.key === ctx.idempotencyKey) ? { executed: true, output: { answer: `book_room(${q})` } } : { executed: false }
              )
          }),
        expect: (world: World, call: Call | undefined, key: string) => {
          assert.deepStrictEqual(call?.outcome, { kind: "succeeded", output: { answer: "book_room(q3)" }, reconciled: true })
          assert.deepStrictEqual(
            world.of("c3").map((r) => r.key),
            [key]
          )
        }
      },
      {
        third: "unsafe without reconcile (closed: outcome unknown, never re-run)",
        make: (world: World) => tool(world, "send_email", "unsafe", ["hang"]),
        expect: (world: World, call: Call | undefined, key: string) => {
          assert.strictEqual(call?.state, "failed")
          assert.strictEqual(call?.outcome?.kind === "failed" ? call.outcome.reason : "", "unknown")
          assert.deepStrictEqual(
            world.of("c3").map((r) => r.key),
            [key]
          )
        }
      }
    ] as const

    for (const variant of variants) {
      it.effect(`the third is ${variant.third}`, () =>
        Effect.gen(function* () {
          const dir = yield* tempDir()
          const world = new World()
          const third = variant.make(world)
          const tools = Executor.registry([tool(world, "search", "readOnly", []), tool(world, "fetch_rates", "idempotent", ["rateLimited"]), third], allowAll)
          const calls = [
            { callId: "c1", tool: "search", input: { q: "q1" } },
            { callId: "c2", tool: "fetch_rates", input: { q: "q2" } },
            { callId: "c3", tool: third.name, input: { q: "q3" } }
          ]

          // The first process: c1 succeeds, c2 is rate limited (its retry is due in a second), c3 is in flight. Then it dies.
          const left = yield* tempDir("keel-killed-")
          const copy = yield* Effect.scoped(
            Effect.gen(function* () {
              const s = yield* Session.openFile(dir, { owner: "first" })
              yield* s.propose("assistant", { text: "three calls at once" }, calls)
              const fiber = yield* Effect.forkChild(
                Executor.runCalls(
                  s,
                  tools,
                  calls.map((c) => c.callId)
                )
              )
              yield* waitFor("c1 succeeded, c2 rate limited, c3 running", hasRecords(dir, ["c1 succeeded 1", "c2 failed 1", "c3 started 1"]))
              yield* waitFor(
                "c3's request",
                Effect.sync(() => world.of("c3").length === 1)
              )
              const copy = yield* killInto(dir, left)
              yield* Fiber.interrupt(fiber) // the original folder only: the copy is what the dead process left
              return copy
            })
          )
          assert.deepStrictEqual(world.of("c2").length, 0, "the rate limit came before any effect")

          // The next process: resumes, recovers, and can hand the branch to a model.
          const s = yield* Session.openFile(copy, { owner: "second" })
          const key = (callId: string) => Tool.idempotencyKey(s.id, callId)
          assert.deepStrictEqual(
            s
              .calls()
              .all()
              .map((c) => `${c.callId} ${c.state}`),
            ["c1 succeeded", "c2 failed", "c3 inDoubt"]
          )
          const early = yield* Effect.exit(s.context())
          assert.isTrue(early._tag === "Failure", "no context while a call is in doubt")
          const recovering = yield* Effect.forkChild(Recovery.recover(s, tools))
          yield* TestClock.adjust("10 seconds") // any retry recovery schedules is due
          yield* Fiber.join(recovering)

          // c1's result is kept as it was: not run again.
          assert.deepStrictEqual(s.calls().get("c1")?.outcome, { kind: "succeeded", output: { answer: "search(q1)" }, reconciled: false })
          assert.deepStrictEqual(
            world.of("c1").map((r) => r.key),
            [key("c1")]
          )
          // c2 is resolved: its rate limit is its outcome (retryable, for the model to decide), or it was retried with the same key.
          const c2 = s.calls().get("c2")
          if (c2?.state === "failed") {
            assert.deepStrictEqual(c2.outcome, { kind: "failed", reason: "error", message: "429 rate limited, retry in 1 s", retryable: true })
            assert.strictEqual(world.of("c2").length, 0)
          } else {
            assert.strictEqual(c2?.state, "succeeded")
            assert.isTrue(
              world.of("c2").every((r) => r.key === key("c2")),
              "a retry carries the same key"
            )
          }
          // c3 is resolved per its semantics.
          variant.expect(world, s.calls().get("c3"), key("c3"))
          const context = yield* s.context()
          assert.deepStrictEqual(
            context.at(-1)?.calls.map((c) => c.callId),
            ["c1", "c2", "c3"]
          )
          assertOneOutcomePerAttempt((yield* onDisk(copy)).records)

          // And it stays resumable: the second process dies too, the third opens what it left.
          const again = yield* killed(copy)
          const resumed = yield* resumesClean(again)
          assert.strictEqual(resumed.at(-1)?.calls.length, 3)
        })
      )
    }
  })

  it.effect("interrupt during a tool call → cancelled outcome, resumable", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const world = new World()
      const running = yield* Deferred.make<AbortSignal>()
      const deploy = Tool.make({
        name: "deploy",
        description: "unsafe, slow",
        input,
        output,
        semantics: "unsafe",
        timeoutMs: 60_000,
        run: (_, ctx) =>
          Effect.gen(function* () {
            world.requests.push({ callId: ctx.callId, key: ctx.idempotencyKey, attempt: ctx.attempt })
            yield* Deferred.succeed(running, ctx.signal)
            return yield* Effect.never
          })
      })
      const tools = Executor.registry([tool(world, "search", "readOnly", []), deploy], allowAll)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "first" })
          yield* s.propose("assistant", { text: "search and deploy" }, [
            { callId: "c1", tool: "search", input: { q: "q1" } },
            { callId: "c2", tool: "deploy", input: { q: "prod" } }
          ])
          const fiber = yield* Effect.forkChild(Executor.runCalls(s, tools, ["c1", "c2"]))
          const signal = yield* Deferred.await(running)
          yield* waitFor(
            "c1's result",
            Effect.sync(() => s.calls().get("c1")?.state === "succeeded")
          )
          yield* Fiber.interrupt(fiber) // Ctrl-C
          // Once the interruption is over, cancelled is on disk, the tool was told to stop, c1's result is kept.
          assert.isTrue(signal.aborted)
          const records = callRecords((yield* onDisk(dir)).records)
          assert.deepStrictEqual(
            records.filter((r) => r.startsWith("c2")),
            ["c2 authorized", "c2 started 1", "c2 cancelled 1"]
          )
          assert.deepStrictEqual(
            records.filter((r) => r.startsWith("c1")),
            ["c1 authorized", "c1 started 1", "c1 succeeded 1"]
          )
          assert.deepStrictEqual(s.calls().get("c2")?.outcome, { kind: "cancelled" })
          // The session goes on in the same process: the model sees both outcomes, and can take another turn.
          const context = yield* s.context()
          assert.deepStrictEqual(
            context.at(-1)?.calls.map((c) => c.outcome?.kind),
            ["succeeded", "cancelled"]
          )
        })
      )
      // A later process resumes it: nothing in doubt, nothing re-run, and the next turn runs.
      const s = yield* Session.openFile(dir, { owner: "second" })
      assert.deepStrictEqual(s.calls().unresolved(), [])
      assert.deepStrictEqual(yield* Recovery.recover(s, tools), [])
      assert.strictEqual(world.of("c2").length, 1, "a cancelled unsafe call is never run again")
      const { calls } = yield* s.propose("assistant", { text: "search again" }, [{ callId: "c3", tool: "search", input: { q: "q3" } }])
      const [c3] = yield* Executor.runCalls(
        s,
        tools,
        calls.map((c) => c.callId)
      )
      assert.strictEqual(c3?.state, "succeeded")
      assert.deepStrictEqual(
        (yield* s.context()).flatMap((e) => e.calls.map((c) => `${c.callId} ${c.state}`)),
        ["c1 succeeded", "c2 cancelled", "c3 succeeded"]
      )
      assertOneOutcomePerAttempt((yield* onDisk(dir)).records)
    })
  )

  describe("a torn record in the middle of an outcome write → resumable", () => {
    const variants = [
      { semantics: "idempotent" as const, resolved: "re-run with the same key", executions: 2 },
      { semantics: "unsafe" as const, resolved: "reconciled, not re-run", executions: 1 }
    ]
    for (const variant of variants) {
      it.effect(`${variant.semantics}: the torn tail is cut, the call is in doubt, ${variant.resolved}`, () =>
        Effect.gen(function* () {
          const dir = yield* tempDir()
          const world = new World()
          const reconcile = (q: string, key: string) =>
            world.requests.some((r) => r.key === key)
              ? { executed: true as const, output: { answer: `${variant.semantics}_tool(${q})` } }
              : { executed: false as const }
          const theTool = tool(world, `${variant.semantics}_tool`, variant.semantics, [], {
            reconcile: ({ q }, ctx) => Effect.sync(() => reconcile(q, ctx.idempotencyKey))
          })
          const tools = Executor.registry([theTool], allowAll)

          // The first process runs the call to its end; the kill lands while the outcome's frame is being written.
          const left = yield* tempDir("keel-killed-")
          const copy = yield* Effect.scoped(
            Effect.gen(function* () {
              const s = yield* Session.openFile(dir, { owner: "first" })
              yield* s.propose("assistant", { text: "one call" }, [{ callId: "c1", tool: theTool.name, input: { q: "q1" } }])
              const [done] = yield* Executor.runCalls(s, tools, ["c1"])
              assert.strictEqual(done?.state, "succeeded")
              return yield* killInto(dir, left)
            })
          )
          // Cut the last frame — the outcome, a real one — in the middle, as a write(2) cut short would.
          const file = segmentFile(copy)
          const bytes = fs.readFileSync(file)
          let last = headerBytes
          for (let at = headerBytes; at < bytes.length; ) {
            const frame = frameAt(bytes, at)
            assert.strictEqual(frame.kind, "frame")
            last = at
            at += frameHeaderBytes + (frame as { length: number }).length
          }
          const batch = decodePayloadBytes(bytes.subarray(last + frameHeaderBytes), new Map())
          assert.isTrue("events" in batch && batch.events.length === 1 && batch.events[0]?._tag === "tool.call.succeeded", "the last frame is the outcome")
          const cut = last + Math.floor((bytes.length - last) / 2)
          fs.truncateSync(file, cut)

          // A reader sees the torn tail and the call still started.
          const seen = yield* onDisk(copy)
          assert.strictEqual(seen.torn?.offset, last)
          assert.deepStrictEqual(callRecords(seen.records), ["c1 authorized", "c1 started 1"])

          // The next writer cuts it, finds the call in doubt, and recovery resolves it.
          const s = yield* Session.openFile(copy, { owner: "second" })
          const reopened = yield* onDisk(copy)
          assert.isNull(reopened.torn, "the torn tail is cut")
          assert.deepStrictEqual(fs.readFileSync(file).subarray(0, last), bytes.subarray(0, last), "the frames before it are kept as they were")
          assert.strictEqual(reopened.records.at(-1)?.event._tag, "lease.acquired", "the new writer's lease follows the last whole frame")
          assert.strictEqual(s.calls().get("c1")?.state, "inDoubt")
          const recovering = yield* Effect.forkChild(Recovery.recover(s, tools))
          yield* TestClock.adjust("10 seconds")
          yield* Fiber.join(recovering)
          const c1 = s.calls().get("c1")
          assert.deepStrictEqual(c1?.outcome, { kind: "succeeded", output: { answer: `${theTool.name}(q1)` }, reconciled: variant.semantics === "unsafe" })
          const key = Tool.idempotencyKey(s.id, "c1")
          assert.deepStrictEqual(
            world.of("c1").map((r) => r.key),
            Array.from({ length: variant.executions }, () => key)
          )
          assert.strictEqual((yield* s.context()).at(-1)?.calls[0]?.state, "succeeded")
          const after = yield* onDisk(copy)
          assert.isNull(after.torn)
          assertOneOutcomePerAttempt(after.records)
          // Resumable again after the recovering process dies as well.
          yield* resumesClean(yield* killed(copy))
        })
      )
    }
  })

  describe("a retry after a transient error → same key, one external effect", () => {
    /** A payments API that dedupes by idempotency key: a key seen before returns the first result, with no new effect. */
    class PaymentsApi {
      readonly charges: Array<string> = []
      readonly requests: Array<string> = []
      private readonly byKey = new Map<string, { readonly id: string }>()
      post(key: string): { readonly id: string } {
        this.requests.push(key)
        let result = this.byKey.get(key)
        if (result === undefined) {
          this.charges.push(key)
          result = { id: `ch_${this.charges.length}` }
          this.byKey.set(key, result)
        }
        return result
      }
    }
    /** Attempt 1: the server commits the charge, then the connection drops before the response arrives. */
    const pay = (api: PaymentsApi, first: "drop" | "hang") =>
      Tool.make({
        name: "pay",
        description: "charges a card (the API dedupes by idempotency key)",
        input: Schema.Struct({ cents: Schema.Int }),
        output: Schema.Struct({ chargeId: Schema.String }),
        semantics: "idempotent",
        timeoutMs: 60_000,
        retry: { attemptsMax: 3, baseMs: 500, capMs: 2000 },
        run: (_, ctx) =>
          Effect.suspend(() => {
            const { id } = api.post(ctx.idempotencyKey)
            if (ctx.attempt > 1) return Effect.succeed({ chargeId: id })
            return first === "drop" ? Effect.fail(new Tool.ToolFailure({ message: "ECONNRESET after the request was sent", retryable: true })) : Effect.never
          })
      })

    it.effect("in the same process: the retry carries the same key and the API charges once", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const api = new PaymentsApi()
        const tools = Executor.registry([pay(api, "drop")], allowAll)
        const s = yield* Session.openFile(dir, { owner: "me" })
        yield* s.propose("assistant", { text: "pay" }, [{ callId: "c1", tool: "pay", input: { cents: 1250 } }])
        const fiber = yield* Effect.forkChild(Executor.runCalls(s, tools, ["c1"]))
        yield* TestClock.adjust("5 seconds")
        const [done] = yield* Fiber.join(fiber)
        const key = Tool.idempotencyKey(s.id, "c1")
        assert.deepStrictEqual(done?.outcome, { kind: "succeeded", output: { chargeId: "ch_1" }, reconciled: false })
        assert.deepStrictEqual(api.requests, [key, key])
        assert.deepStrictEqual(api.charges, [key])
        const { records } = yield* onDisk(dir)
        assert.deepStrictEqual(callRecords(records), ["c1 authorized", "c1 started 1", "c1 failed 1", "c1 started 2", "c1 succeeded 2"])
        const keys = records.flatMap((r) => (r.event._tag === "tool.call.started" ? [r.event.key] : []))
        assert.deepStrictEqual(keys, [key, key])
        assertOneOutcomePerAttempt(records)
      })
    )

    it.effect("across a crash: the call in doubt is re-run with the same key and the API charges once", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const api = new PaymentsApi()
        const left = yield* tempDir("keel-killed-")
        const copy = yield* Effect.scoped(
          Effect.gen(function* () {
            const s = yield* Session.openFile(dir, { owner: "first" })
            yield* s.propose("assistant", { text: "pay" }, [{ callId: "c1", tool: "pay", input: { cents: 1250 } }])
            const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry([pay(api, "hang")], allowAll), ["c1"]))
            yield* waitFor(
              "the charge",
              Effect.sync(() => api.charges.length === 1)
            )
            const copy = yield* killInto(dir, left)
            yield* Fiber.interrupt(fiber)
            return copy
          })
        )
        const s = yield* Session.openFile(copy, { owner: "second" })
        const key = Tool.idempotencyKey(s.id, "c1")
        const recovering = yield* Effect.forkChild(Recovery.recover(s, Executor.registry([pay(api, "hang")], allowAll)))
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(recovering)
        assert.deepStrictEqual(s.calls().get("c1")?.outcome, { kind: "succeeded", output: { chargeId: "ch_1" }, reconciled: false })
        assert.deepStrictEqual(api.requests, [key, key])
        assert.deepStrictEqual(api.charges, [key])
        assert.strictEqual((yield* s.context()).at(-1)?.calls[0]?.state, "succeeded")
      })
    )
  })
})
