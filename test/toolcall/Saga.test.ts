import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import * as Saga from "../../src/toolcall/Saga.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { allowAll } from "../support/authority.ts"
import { tempDir } from "../support/tmp.ts"

/** A booking system outside the runtime: bookings made and undone, by key. */
class World {
  readonly log: Array<string> = []
}

const step = (world: World, name: string, fails = false) =>
  Tool.make({
    name,
    description: `books ${name}`,
    input: Schema.Struct({ what: Schema.String }),
    output: Schema.Struct({ ref: Schema.String }),
    semantics: "compensatable",
    timeoutMs: 1000,
    run: ({ what }, ctx) =>
      Effect.suspend(() => {
        if (fails) return Effect.fail(new Tool.ToolFailure({ message: `${name} is full`, retryable: false }))
        world.log.push(`do ${name} ${what}`)
        return Effect.succeed({ ref: `${name}:${ctx.idempotencyKey}` })
      }),
    compensate: ({ what }, { ref }) =>
      Effect.sync(() => {
        world.log.push(`undo ${name} ${what} ${ref.split(":")[0]}`)
      })
  })

const trip = [
  { callId: "flight", tool: "flight", input: { what: "LIS" } },
  { callId: "hotel", tool: "hotel", input: { what: "Alfama" } },
  { callId: "car", tool: "car", input: { what: "compact" } }
]

describe("Saga (atomic groups)", () => {
  it.effect("all steps succeed: committed, nothing undone", () =>
    Effect.gen(function* () {
      const world = new World()
      const s = yield* Session.openMemory()
      const tools = Executor.registry([step(world, "flight"), step(world, "hotel"), step(world, "car")], allowAll)
      const { entry } = yield* s.propose("assistant", { text: "book a trip" }, trip, { atomic: true })
      assert.isTrue(yield* Saga.runAtomic(s, tools, entry.id))
      assert.deepStrictEqual(world.log, ["do flight LIS", "do hotel Alfama", "do car compact"])
    })
  )

  it.effect("a step fails: the done ones are compensated newest first, the rest never run", () =>
    Effect.gen(function* () {
      const world = new World()
      const s = yield* Session.openMemory()
      const tools = Executor.registry([step(world, "flight"), step(world, "hotel", true), step(world, "car")], allowAll)
      const { entry } = yield* s.propose("assistant", { text: "book a trip" }, trip, { atomic: true })
      assert.isFalse(yield* Saga.runAtomic(s, tools, entry.id))
      assert.deepStrictEqual(world.log, ["do flight LIS", "undo flight LIS flight"])
      const states = s
        .calls()
        .ofEntry(entry.id)
        .map((c) => `${c.callId}:${c.state}`)
      assert.deepStrictEqual(states, ["flight:compensated", "hotel:failed", "car:failed"])
      // Finished groups are left alone.
      assert.isFalse(yield* Saga.continueSaga(s, tools, entry.id))
      assert.strictEqual(world.log.length, 2)
      const context = yield* s.context()
      assert.strictEqual(context.at(-1)?.calls.length, 3)
    })
  )

  it.effect("a crash in the middle: recovery closes the in-doubt step and compensates what was done", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const world = new World()
      const tools = Executor.registry([step(world, "flight"), step(world, "hotel"), step(world, "car")], allowAll)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "first" })
          yield* s.propose("assistant", { text: "book a trip" }, trip, { atomic: true })
          yield* Executor.runCall(s, tools, "flight")
          // The hotel step starts, its effect may have happened, and the process dies.
          yield* s.recordCall((time) => [
            { _tag: "tool.call.authorized", callId: "hotel", capability: "test-capability", blocks: ["test-capability"], approvalRequired: false, time },
            { _tag: "tool.call.started", callId: "hotel", key: Tool.idempotencyKey(s.id, "hotel"), attempt: 1, time }
          ])
          fs.unlinkSync(`${dir}/writer.lock`)
        })
      )
      const s = yield* Session.openFile(dir, { owner: "second" })
      yield* Recovery.recover(s, tools)
      const states = s
        .calls()
        .all()
        .map((c) => `${c.callId}:${c.state}`)
      assert.deepStrictEqual(states, ["flight:compensated", "hotel:failed", "car:failed"])
      assert.deepStrictEqual(world.log, ["do flight LIS", "undo flight LIS flight"])
      // Compensatable, no reconcile: never re-run, closed as "outcome unknown".
      const hotel = s.calls().get("hotel")?.outcome
      assert.strictEqual(hotel?.kind === "failed" ? hotel.reason : hotel?.kind, "unknown")
    })
  )

  it.effect("a crash after the failure but before compensation: recovery compensates", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const world = new World()
      const tools = Executor.registry([step(world, "flight"), step(world, "hotel", true), step(world, "car")], allowAll)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* Session.openFile(dir, { owner: "first" })
          yield* s.propose("assistant", { text: "book a trip" }, trip, { atomic: true })
          yield* Executor.runCall(s, tools, "flight")
          yield* Executor.runCall(s, tools, "hotel")
          fs.unlinkSync(`${dir}/writer.lock`)
        })
      )
      const s = yield* Session.openFile(dir, { owner: "second" })
      yield* Recovery.recover(s, tools)
      assert.deepStrictEqual(
        s
          .calls()
          .all()
          .map((c) => c.state),
        ["compensated", "failed", "failed"]
      )
      assert.deepStrictEqual(world.log, ["do flight LIS", "undo flight LIS flight"])
    })
  )
})
