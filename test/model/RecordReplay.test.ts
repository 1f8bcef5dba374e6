import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ModelProgress, ModelRequest, ModelShape, ModelTurn } from "../../src/model/Model.ts"
import { ModelRateLimited, ModelReplayMismatch, ModelResponseInvalid, ModelUnavailable } from "../../src/model/ModelError.ts"
import * as RecordReplay from "../../src/model/RecordReplay.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import { tempDir } from "../support/tmp.ts"

const tools = [{ name: "read_file", description: "Read a file", inputSchema: { type: "object" } }]
const first: ModelRequest = { system: "terse", messages: [{ role: "user", text: "read a.txt" }], tools, maxOutputTokens: 100 }
const second = (turn: ModelTurn): ModelRequest => ({
  ...first,
  messages: [
    ...first.messages,
    { role: "assistant", text: turn.text, toolCalls: turn.toolCalls.flatMap((c) => ("input" in c ? [c] : [])) },
    { role: "tool", results: [{ callId: "scripted_0_0", name: "read_file", isError: false, content: "hello" }] }
  ]
})

const script = () =>
  ScriptedModel.make([
    {
      text: "Reading.",
      toolCalls: [
        { name: "read_file", input: { path: "a.txt" } },
        { name: "read_file", malformed: "{oops" }
      ]
    },
    { text: "It says hello." }
  ])

/** Two turns through `model`, as a loop would ask them; with the progress each turn streamed. */
const conversation = (model: ModelShape) =>
  Effect.gen(function* () {
    const seen: Array<ModelProgress> = []
    const a = yield* model.turn(first, (p) => void seen.push(p))
    const b = yield* model.turn(second(a), (p) => void seen.push(p))
    return { turns: [a, b], seen }
  })

describe("RecordReplay", () => {
  it.effect("replays a recorded conversation: same turns, streamed again", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir(), "rec.ndjson")
      const live = yield* conversation(RecordReplay.record(script(), file))
      assert.strictEqual(fs.readFileSync(file, "utf8").trim().split("\n").length, 2)
      const replayed = yield* conversation(RecordReplay.replay(file))
      assert.deepStrictEqual(replayed.turns, live.turns)
      assert.deepStrictEqual(
        replayed.seen.map((p) => p._tag),
        ["textDelta", "toolCallDelta", "toolCallDelta", "textDelta"]
      )
      assert.deepStrictEqual(replayed.seen[0], { _tag: "textDelta", text: "Reading." })
    })
  )

  it.effect("records errors too, and replays them typed", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir(), "rec.ndjson")
      const failing = ScriptedModel.make([{ error: new ModelRateLimited({ message: "slow down", retryAfterMs: 2000 }) }])
      yield* Effect.flip(RecordReplay.record(failing, file).turn(first, () => {}))
      const error = yield* Effect.flip(RecordReplay.replay(file).turn(first, () => {}))
      assert.instanceOf(error, ModelRateLimited)
      assert.deepStrictEqual([error.message, error._tag === "ModelRateLimited" ? error.retryAfterMs : 0], ["slow down", 2000])
    })
  )

  it.effect("strict replay names the turn whose request changed; non-strict keeps only the order", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir(), "rec.ndjson")
      const live = yield* conversation(RecordReplay.record(script(), file))
      const strict = RecordReplay.replay(file)
      yield* strict.turn(first, () => {})
      const changed = second({ ...(live.turns[0] as ModelTurn), text: "Something else." })
      const error = yield* Effect.flip(strict.turn(changed, () => {}))
      assert.instanceOf(error, ModelReplayMismatch)
      assert.strictEqual(error._tag === "ModelReplayMismatch" ? error.turn : -1, 1)
      const loose = RecordReplay.replay(file, { strict: false })
      yield* loose.turn(first, () => {})
      assert.strictEqual((yield* loose.turn(changed, () => {})).text, "It says hello.")
      // Past the end of the recording.
      const past = yield* Effect.flip(loose.turn(first, () => {}))
      assert.instanceOf(past, ModelReplayMismatch)
      assert.strictEqual(past._tag === "ModelReplayMismatch" ? past.turn : -1, 2)
    })
  )

  it.effect("a corrupt line is a typed error naming file:line; a missing file is ModelUnavailable", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = path.join(dir, "rec.ndjson")
      yield* conversation(RecordReplay.record(script(), file))
      const [one, two] = fs.readFileSync(file, "utf8").trim().split("\n")
      fs.writeFileSync(file, `${one}\n${(two ?? "").slice(0, 40)}\n`)
      const torn = yield* Effect.flip(RecordReplay.replay(file).turn(first, () => {}))
      assert.instanceOf(torn, ModelResponseInvalid)
      assert.include(torn.message, `${file}:2`)
      fs.writeFileSync(file, `${one}\n${JSON.stringify({ v: 1, turn: 1, model: "x", digest: "d", at: 0, ok: { text: 3 } })}\n`)
      const wrong = yield* Effect.flip(RecordReplay.replay(file).turn(first, () => {}))
      assert.instanceOf(wrong, ModelResponseInvalid)
      assert.include(wrong.message, `${file}:2`)
      const missing = yield* Effect.flip(RecordReplay.replay(path.join(dir, "nope.ndjson")).turn(first, () => {}))
      assert.instanceOf(missing, ModelUnavailable)
    })
  )

  it.effect("the digest ignores key order and maxOutputTokens, and sees the messages and tool names", () =>
    Effect.sync(() => {
      const d = RecordReplay.digest(first)
      assert.match(d, /^[0-9a-f]{64}$/)
      assert.strictEqual(RecordReplay.digest({ maxOutputTokens: 5, tools, messages: first.messages, system: "terse" }), d)
      assert.notStrictEqual(RecordReplay.digest({ ...first, system: "verbose" }), d)
      assert.notStrictEqual(RecordReplay.digest({ ...first, tools: [] }), d)
      assert.notStrictEqual(RecordReplay.digest({ ...first, messages: [{ role: "user", text: "read b.txt" }] }), d)
    })
  )
})
