import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as AnthropicModel from "../../src/model/AnthropicModel.ts"
import type { ModelProgress, ModelRequest } from "../../src/model/Model.ts"
import {
  ModelContextTooLong,
  ModelNetworkError,
  ModelOverloaded,
  ModelRateLimited,
  ModelResponseInvalid,
  ModelUnavailable
} from "../../src/model/ModelError.ts"

// ---- a fake fetch that speaks the Messages API's server-sent events ----

type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }

const sse = (events: ReadonlyArray<Json>): string => events.map((e) => `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`).join("")

const messageStart = (inputTokens = 25): Json => ({
  type: "message_start",
  message: {
    id: "msg_1",
    type: "message",
    role: "assistant",
    model: "claude-test",
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: inputTokens, output_tokens: 1 }
  }
})
const textBlock = (index: number, ...pieces: Array<string>): Array<Json> => [
  { type: "content_block_start", index, content_block: { type: "text", text: "" } },
  ...pieces.map((text) => ({ type: "content_block_delta", index, delta: { type: "text_delta", text } })),
  { type: "content_block_stop", index }
]
const toolBlock = (index: number, id: string, name: string, ...pieces: Array<string>): Array<Json> => [
  { type: "content_block_start", index, content_block: { type: "tool_use", id, name, input: {} } },
  ...pieces.map((partial_json) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json } })),
  { type: "content_block_stop", index }
]
const messageEnd = (stopReason: string, outputTokens = 12): Array<Json> => [
  { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } },
  { type: "message_stop" }
]

interface Seen {
  readonly url: string
  readonly body: Record<string, unknown>
  readonly signal: AbortSignal | undefined
}

/** A fetch that answers every call with `respond` and records what it was sent. */
const fakeFetch = (respond: (seen: Seen) => Response | Promise<Response>) => {
  const calls: Array<Seen> = []
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const seen: Seen = { url: String(input), body: JSON.parse(String(init?.body ?? "{}")), signal: init?.signal ?? undefined }
    calls.push(seen)
    return respond(seen)
  }) as typeof globalThis.fetch
  return { fetch, calls }
}

const streamed = (body: string) => new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } })
const failed = (status: number, type: string, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "error", error: { type, message } }), { status, headers: { "content-type": "application/json", ...headers } })

const model = (fetch: typeof globalThis.fetch) => AnthropicModel.make({ apiKey: "sk-test", model: "claude-test", fetch, baseURL: "http://anthropic.test" })

const request: ModelRequest = {
  system: "You are terse.",
  messages: [{ role: "user", text: "read a.txt" }],
  tools: [{ name: "read_file", description: "Read a file", inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }],
  maxOutputTokens: 1024
}

const collect = () => {
  const seen: Array<ModelProgress> = []
  return { seen, onProgress: (p: ModelProgress) => void seen.push(p) }
}

