/**
 * The Model port: what the agent loop needs from a language model — one
 * turn for a conversation and a set of tools, streamed.
 *
 * When to use: give the agent a `ModelShape` (or provide the `Model` service).
 * Adapters: `AnthropicModel` (`@anthropic-ai/sdk`), `AiSdkModel` (any `ai`
 * LanguageModel), `ScriptedModel` (deterministic, offline), `RecordReplay`
 * (records real turns to a file and replays them as a regression test).
 *
 * Details: a turn is data: text, the tool calls it proposes (arguments
 * already parsed; arguments that are not JSON arrive as `malformed` and the
 * loop turns them into an error result the model sees), token usage. Errors
 * are typed (`ModelError.ts`); `retrying` retries the retryable ones with a
 * bounded, jittered `Schedule` that honours `retry-after`.
 *
 * Gotcha: adapters never read the environment; the caller passes keys.
 */
import { Context, type Effect, type Schema } from "effect"
import type { ModelError } from "./ModelError.ts"

/** A tool as the model is told about it (JSON Schema of its input). */
export interface ToolSpec {
  readonly name: string
  readonly description: string
  readonly inputSchema: { readonly [key: string]: Schema.Json }
}

/** A tool call as the model asked for it. */
export interface ToolCallRequest {
  readonly id: string
  readonly name: string
  readonly input: Schema.Json
}

/** A tool's outcome as the model is shown it. */
export interface ToolResult {
  readonly callId: string
  readonly name: string
  readonly isError: boolean
  readonly content: string
}

export type Message =
  | { readonly role: "user"; readonly text: string }
  | { readonly role: "assistant"; readonly text: string; readonly toolCalls: ReadonlyArray<ToolCallRequest> }
  | { readonly role: "tool"; readonly results: ReadonlyArray<ToolResult> }

export interface ModelRequest {
  readonly system: string
  readonly messages: ReadonlyArray<Message>
  readonly tools: ReadonlyArray<ToolSpec>
  readonly maxOutputTokens: number
}

/** A proposed call whose arguments are not a JSON object: the loop rejects it with `error`, the model sees why. */
export interface MalformedToolCall {
  readonly id: string
  readonly name: string
  readonly malformed: string
  readonly error: string
}

export type ProposedCall = ToolCallRequest | MalformedToolCall

export const isMalformed = (call: ProposedCall): call is MalformedToolCall => "malformed" in call

/** A JSON object (not an array, not null): the only shape a tool's arguments may take. */
export const isJsonObject = (value: unknown): value is { readonly [key: string]: Schema.Json } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * A call from its raw argument text, as every adapter must read it: a JSON
 * object is a call; anything else is malformed, with the reason the model
 * will be shown.
 */
export const parseToolCall = (id: string, name: string, raw: string): ProposedCall => {
  let input: unknown
  try {
    input = JSON.parse(raw)
  } catch (e) {
    return { id, name, malformed: raw, error: e instanceof Error ? e.message : String(e) }
  }
  return isJsonObject(input) ? { id, name, input } : { id, name, malformed: raw, error: "the arguments are not a JSON object" }
}

export interface ModelTurn {
  readonly text: string
  readonly toolCalls: ReadonlyArray<ProposedCall>
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number }
  readonly stopReason: "end" | "toolUse" | "maxTokens" | "other"
}

/** Progress while a turn streams; each one is also what the watchdog counts as progress. */
export type ModelProgress =
  | { readonly _tag: "textDelta"; readonly text: string }
  | { readonly _tag: "toolCallDelta"; readonly id: string; readonly name: string }
  | { readonly _tag: "ping" }

export interface ModelShape {
  /** For status lines and recordings, e.g. "anthropic:claude-sonnet-4-5". */
  readonly name: string
  /** One turn. `onProgress` is called as the turn streams (it must not throw). */
  readonly turn: (request: ModelRequest, onProgress: (progress: ModelProgress) => void) => Effect.Effect<ModelTurn, ModelError>
}

export class Model extends Context.Service<Model, ModelShape>()("keel/Model") {}
