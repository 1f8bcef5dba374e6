/**
 * The Model port over Anthropic's Messages API (`@anthropic-ai/sdk`), streamed.
 *
 * When to use: a Claude model with no other layer in between. Wrap it in
 * `retrying` (Retry.ts): this adapter never retries (the SDK's own retries are
 * off, `maxRetries: 0`, so that every wait runs on Effect's Clock and is bounded
 * in one place).
 *
 * Details:
 * - Messages: a user message is a text block; an assistant message is its text
 *   block and one `tool_use` block per call (id = our call id); tool results
 *   are a user message of `tool_result` blocks. Consecutive messages of one
 *   role are merged (the API wants user and assistant to alternate), with
 *   `tool_result` blocks first, as the API requires.
 * - Streaming: the raw server-sent events are read (the SDK's parsed stream
 *   drops pings, and pings are what tells the stall watchdog that a slow
 *   model is alive). Text deltas → `textDelta`, a `tool_use` start →
 *   `toolCallDelta`, pings and thinking deltas → `ping`. A tool's input arrives
 *   as `input_json_delta` pieces; when it is not a JSON object the call is
 *   malformed and the loop shows the model why.
 * - Errors: 429 → ModelRateLimited (`retry-after-ms` or `retry-after`), 503 /
 *   529 / other 5xx and an `overloaded_error` event → ModelOverloaded, a 400 or
 *   413 about the prompt's size → ModelContextTooLong, 401/402/403/404 →
 *   ModelUnavailable, connection failures, timeouts and a stream that ends
 *   before `message_stop` → ModelNetworkError, the rest → ModelResponseInvalid.
 *
 * Gotchas: no key and no client fails at call time with ModelUnavailable
 * (`make` never throws and never reads the key from the environment; the SDK
 * itself still reads `ANTHROPIC_BASE_URL` and `ANTHROPIC_LOG` when `baseURL`
 * is not given). Interruption aborts the HTTP request through its AbortSignal.
 *
 * @example
 *   const model = retrying(AnthropicModel.make({ apiKey: process.env.ANTHROPIC_API_KEY, model: "claude-sonnet-4-5" }))
 */
import Anthropic from "@anthropic-ai/sdk"
import { Stream } from "@anthropic-ai/sdk/core/streaming"
import { Clock, Effect } from "effect"
import { type Message, type ModelProgress, type ModelRequest, type ModelShape, type ModelTurn, type ProposedCall, parseToolCall } from "./Model.ts"
import {
  isModelError,
  ModelContextTooLong,
  type ModelError,
  ModelNetworkError,
  ModelOverloaded,
  ModelRateLimited,
  ModelResponseInvalid,
  ModelUnavailable,
  retryAfterMs,
  saysContextTooLong
} from "./ModelError.ts"

export interface AnthropicOptions {
  /** A client of your own (proxies, custom headers); its retries are switched off per request. */
  readonly client?: Anthropic
  readonly apiKey?: string
  /** e.g. "claude-sonnet-4-5". */
  readonly model: string
  /** Passed to the client: tests give a fake one. */
  readonly fetch?: typeof fetch
  readonly baseURL?: string
}

type MessageParam = Anthropic.Messages.MessageParam
type ContentBlockParam = Anthropic.Messages.ContentBlockParam

export const make = (options: AnthropicOptions): ModelShape => {
  let client: Anthropic | undefined = options.client
  // Created at the first turn, so that `make` cannot fail; a missing key is the turn's error.
  const connect = Effect.suspend(() => {
    if (client !== undefined) return Effect.succeed(client)
    if (options.apiKey === undefined || options.apiKey === "") return Effect.fail(new ModelUnavailable({ message: "no API key: set ANTHROPIC_API_KEY" }))
    const apiKey = options.apiKey
    return Effect.try({
      try: () => {
        client = new Anthropic({
          apiKey,
          maxRetries: 0,
          ...(options.baseURL !== undefined ? { baseURL: options.baseURL } : {}),
          ...(options.fetch !== undefined ? { fetch: options.fetch } : {})
        })
        return client
      },
      catch: (e) => new ModelUnavailable({ message: `cannot create the client: ${messageOf(e)}` })
    })
  })
  return {
    name: `anthropic:${options.model}`,
    turn: (request, onProgress) =>
      Effect.gen(function* () {
        const connected = yield* connect
        const startedAt = yield* Clock.currentTimeMillis
        return yield* Effect.tryPromise({
          try: (signal) => stream(connected, options.model, request, onProgress, signal),
          catch: (e) => toModelError(e, startedAt)
        })
      })
  }
}

