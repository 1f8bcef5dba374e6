import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Tool from "../../src/toolcall/Tool.ts"

const add = Tool.make({
  name: "add",
  description: "Adds two numbers",
  input: Schema.Struct({ a: Schema.Finite, b: Schema.optional(Schema.Finite) }),
  output: Schema.Struct({ sum: Schema.Finite, at: Schema.Date }),
  semantics: "readOnly",
  timeoutMs: 1000,
  retry: { attemptsMax: 3 },
  run: ({ a, b }) => Effect.succeed({ sum: a + (b ?? 0), at: new Date(0) })
})

describe("Tool", () => {
  it.effect("decodes the model's JSON arguments and names every problem", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Tool.decodeInput(add, { a: 1, b: null }), { a: 1, b: undefined })
      const error = yield* Effect.flip(Tool.decodeInput(add, { a: "x", b: "y" }))
      assert.strictEqual(error._tag, "ToolInputInvalid")
      assert.include(error.message, '["a"]')
      assert.include(error.message, '["b"]')
      assert.strictEqual((yield* Effect.flip(Tool.decodeInput(add, "not an object")))._tag, "ToolInputInvalid")
    })
  )

  it.effect("encodes output to JSON with the output Schema, and refuses what it does not fit", () =>
    Effect.gen(function* () {
      const json = yield* Tool.encodeOutput(add, { sum: 3, at: new Date(0) })
      assert.deepStrictEqual(json, { sum: 3, at: "1970-01-01T00:00:00.000Z" })
      const bad = yield* Effect.flip(Tool.encodeOutput(add, { sum: "three" } as unknown as { sum: number; at: Date }))
      assert.strictEqual(bad._tag, "ToolOutputInvalid")
    })
  )

  it("describes the tool with a JSON Schema derived from the input Schema", () => {
    const d = Tool.describe(add) as { name: string; inputSchema: { type: string; properties: Record<string, unknown>; required: Array<string> } }
    assert.strictEqual(d.name, "add")
    assert.strictEqual(d.inputSchema.type, "object")
    assert.deepStrictEqual(Object.keys(d.inputSchema.properties).sort(), ["a", "b"])
    assert.deepStrictEqual(d.inputSchema.required, ["a"])
  })

  it("idempotency keys are deterministic from session and call, optionally per attempt", () => {
    assert.strictEqual(Tool.idempotencyKey("s1", "c1"), Tool.idempotencyKey("s1", "c1"))
    assert.notStrictEqual(Tool.idempotencyKey("s1", "c1"), Tool.idempotencyKey("s2", "c1"))
    assert.notStrictEqual(Tool.idempotencyKey("s1", "c1", 1), Tool.idempotencyKey("s1", "c1", 2))
  })

  it("refuses definitions that could never run safely", () => {
    const base = {
      description: "d",
      input: Schema.Struct({}),
      output: Schema.Null,
      timeoutMs: 100,
      run: () => Effect.succeed(null)
    }
    assert.throws(() => Tool.make({ ...base, name: "bad name!", semantics: "readOnly" }), /a name is/)
    assert.throws(() => Tool.make({ ...base, name: "t", semantics: "unsafe", retry: { attemptsMax: 2 } }), /may not be retried/)
    assert.throws(() => Tool.make({ ...base, name: "t", semantics: "compensatable", retry: { attemptsMax: 3 } }), /may not be retried/)
    assert.throws(() => Tool.make({ ...base, name: "t", semantics: "compensatable" }), /needs compensate/)
    assert.throws(() => Tool.make({ ...base, name: "t", semantics: "readOnly", timeoutMs: 0 }), /timeoutMs/)
    assert.throws(() => Tool.make({ ...base, name: "t", semantics: "readOnly", retry: { attemptsMax: 99 } }), /attemptsMax/)
    assert.strictEqual(Tool.make({ ...base, name: "t", semantics: "unsafe" }).retry.attemptsMax, 1)
  })
})
