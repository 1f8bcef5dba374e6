import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Limits } from "../../src/Limits.ts"
import type { ModelRequest, ModelShape, ModelTurn } from "../../src/model/Model.ts"
import { type ModelError, ModelNetworkError, ModelOverloaded, ModelRateLimited, ModelUnavailable } from "../../src/model/ModelError.ts"
import { retryAfterCeilingMs, retrying } from "../../src/model/Retry.ts"

const request: ModelRequest = { system: "", messages: [{ role: "user", text: "hi" }], tools: [], maxOutputTokens: 100 }
const ok: ModelTurn = { text: "done", toolCalls: [], usage: { inputTokens: 1, outputTokens: 1 }, stopReason: "end" }

/** A model that fails with `errors` in turn, then succeeds; it records the Clock time of every call. */
const flaky = (errors: ReadonlyArray<ModelError>) => {
  const calls: Array<number> = []
  const model: ModelShape = {
    name: "flaky",
    turn: () =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        calls.push(now)
        const error = errors[calls.length - 1]
        return error === undefined ? Effect.succeed(ok) : Effect.fail(error)
      })
  }
  return { model, calls }
}

const retries = () => {
  const seen: Array<{ tag: string; delayMs: number; attempt: number }> = []
  return { seen, onRetry: (e: ModelError, delayMs: number, attempt: number) => void seen.push({ tag: e._tag, delayMs, attempt }) }
}

/** Runs the turn in a fiber and moves the TestClock far enough for every wait. */
const run = (model: ModelShape) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.exit(model.turn(request, () => {})))
    for (let i = 0; i < 20; i++) yield* TestClock.adjust(retryAfterCeilingMs)
    return yield* Fiber.join(fiber)
  })

const net = () => new ModelNetworkError({ message: "reset" })

describe("retrying", () => {
  it.effect("waits a jittered exponential backoff between attempts, on the Clock", () =>
    Effect.gen(function* () {
      const { model, calls } = flaky([net(), net(), net()])
      const { seen, onRetry } = retries()
      const exit = yield* run(retrying(model, { baseMs: 1000, capMs: 60_000 }, onRetry))
      assert.isTrue(exit._tag === "Success")
      assert.strictEqual(calls.length, 4)
      assert.deepStrictEqual(
        seen.map((s) => s.attempt),
        [1, 2, 3]
      )
      seen.forEach((s, i) => {
        const nominal = 1000 * 2 ** i
        assert.isAtLeast(s.delayMs, nominal * 0.8 - 1)
        assert.isAtMost(s.delayMs, nominal * 1.2 + 1)
        // The next call happened exactly `delayMs` after the failed one.
        assert.strictEqual((calls[i + 1] ?? 0) - (calls[i] ?? 0), s.delayMs)
      })
    })
  )

  it.effect("does not retry before the delay has passed", () =>
    Effect.gen(function* () {
      const { model, calls } = flaky([net()])
      const { seen, onRetry } = retries()
      const fiber = yield* Effect.forkChild(retrying(model, { baseMs: 1000 }, onRetry).turn(request, () => {}))
      yield* TestClock.adjust(0)
      assert.strictEqual(calls.length, 1)
      const delay = seen[0]?.delayMs ?? 0
      yield* TestClock.adjust(delay - 1)
      assert.strictEqual(calls.length, 1)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(yield* Fiber.join(fiber), ok)
      assert.strictEqual(calls.length, 2)
    })
  )

  it.effect("caps the backoff at capMs", () =>
    Effect.gen(function* () {
      const { model } = flaky([net(), net(), net(), net()])
      const { seen, onRetry } = retries()
      yield* run(retrying(model, { baseMs: 1000, capMs: 2500 }, onRetry))
      assert.deepStrictEqual(
        seen.slice(2).map((s) => s.delayMs),
        [2500, 2500]
      )
      assert.isTrue(seen.every((s) => s.delayMs <= 2500))
    })
  )

  it.effect("honours retry-after when it is longer than the backoff, up to the 60 s ceiling", () =>
    Effect.gen(function* () {
      const { model, calls } = flaky([
        new ModelRateLimited({ message: "slow down", retryAfterMs: 7000 }),
        new ModelOverloaded({ message: "busy", retryAfterMs: 10 }),
        new ModelRateLimited({ message: "come back in an hour", retryAfterMs: 3_600_000 })
      ])
      const { seen, onRetry } = retries()
      yield* run(retrying(model, { baseMs: 100, capMs: 1000 }, onRetry))
      const [first, second, third] = seen
      assert.strictEqual(first?.delayMs, 7000)
      assert.isAtMost(second?.delayMs ?? 0, 240 + 1) // the backoff (200 ms ± 20 %) wins over a 10 ms retry-after
      assert.isAtLeast(second?.delayMs ?? 0, 160 - 1)
      assert.strictEqual(third?.delayMs, retryAfterCeilingMs)
      assert.strictEqual((calls[1] ?? 0) - (calls[0] ?? 0), 7000)
      assert.strictEqual((calls[3] ?? 0) - (calls[2] ?? 0), retryAfterCeilingMs)
    })
  )

  it.effect("gives up after attemptsMax attempts with the last error", () =>
    Effect.gen(function* () {
      const errors = Array.from({ length: 10 }, (_, i) => new ModelNetworkError({ message: `reset ${i + 1}` }))
      const { model, calls } = flaky(errors)
      const { seen, onRetry } = retries()
      const exit = yield* run(retrying(model, { attemptsMax: 3, baseMs: 10 }, onRetry))
      assert.strictEqual(calls.length, 3)
      assert.strictEqual(seen.length, 2)
      assert.isTrue(exit._tag === "Failure")
      const error = yield* Effect.flip(Effect.suspend(() => exit))
      assert.strictEqual(error.message, "reset 3")
    })
  )

  it.effect("never makes more than Limits.modelAttemptsMax attempts; default 5", () =>
    Effect.gen(function* () {
      const errors = Array.from({ length: 20 }, net)
      const many = flaky(errors)
      yield* run(retrying(many.model, { attemptsMax: 100, baseMs: 1 }))
      assert.strictEqual(many.calls.length, Limits.modelAttemptsMax)
      const byDefault = flaky(errors)
      yield* run(retrying(byDefault.model, { baseMs: 1 }))
      assert.strictEqual(byDefault.calls.length, 5)
    })
  )

  it.effect("does not retry errors that are not retryable", () =>
    Effect.gen(function* () {
      const { model, calls } = flaky([new ModelUnavailable({ message: "bad key" })])
      const { seen, onRetry } = retries()
      const exit = yield* run(retrying(model, {}, onRetry))
      assert.isTrue(exit._tag === "Failure")
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(seen.length, 0)
    })
  )

  it.effect("keeps the wrapped model's name", () => Effect.sync(() => assert.strictEqual(retrying(flaky([]).model).name, "flaky")))
})