/** The request body the API receives (exported for tests and for debugging a refused request). */
export const toParams = (model: string, request: ModelRequest): Anthropic.Messages.MessageCreateParamsStreaming => ({
  model,
  max_tokens: request.maxOutputTokens,
  messages: toMessages(request.messages),
  ...(request.system !== "" ? { system: request.system } : {}),
  ...(request.tools.length > 0
    ? {
        tools: request.tools.map((t) => ({
          name: t.name,
          description: t.description,
          input_schema: { type: "object", ...t.inputSchema } as Anthropic.Messages.Tool.InputSchema
        }))
      }
    : {}),
  stream: true
})

export const toMessages = (messages: ReadonlyArray<Message>): Array<MessageParam> => {
  const out: Array<{ role: "user" | "assistant"; content: Array<ContentBlockParam> }> = []
  for (const message of messages) {
    const [role, content] = blocks(message)
    if (content.length === 0) continue // the API refuses empty messages and empty text blocks
    const last = out[out.length - 1]
    if (last !== undefined && last.role === role) last.content.push(...content)
    else out.push({ role, content: [...content] })
  }
  // In a user message, tool results must come before any text.
  for (const m of out) if (m.role === "user") m.content.sort((a, b) => rank(a) - rank(b))
  return out
}

const rank = (block: ContentBlockParam): number => (block.type === "tool_result" ? 0 : 1)

function blocks(message: Message): ["user" | "assistant", Array<ContentBlockParam>] {
  switch (message.role) {
    case "user":
      return ["user", message.text === "" ? [] : [{ type: "text", text: message.text }]]
    case "assistant":
      return [
        "assistant",
        [
          ...(message.text === "" ? [] : [{ type: "text" as const, text: message.text }]),
          ...message.toolCalls.map((c) => ({ type: "tool_use" as const, id: c.id, name: c.name, input: c.input }))
        ]
      ]
    case "tool":
      return ["user", message.results.map((r) => ({ type: "tool_result" as const, tool_use_id: r.callId, content: r.content, is_error: r.isError }))]
  }
}

interface ToolBlock {
  readonly id: string
  readonly name: string
  json: string
  done: boolean
}

/** What the events of one response have said so far. */
interface Fold {
  readonly texts: Array<string>
  readonly tools: Map<number, ToolBlock>
  readonly calls: Array<ProposedCall>
  readonly usage: { inputTokens: number; outputTokens: number }
  stopReason: Anthropic.Messages.StopReason | null
  stopped: boolean
}

/** One streamed call: the raw server-sent events folded into a turn. */
async function stream(
  client: Anthropic,
  model: string,
  request: ModelRequest,
  onProgress: (progress: ModelProgress) => void,
  signal: AbortSignal
): Promise<ModelTurn> {
  const response = await client.messages.create(toParams(model, request), { signal, maxRetries: 0 }).asResponse()
  const fold: Fold = { texts: [], tools: new Map(), calls: [], usage: { inputTokens: 0, outputTokens: 0 }, stopReason: null, stopped: false }
  const controller = new AbortController()
  signal.addEventListener("abort", () => controller.abort(), { once: true })
  try {
    for await (const sse of Stream.rawEvents(response, controller)) {
      if (sse.event === "ping") onProgress({ _tag: "ping" })
      else if (sse.data !== "") step(fold, sse.event, parseEvent(sse.data), onProgress)
    }
  } catch (e) {
    if (isModelError(e)) throw e
    throw new ModelNetworkError({ message: `the stream failed: ${messageOf(e)}` })
  }
  if (!fold.stopped) throw new ModelNetworkError({ message: "the stream ended before message_stop" })
  for (const block of fold.tools.values()) finishTool(fold, block)
  return { text: fold.texts.join(""), toolCalls: fold.calls, usage: fold.usage, stopReason: toStopReason(fold.stopReason) }
}

