import { assert, describe, it } from "@effect/vitest"
import { APICallError } from "ai"
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test"
import { Effect, Fiber } from "effect"
import * as AiSdkModel from "../../src/model/AiSdkModel.ts"
import type { ModelProgress, ModelRequest } from "../../src/model/Model.ts"
import { ModelContextTooLong, ModelNetworkError, ModelRateLimited, ModelUnavailable } from "../../src/model/ModelError.ts"

type StreamPart = Parameters<typeof convertArrayToReadableStream<unknown>>[0][number]

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined }
})
const finish = (unified: "stop" | "tool-calls" | "length", input = 10, output = 5) => ({
  type: "finish",
  usage: usage(input, output),
  finishReason: { unified, raw: unified }
})
const text = (id: string, ...deltas: Array<string>) => [
  { type: "text-start", id },
  ...deltas.map((delta) => ({ type: "text-delta", id, delta })),
  { type: "text-end", id }
]
const toolCall = (id: string, toolName: string, ...pieces: Array<string>) => [
  { type: "tool-input-start", id, toolName },
  ...pieces.map((delta) => ({ type: "tool-input-delta", id, delta })),
  { type: "tool-input-end", id },
  { type: "tool-call", toolCallId: id, toolName, input: pieces.join("") }
]

/** A mock model that streams `parts` on every call. */
const mock = (parts: ReadonlyArray<StreamPart>) =>
  new MockLanguageModelV4({
    provider: "mock",
    modelId: "mock-1",
    doStream: async () => ({ stream: convertArrayToReadableStream([{ type: "stream-start", warnings: [] }, ...parts] as never) })
  })

const failing = (error: unknown) =>
  new MockLanguageModelV4({
    doStream: async () => {
      throw error
    }
  })

const request: ModelRequest = {
  system: "You are terse.",
  messages: [{ role: "user", text: "read a.txt" }],
  tools: [{ name: "read_file", description: "Read a file", inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }],
  maxOutputTokens: 512
}

const collect = () => {
  const seen: Array<ModelProgress> = []
  return { seen, onProgress: (p: ModelProgress) => void seen.push(p) }
}