describe("AnthropicModel", () => {
  it.effect("a text turn streams its deltas and reports usage and the stop reason", () =>
    Effect.gen(function* () {
      const { fetch, calls } = fakeFetch(() =>
        streamed(sse([messageStart(25), { type: "ping" }, ...textBlock(0, "Hello", ", world"), ...messageEnd("end_turn", 7)]))
      )
      const { seen, onProgress } = collect()
      const turn = yield* model(fetch).turn(request, onProgress)
      assert.deepStrictEqual(turn, { text: "Hello, world", toolCalls: [], usage: { inputTokens: 25, outputTokens: 7 }, stopReason: "end" })
      assert.deepStrictEqual(seen, [{ _tag: "ping" }, { _tag: "textDelta", text: "Hello" }, { _tag: "textDelta", text: ", world" }])
      assert.strictEqual(calls[0]?.url, "http://anthropic.test/v1/messages")
      assert.strictEqual(calls[0]?.body.stream, true)
      assert.strictEqual(model(fetch).name, "anthropic:claude-test")
    })
  )

  it.effect("a tool_use turn assembles the input from input_json_delta pieces", () =>
    Effect.gen(function* () {
      const { fetch } = fakeFetch(() =>
        streamed(
          sse([
            messageStart(),
            ...textBlock(0, "Reading."),
            ...toolBlock(1, "toolu_01", "read_file", '{"pa', 'th": "a', '.txt"}'),
            ...toolBlock(2, "toolu_02", "list_files"),
            ...messageEnd("tool_use")
          ])
        )
      )
      const { seen, onProgress } = collect()
      const turn = yield* model(fetch).turn(request, onProgress)
      assert.strictEqual(turn.stopReason, "toolUse")
      assert.strictEqual(turn.text, "Reading.")
      assert.deepStrictEqual(turn.toolCalls, [
        { id: "toolu_01", name: "read_file", input: { path: "a.txt" } },
        { id: "toolu_02", name: "list_files", input: {} }
      ])
      assert.deepStrictEqual(
        seen.filter((p) => p._tag === "toolCallDelta"),
        [
          { _tag: "toolCallDelta", id: "toolu_01", name: "read_file" },
          { _tag: "toolCallDelta", id: "toolu_02", name: "list_files" }
        ]
      )
    })
  )

  it.effect("tool input that is not JSON, or not an object, becomes a MalformedToolCall", () =>
    Effect.gen(function* () {
      const { fetch } = fakeFetch(() =>
        streamed(
          sse([
            messageStart(),
            ...toolBlock(0, "toolu_1", "read_file", '{"path": "a.t'),
            ...toolBlock(1, "toolu_2", "read_file", "[1, 2]"),
            ...messageEnd("tool_use")
          ])
        )
      )
      const turn = yield* model(fetch).turn(request, () => {})
      const [bad, array] = turn.toolCalls
      assert.isTrue(bad !== undefined && "malformed" in bad && bad.malformed === '{"path": "a.t' && bad.error.length > 0)
      assert.deepStrictEqual(array, { id: "toolu_2", name: "read_file", malformed: "[1, 2]", error: "the arguments are not a JSON object" })
    })
  )

  it.effect("maps the conversation: alternation, tool_use and tool_result blocks, tools", () =>
    Effect.gen(function* () {
      const { fetch, calls } = fakeFetch(() => streamed(sse([messageStart(), ...textBlock(0, "ok"), ...messageEnd("end_turn")])))
      yield* model(fetch).turn(
        {
          ...request,
          messages: [
            { role: "user", text: "read a.txt and b.txt" },
            {
              role: "assistant",
              text: "Reading both.",
              toolCalls: [
                { id: "c1", name: "read_file", input: { path: "a.txt" } },
                { id: "c2", name: "read_file", input: { path: "b.txt" } }
              ]
            },
            {
              role: "tool",
              results: [
                { callId: "c1", name: "read_file", isError: false, content: "alpha" },
                { callId: "c2", name: "read_file", isError: true, content: "ENOENT" }
              ]
            },
            { role: "user", text: "and then?" },
            { role: "assistant", text: "", toolCalls: [{ id: "c3", name: "read_file", input: { path: "c.txt" } }] },
            { role: "tool", results: [{ callId: "c3", name: "read_file", isError: false, content: "gamma" }] }
          ]
        },
        () => {}
      )
      const body = calls[0]?.body
      assert.strictEqual(body?.model, "claude-test")
      assert.strictEqual(body?.max_tokens, 1024)
      assert.strictEqual(body?.system, "You are terse.")
      assert.deepStrictEqual(body?.tools, [
        { name: "read_file", description: "Read a file", input_schema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }
      ])
      assert.deepStrictEqual(body?.messages, [
        { role: "user", content: [{ type: "text", text: "read a.txt and b.txt" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Reading both." },
            { type: "tool_use", id: "c1", name: "read_file", input: { path: "a.txt" } },
            { type: "tool_use", id: "c2", name: "read_file", input: { path: "b.txt" } }
          ]
        },
        // The tool results and the next user text merge into one user message, results first.
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "c1", content: "alpha", is_error: false },
            { type: "tool_result", tool_use_id: "c2", content: "ENOENT", is_error: true },
            { type: "text", text: "and then?" }
          ]
        },
        { role: "assistant", content: [{ type: "tool_use", id: "c3", name: "read_file", input: { path: "c.txt" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "c3", content: "gamma", is_error: false }] }
      ])
    })
  )

  it.effect("429 is ModelRateLimited with retry-after (seconds) or retry-after-ms", () =>
    Effect.gen(function* () {
      const seconds = fakeFetch(() => failed(429, "rate_limit_error", "rate limited", { "retry-after": "3" }))
      const a = yield* Effect.flip(model(seconds.fetch).turn(request, () => {}))
      assert.instanceOf(a, ModelRateLimited)
      assert.strictEqual(a._tag === "ModelRateLimited" ? a.retryAfterMs : undefined, 3000)
      assert.strictEqual(seconds.calls.length, 1) // the SDK did not retry on its own
      const ms = fakeFetch(() => failed(429, "rate_limit_error", "rate limited", { "retry-after-ms": "1500", "retry-after": "2" }))
      const b = yield* Effect.flip(model(ms.fetch).turn(request, () => {}))
      assert.strictEqual(b._tag === "ModelRateLimited" ? b.retryAfterMs : undefined, 1500)
    })
  )

  it.effect("529 (and an overloaded_error in mid-stream) is ModelOverloaded", () =>
    Effect.gen(function* () {
      const http = fakeFetch(() => failed(529, "overloaded_error", "Overloaded"))
      assert.instanceOf(yield* Effect.flip(model(http.fetch).turn(request, () => {})), ModelOverloaded)
      assert.strictEqual(http.calls.length, 1)
      const midStream = fakeFetch(() =>
        streamed(
          sse([messageStart(), ...textBlock(0, "Hel")]) +
            `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`
        )
      )
      assert.instanceOf(yield* Effect.flip(model(midStream.fetch).turn(request, () => {})), ModelOverloaded)
    })
  )

  it.effect("400 prompt too long is ModelContextTooLong; another 400 is ModelResponseInvalid", () =>
    Effect.gen(function* () {
      const long = fakeFetch(() => failed(400, "invalid_request_error", "prompt is too long: 212345 tokens > 200000 maximum"))
      const error = yield* Effect.flip(model(long.fetch).turn(request, () => {}))
      assert.instanceOf(error, ModelContextTooLong)
      assert.isFalse(error.isRetryable)
      const other = fakeFetch(() => failed(400, "invalid_request_error", "messages: roles must alternate"))
      assert.instanceOf(yield* Effect.flip(model(other.fetch).turn(request, () => {})), ModelResponseInvalid)
    })
  )

  it.effect("401 is ModelUnavailable, and so is a missing key (without any request)", () =>
    Effect.gen(function* () {
      const denied = fakeFetch(() => failed(401, "authentication_error", "invalid x-api-key"))
      assert.instanceOf(yield* Effect.flip(model(denied.fetch).turn(request, () => {})), ModelUnavailable)
      const none = fakeFetch(() => streamed(""))
      const keyless = AnthropicModel.make({ model: "claude-test", fetch: none.fetch })
      const error = yield* Effect.flip(keyless.turn(request, () => {}))
      assert.instanceOf(error, ModelUnavailable)
      assert.strictEqual(error.message, "no API key: set ANTHROPIC_API_KEY")
      assert.strictEqual(none.calls.length, 0)
    })
  )

  it.effect("a fetch that rejects is ModelNetworkError", () =>
    Effect.gen(function* () {
      const { fetch } = fakeFetch(() => Promise.reject(new TypeError("fetch failed")))
      const error = yield* Effect.flip(model(fetch).turn(request, () => {}))
      assert.instanceOf(error, ModelNetworkError)
      assert.isTrue(error.isRetryable)
    })
  )

  it.effect("a stream that ends before message_stop is ModelNetworkError; garbage is ModelResponseInvalid", () =>
    Effect.gen(function* () {
      const cut = fakeFetch(() => streamed(sse([messageStart(), ...textBlock(0, "Hello")]).slice(0, -30)))
      const error = yield* Effect.flip(model(cut.fetch).turn(request, () => {}))
      assert.instanceOf(error, ModelNetworkError)
      assert.strictEqual(error.message, "the stream ended before message_stop")
      const broken = fakeFetch(
        () =>
          new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(new TextEncoder().encode(sse([messageStart()])))
                c.error(new Error("socket hang up"))
              }
            }),
            { status: 200, headers: { "content-type": "text/event-stream" } }
          )
      )
      assert.instanceOf(yield* Effect.flip(model(broken.fetch).turn(request, () => {})), ModelNetworkError)
      const garbage = fakeFetch(() => streamed("event: message_start\ndata: {not json\n\n"))
      assert.instanceOf(yield* Effect.flip(model(garbage.fetch).turn(request, () => {})), ModelResponseInvalid)
    })
  )

  it.live("interruption aborts the HTTP request", () =>
    Effect.gen(function* () {
      // A stream that sends one event and then nothing: the model is "thinking" forever.
      const { fetch, calls } = fakeFetch(
        (seen) =>
          new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(new TextEncoder().encode(sse([messageStart()])))
                seen.signal?.addEventListener("abort", () => c.error(seen.signal?.reason))
              }
            }),
            { status: 200, headers: { "content-type": "text/event-stream" } }
          )
      )
      const fiber = yield* Effect.forkChild(model(fetch).turn(request, () => {}))
      while (calls.length === 0) yield* Effect.sleep(5)
      assert.isFalse(calls[0]?.signal?.aborted)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(calls[0]?.signal?.aborted)
    })
  )
})