function step(fold: Fold, name: string | null, event: Event, onProgress: (progress: ModelProgress) => void): void {
  if (name === "error" || event.type === "error") throw streamError(event)
  switch (event.type) {
    case "message_start": {
      const u = event.message.usage
      // The API counts cached input apart; the turn's cost is all of it.
      fold.usage.inputTokens = u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0)
      fold.usage.outputTokens = u.output_tokens
      return
    }
    case "content_block_start": {
      const block = event.content_block
      if (block.type === "text") {
        fold.texts.push(block.text)
        if (block.text !== "") onProgress({ _tag: "textDelta", text: block.text })
      } else if (block.type === "tool_use") {
        const given = typeof block.input === "object" && block.input !== null && Object.keys(block.input).length > 0
        fold.tools.set(event.index, { id: block.id, name: block.name, json: given ? JSON.stringify(block.input) : "", done: false })
        onProgress({ _tag: "toolCallDelta", id: block.id, name: block.name })
      } else onProgress({ _tag: "ping" })
      return
    }
    case "content_block_delta": {
      const delta = event.delta
      if (delta.type === "text_delta") {
        fold.texts.push(delta.text)
        onProgress({ _tag: "textDelta", text: delta.text })
        return
      }
      if (delta.type === "input_json_delta") {
        const block = fold.tools.get(event.index)
        if (block === undefined) throw new ModelResponseInvalid({ message: `input_json_delta for block ${event.index}, which is not a tool_use` })
        block.json += delta.partial_json
      }
      onProgress({ _tag: "ping" }) // argument pieces, thinking, signatures: alive, nothing to show
      return
    }
    case "content_block_stop": {
      const block = fold.tools.get(event.index)
      if (block !== undefined) finishTool(fold, block)
      return
    }
    case "message_delta":
      fold.stopReason = event.delta.stop_reason ?? fold.stopReason
      fold.usage.outputTokens = event.usage.output_tokens
      return
    case "message_stop":
      fold.stopped = true
      return
  }
}

function finishTool(fold: Fold, block: ToolBlock): void {
  if (block.done) return
  block.done = true
  // A tool without arguments may stream no input at all.
  fold.calls.push(parseToolCall(block.id, block.name, block.json === "" ? "{}" : block.json))
}

/** An event we read; anything else (an unknown future event) passes through the switch untouched. */
type Event = Anthropic.Messages.RawMessageStreamEvent | { readonly type: "error"; readonly error?: { readonly type?: string; readonly message?: string } }

function parseEvent(data: string): Event {
  let event: unknown
  try {
    event = JSON.parse(data)
  } catch {
    throw new ModelResponseInvalid({ message: `an event that is not JSON: ${data.slice(0, 200)}` })
  }
  if (typeof event !== "object" || event === null || typeof (event as { type?: unknown }).type !== "string") {
    throw new ModelResponseInvalid({ message: `an event without a type: ${data.slice(0, 200)}` })
  }
  return event as Event
}

/** An `event: error` in the middle of a stream (the HTTP status was already 200). */
function streamError(event: Event): ModelError {
  const error = "error" in event && typeof event.error === "object" ? event.error : undefined
  const message = error?.message ?? "the stream reported an error"
  switch (error?.type) {
    case "overloaded_error":
    case "api_error":
      return new ModelOverloaded({ message })
    case "rate_limit_error":
      return new ModelRateLimited({ message })
    case "authentication_error":
    case "permission_error":
    case "not_found_error":
      return new ModelUnavailable({ message })
    default:
      return saysContextTooLong(message) ? new ModelContextTooLong({ message }) : new ModelResponseInvalid({ message })
  }
}

const toStopReason = (reason: Anthropic.Messages.StopReason | null): ModelTurn["stopReason"] => {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return "end"
    case "tool_use":
      return "toolUse"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "maxTokens"
    default:
      return "other"
  }
}

/** What the SDK threw (or our stream reader), as a ModelError. `now` dates an HTTP-date retry-after. */
export function toModelError(e: unknown, now: number): ModelError {
  if (isModelError(e)) return e
  if (e instanceof Anthropic.APIUserAbortError) return new ModelNetworkError({ message: "the request was aborted" })
  if (e instanceof Anthropic.APIConnectionError) return new ModelNetworkError({ message: `connection failed: ${messageOf(e.cause ?? e)}` })
  if (e instanceof Anthropic.APIError) {
    const message = e.message
    const status = e.status
    const retryAfter = e.headers === undefined ? undefined : retryAfterMs((name) => e.headers?.get(name), now)
    const after = retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}
    if (status === 429) return new ModelRateLimited({ message, ...after })
    if (status === 529 || status === 503 || e.type === "overloaded_error") return new ModelOverloaded({ message, ...after })
    if (status === 408) return new ModelNetworkError({ message })
    if (status === 400 || status === 413) return saysContextTooLong(message) ? new ModelContextTooLong({ message }) : new ModelResponseInvalid({ message })
    if (status === 401 || status === 402 || status === 403 || status === 404) return new ModelUnavailable({ message })
    if (status !== undefined && status >= 500) return new ModelOverloaded({ message, ...after })
    return new ModelResponseInvalid({ message })
  }
  return new ModelResponseInvalid({ message: messageOf(e) })
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
