/**
 * The Model port over the AI SDK (`ai`): any provider it supports (OpenAI,
 * Google, Bedrock, a gateway model id, a mock) becomes a Keel model.
 *
 * When to use: a provider other than Anthropic, or one `ai` LanguageModel for
 * everything. Wrap it in `retrying` (Retry.ts): this adapter sets
 * `maxRetries: 0` so that every wait runs on Effect's Clock, bounded in one
 * place.
 *
 * Details: one `streamText` call per turn, one step. The tools are declared
 * without `execute`, so the SDK returns the calls and never runs anything:
 * running tools is the journal's job. `streamText` rather than the provider's
 * `doStream` because it accepts every `LanguageModel` (ids, v2/v3/v4
 * specifications), converts the messages and tool schemas for each provider,
 * and parses tool-call arguments; doStream would mean re-implementing all
 * three. An argument text that does not parse, a tool that does not exist, or
 * arguments that are not a JSON object arrive as a MalformedToolCall, so the
 * model is told why. Text deltas → `textDelta`, tool-input starts →
 * `toolCallDelta`, reasoning and argument deltas and pings → `ping`.
 * Errors: `APICallError` 429 → ModelRateLimited (`retry-after-ms` /
 * `retry-after`), 503/529/5xx → ModelOverloaded, 400/413 about the context →
 * ModelContextTooLong, 401/403/404, a missing key or model → ModelUnavailable,
 * no status (the connection failed) → ModelNetworkError, the rest →
 * ModelResponseInvalid.
 *
 * Gotcha: `streamText` reports errors inside the stream rather than throwing;
 * the adapter turns the stream's `error` part into the failure, and silences
 * the SDK's default error logging (`onError`).
 *
 * @example
 *   import { openai } from "@ai-sdk/openai"
 *   const model = retrying(AiSdkModel.make(openai("gpt-5")))
 */
import {
  APICallError,
  InvalidToolInputError,
  type JSONSchema7,
  jsonSchema,
  type LanguageModel,
  LoadAPIKeyError,
  type ModelMessage,
  NoSuchModelError,
  NoSuchToolError,
  RetryError,
  streamText,
  type ToolSet,
  tool
} from "ai"
import { Clock, Effect } from "effect"
import { isJsonObject, type Message, type ModelProgress, type ModelRequest, type ModelShape, type ModelTurn, type ProposedCall } from "./Model.ts"
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

export interface AiSdkOptions {
  /** For status lines and recordings; default "<provider>:<modelId>". */
  readonly name?: string
  readonly temperature?: number
  /** Passed to the provider as is (e.g. `{ openai: { reasoningEffort: "low" } }`). */
  readonly providerOptions?: Parameters<typeof streamText>[0]["providerOptions"]
}

export const make = (model: LanguageModel, options: AiSdkOptions = {}): ModelShape => ({
  name: options.name ?? (typeof model === "string" ? model : `${model.provider}:${model.modelId}`),
  turn: (request, onProgress) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.tryPromise({
        try: (signal) => stream(model, options, request, onProgress, signal),
        catch: (e) => toModelError(e, now)
      })
    )
})

export const toModelMessages = (messages: ReadonlyArray<Message>): Array<ModelMessage> => messages.map(toModelMessage)

function toModelMessage(message: Message): ModelMessage {
  switch (message.role) {
    case "user":
      return { role: "user", content: message.text }
    case "assistant":
      return {
        role: "assistant",
        content: [
          ...(message.text === "" ? [] : [{ type: "text" as const, text: message.text }]),
          ...message.toolCalls.map((c) => ({ type: "tool-call" as const, toolCallId: c.id, toolName: c.name, input: c.input }))
        ]
      }
    case "tool":
      return {
        role: "tool",
        content: message.results.map((r) => ({
          type: "tool-result" as const,
          toolCallId: r.callId,
          toolName: r.name,
          output: r.isError ? { type: "error-text" as const, value: r.content } : { type: "text" as const, value: r.content }
        }))
      }
  }
}

/** Tools the model may call, without `execute`: the SDK hands the calls back and runs none. */
export const toToolSet = (request: ModelRequest): ToolSet =>
  Object.fromEntries(request.tools.map((t) => [t.name, tool({ description: t.description, inputSchema: jsonSchema(t.inputSchema as JSONSchema7) })]))

