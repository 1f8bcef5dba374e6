import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { ModelProgress, ModelRequest } from "../../src/model/Model.ts"
import { ModelOverloaded, ModelResponseInvalid } from "../../src/model/ModelError.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"

const request = (text = "hello"): ModelRequest => ({
  system: "be brief",
  messages: [{ role: "user", text }],
  tools: [{ name: "read_file", description: "reads a file", inputSchema: { type: "object" } }],
  maxOutputTokens: 1000
})

const collect = () => {
  const seen: Array<ModelProgress> = []
  return { seen, onProgress: (p: ModelProgress) => void seen.push(p) }
}

describe("ScriptedModel", () => {
  it.effect("serves an array of turns in order, streaming text in chunks", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([{ text: "Hello there" }, { text: "second" }], { chunkChars: 4 })
      const { seen, onProgress } = collect()
      const first = yield* model.turn(request(), onProgress)
      assert.strictEqual(first.text, "Hello there")
      assert.strictEqual(first.stopReason, "end")
      assert.deepStrictEqual(first.toolCalls, [])
      assert.deepStrictEqual(
        seen.map((p) => (p._tag === "textDelta" ? p.text : p._tag)),
        ["Hell", "o th", "ere"]
      )
      assert.strictEqual((yield* model.turn(request(), () => {})).text, "second")
      assert.strictEqual(model.name, "scripted")
    })
  )

  it.effect("proposes tool calls with deterministic ids and toolUse as the stop reason", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([
        {
          text: "looking",
          toolCalls: [
            { name: "read_file", input: { path: "a.txt" } },
            { name: "ls", input: {} }
          ]
        }
      ])
      const { seen, onProgress } = collect()
      const turn = yield* model.turn(request(), onProgress)
      assert.deepStrictEqual(turn.toolCalls, [
        { id: "scripted_0_0", name: "read_file", input: { path: "a.txt" } },
        { id: "scripted_0_1", name: "ls", input: {} }
      ])
      assert.strictEqual(turn.stopReason, "toolUse")
      assert.deepStrictEqual(seen.slice(1), [
        { _tag: "toolCallDelta", id: "scripted_0_0", name: "read_file" },
        { _tag: "toolCallDelta", id: "scripted_0_1", name: "ls" }
      ])
    })
  )

  it.effect("malformed arguments and non-object arguments become MalformedToolCall with the reason", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([
        {
          toolCalls: [
            { name: "a", malformed: '{"path": "a.t' },
            { name: "b", input: [1, 2] },
            { name: "c", malformed: "{}" }
          ]
        }
      ])
      const [a, b, c] = (yield* model.turn(request(), () => {})).toolCalls
      assert.deepStrictEqual([a?.id, a?.name, a && "malformed" in a ? a.malformed : undefined], ["scripted_0_0", "a", '{"path": "a.t'])
      assert.isTrue(a !== undefined && "error" in a && /JSON/.test(a.error))
      assert.deepStrictEqual(b, { id: "scripted_0_1", name: "b", malformed: "[1,2]", error: "the arguments are not a JSON object" })
      assert.isTrue(c !== undefined && "malformed" in c)
    })
  )

  it.effect("a function script sees the request and the turn index", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make((req, index) => {
        const last = req.messages[req.messages.length - 1]
        return { text: `${index}:${last?.role === "user" ? last.text : "?"}` }
      })
      assert.strictEqual((yield* model.turn(request("one"), () => {})).text, "0:one")
      assert.strictEqual((yield* model.turn(request("two"), () => {})).text, "1:two")
    })
  )

  it.effect("fails with the scripted error, and past the end of an array with ModelResponseInvalid", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([{ error: new ModelOverloaded({ message: "busy" }) }])
      const first = yield* Effect.exit(model.turn(request(), () => {}))
      assert.isTrue(Exit.isFailure(first))
      const error = yield* Effect.flip(model.turn(request(), () => {}))
      assert.instanceOf(error, ModelResponseInvalid)
      assert.match(error.message, /the script has no turn 1/)
    })
  )

  it.effect("usage defaults to about a token per four characters, deterministically", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([{ text: "12345678" }, { text: "x", usage: { inputTokens: 7, outputTokens: 3 } }])
      const a = yield* model.turn(request(), () => {})
      assert.strictEqual(a.usage.outputTokens, 2)
      assert.isAbove(a.usage.inputTokens, 0)
      assert.deepStrictEqual((yield* model.turn(request(), () => {})).usage, { inputTokens: 7, outputTokens: 3 })
    })
  )

  it.effect("stallMs and chunkDelayMs run on Effect's Clock (TestClock)", () =>
    Effect.gen(function* () {
      const model = ScriptedModel.make([{ text: "abcd", stallMs: 5000 }], { chunkChars: 2, chunkDelayMs: 100 })
      const { seen, onProgress } = collect()
      const fiber = yield* Effect.forkChild(model.turn(request(), onProgress))
      yield* TestClock.adjust(4999)
      assert.strictEqual(seen.length, 0)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(seen, [{ _tag: "textDelta", text: "ab" }])
      yield* TestClock.adjust(100)
      const turn = yield* Fiber.join(fiber)
      assert.strictEqual(turn.text, "abcd")
      assert.strictEqual(seen.length, 2)
    })
  )
})