describe("AiSdkModel", () => {
  it.effect("streams text deltas and reports usage and the stop reason", () =>
    Effect.gen(function* () {
      const model = mock([...text("t1", "Hello", ", world"), finish("stop", 12, 3)])
      const { seen, onProgress } = collect()
      const turn = yield* AiSdkModel.make(model).turn(request, onProgress)
      assert.deepStrictEqual(turn, { text: "Hello, world", toolCalls: [], usage: { inputTokens: 12, outputTokens: 3 }, stopReason: "end" })
      assert.deepStrictEqual(seen, [
        { _tag: "textDelta", text: "Hello" },
        { _tag: "textDelta", text: ", world" }
      ])
      assert.strictEqual(AiSdkModel.make(model).name, "mock:mock-1")
      // No retries of its own, and the turn's bound on output reaches the provider.
      assert.strictEqual(model.doStreamCalls.length, 1)
      assert.strictEqual(model.doStreamCalls[0]?.maxOutputTokens, 512)
    })
  )

  it.effect("returns tool calls without running anything", () =>
    Effect.gen(function* () {
      const model = mock([...text("t1", "Reading."), ...toolCall("call_1", "read_file", '{"pa', 'th":"a.txt"}'), finish("tool-calls")])
      const { seen, onProgress } = collect()
      const turn = yield* AiSdkModel.make(model).turn(request, onProgress)
      assert.strictEqual(turn.stopReason, "toolUse")
      assert.deepStrictEqual(turn.toolCalls, [{ id: "call_1", name: "read_file", input: { path: "a.txt" } }])
      assert.strictEqual(model.doStreamCalls.length, 1) // one step: no tool ran, no second call
      assert.deepStrictEqual(
        seen.filter((p) => p._tag === "toolCallDelta"),
        [{ _tag: "toolCallDelta", id: "call_1", name: "read_file" }]
      )
      assert.deepStrictEqual(
        model.doStreamCalls[0]?.tools?.map((t) => (t.type === "function" ? [t.name, t.description, t.inputSchema] : [t.type])),
        [["read_file", "Read a file", { type: "object", properties: { path: { type: "string" } }, required: ["path"] }]]
      )
    })
  )

  it.effect("unparsable arguments, an unknown tool and non-object arguments become MalformedToolCall", () =>
    Effect.gen(function* () {
      const model = mock([
        ...toolCall("c1", "read_file", '{"path": "a.t'),
        ...toolCall("c2", "delete_everything", "{}"),
        ...toolCall("c3", "read_file", "[1, 2]"),
        finish("tool-calls")
      ])
      const turn = yield* AiSdkModel.make(model).turn(request, () => {})
      const [c1, c2, c3] = turn.toolCalls
      assert.isTrue(c1 !== undefined && "malformed" in c1 && c1.malformed === '{"path": "a.t' && c1.error.length > 0)
      assert.isTrue(c2 !== undefined && "malformed" in c2 && /delete_everything/.test(c2.error))
      assert.deepStrictEqual(c3, { id: "c3", name: "read_file", malformed: "[1,2]", error: "the arguments are not a JSON object" })
    })
  )

  it.effect("maps the conversation to the SDK's messages: tool-call parts and tool-result parts", () =>
    Effect.gen(function* () {
      const model = mock([...text("t1", "ok"), finish("stop")])
      yield* AiSdkModel.make(model).turn(
        {
          ...request,
          messages: [
            { role: "user", text: "read a.txt" },
            { role: "assistant", text: "Reading.", toolCalls: [{ id: "c1", name: "read_file", input: { path: "a.txt" } }] },
            {
              role: "tool",
              results: [{ callId: "c1", name: "read_file", isError: true, content: "ENOENT" }]
            },
            { role: "user", text: "try b.txt" }
          ]
        },
        () => {}
      )
      const prompt = model.doStreamCalls[0]?.prompt ?? []
      assert.deepStrictEqual(
        prompt.map((m) => m.role),
        ["system", "user", "assistant", "tool", "user"]
      )
      assert.deepStrictEqual(prompt[0], { role: "system", content: "You are terse." })
      const assistant = prompt[2]
      assert.isTrue(assistant?.role === "assistant")
      if (assistant?.role === "assistant") {
        assert.deepStrictEqual(
          assistant.content.map((p) => (p.type === "tool-call" ? [p.type, p.toolCallId, p.toolName, p.input] : [p.type])),
          [["text"], ["tool-call", "c1", "read_file", { path: "a.txt" }]]
        )
      }
      const tool = prompt[3]
      assert.isTrue(tool?.role === "tool")
      if (tool?.role === "tool") {
        const [result] = tool.content
        assert.isTrue(result?.type === "tool-result")
        if (result?.type === "tool-result") {
          assert.deepStrictEqual([result.toolCallId, result.toolName, result.output], ["c1", "read_file", { type: "error-text", value: "ENOENT" }])
        }
      }
    })
  )

  it.effect("a 429 APICallError is ModelRateLimited with the retry-after of its headers", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        AiSdkModel.make(
          failing(
            new APICallError({
              message: "Too Many Requests",
              url: "https://api.test/v1/chat",
              requestBodyValues: {},
              statusCode: 429,
              responseHeaders: { "Retry-After": "2" },
              isRetryable: true
            })
          )
        ).turn(request, () => {})
      )
      assert.instanceOf(error, ModelRateLimited)
      assert.strictEqual(error._tag === "ModelRateLimited" ? error.retryAfterMs : undefined, 2000)
    })
  )

  it.effect("a 400 about the context length is ModelContextTooLong", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        AiSdkModel.make(
          failing(
            new APICallError({
              message: "Bad Request",
              url: "https://api.test/v1/chat",
              requestBodyValues: {},
              statusCode: 400,
              responseBody: JSON.stringify({ error: { code: "context_length_exceeded", message: "This model's maximum context length is 128000 tokens." } }),
              isRetryable: false
            })
          )
        ).turn(request, () => {})
      )
      assert.instanceOf(error, ModelContextTooLong)
    })
  )

  it.effect("401 is ModelUnavailable; a connection failure (no status) is ModelNetworkError", () =>
    Effect.gen(function* () {
      const call = { url: "https://api.test/v1/chat", requestBodyValues: {} }
      const denied = new APICallError({ ...call, message: "Unauthorized", statusCode: 401, isRetryable: false })
      assert.instanceOf(yield* Effect.flip(AiSdkModel.make(failing(denied)).turn(request, () => {})), ModelUnavailable)
      const offline = new APICallError({ ...call, message: "Cannot connect to API: ECONNREFUSED", isRetryable: true })
      assert.instanceOf(yield* Effect.flip(AiSdkModel.make(failing(offline)).turn(request, () => {})), ModelNetworkError)
    })
  )

  it.live("interruption aborts the provider call", () =>
    Effect.gen(function* () {
      let signal: AbortSignal | undefined
      const model = new MockLanguageModelV4({
        doStream: async (options) => {
          signal = options.abortSignal
          return { stream: new ReadableStream({ start: (c) => c.enqueue({ type: "stream-start", warnings: [] }) }) }
        }
      })
      const fiber = yield* Effect.forkChild(AiSdkModel.make(model).turn(request, () => {}))
      while (signal === undefined) yield* Effect.sleep(5)
      assert.isFalse(signal.aborted)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(signal.aborted)
    })
  )
})