async function stream(
  model: LanguageModel,
  options: AiSdkOptions,
  request: ModelRequest,
  onProgress: (progress: ModelProgress) => void,
  signal: AbortSignal
): Promise<ModelTurn> {
  const result = streamText({
    model,
    ...(request.system !== "" ? { instructions: request.system } : {}),
    messages: toModelMessages(request.messages),
    ...(request.tools.length > 0 ? { tools: toToolSet(request) } : {}),
    maxOutputTokens: request.maxOutputTokens,
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(options.providerOptions !== undefined ? { providerOptions: options.providerOptions } : {}),
    maxRetries: 0,
    abortSignal: signal,
    onError: () => {} // the error part below is the failure; the default handler would only log it
  })
  let text = ""
  const calls = new Map<string, ProposedCall>()
  let finishReason: string | undefined
  const usage = { inputTokens: 0, outputTokens: 0 }
  for await (const part of result.fullStream) {
    switch (part.type) {
      case "text-delta":
        text += part.text
        onProgress({ _tag: "textDelta", text: part.text })
        break
      case "tool-input-start":
        onProgress({ _tag: "toolCallDelta", id: part.id, name: part.toolName })
        break
      case "tool-input-delta":
      case "reasoning-delta":
      case "ping":
        onProgress({ _tag: "ping" })
        break
      case "tool-call":
        calls.set(part.toolCallId, proposed(part.toolCallId, part.toolName, part.input, part.invalid === true ? part.error : undefined))
        break
      case "tool-error":
        // Only invalid calls can fail here (no tool has `execute`); keep the first word on a call.
        if (!calls.has(part.toolCallId)) calls.set(part.toolCallId, proposed(part.toolCallId, part.toolName, part.input, part.error ?? "invalid call"))
        break
      case "finish":
        finishReason = part.finishReason
        usage.inputTokens = part.totalUsage.inputTokens ?? 0
        usage.outputTokens = part.totalUsage.outputTokens ?? 0
        break
      case "error":
        throw part.error
      case "abort":
        throw new ModelNetworkError({ message: `the stream was aborted${part.reason !== undefined ? `: ${part.reason}` : ""}` })
    }
  }
  if (finishReason === undefined) throw new ModelNetworkError({ message: "the stream ended without a finish" })
  return { text, toolCalls: [...calls.values()], usage, stopReason: toStopReason(finishReason) }
}

/** A call the SDK parsed (or refused, with `error`) as a ProposedCall: only a JSON object is a call. */
function proposed(id: string, name: string, input: unknown, error: unknown): ProposedCall {
  if (error === undefined && isJsonObject(input)) return { id, name, input }
  const malformed = typeof input === "string" ? input : (JSON.stringify(input) ?? String(input))
  return { id, name, malformed, error: error === undefined ? "the arguments are not a JSON object" : messageOf(error) }
}

const toStopReason = (reason: string): ModelTurn["stopReason"] => {
  switch (reason) {
    case "stop":
      return "end"
    case "tool-calls":
      return "toolUse"
    case "length":
      return "maxTokens"
    default:
      return "other"
  }
}

/** What `streamText` threw or streamed as an error, as a ModelError. `now` dates an HTTP-date retry-after. */
export function toModelError(e: unknown, now: number): ModelError {
  if (isModelError(e)) return e
  if (RetryError.isInstance(e)) return toModelError(e.lastError, now)
  if (APICallError.isInstance(e)) {
    const message = e.message
    const status = e.statusCode
    const headers = e.responseHeaders ?? {}
    const retryAfter = retryAfterMs((name) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1], now)
    const after = retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}
    if (status === undefined) return e.isRetryable ? new ModelNetworkError({ message }) : new ModelResponseInvalid({ message })
    if (status === 429) return new ModelRateLimited({ message, ...after })
    if (status === 529 || status === 503) return new ModelOverloaded({ message, ...after })
    if (status === 408) return new ModelNetworkError({ message })
    if (status === 400 || status === 413) {
      return saysContextTooLong(`${message} ${e.responseBody ?? ""}`) ? new ModelContextTooLong({ message }) : new ModelResponseInvalid({ message })
    }
    if (status === 401 || status === 403 || status === 404) return new ModelUnavailable({ message })
    if (status >= 500) return new ModelOverloaded({ message, ...after })
    return new ModelResponseInvalid({ message })
  }
  if (LoadAPIKeyError.isInstance(e) || NoSuchModelError.isInstance(e)) return new ModelUnavailable({ message: e.message })
  if (InvalidToolInputError.isInstance(e) || NoSuchToolError.isInstance(e)) return new ModelResponseInvalid({ message: e.message })
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError" || e instanceof TypeError)) {
    return new ModelNetworkError({ message: e.message })
  }
  return new ModelResponseInvalid({ message: messageOf(e) })
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : typeof e === "string" ? e : String(e))
