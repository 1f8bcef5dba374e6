/**
 * A model whose turns are written in advance: deterministic, offline, free.
 *
 * When to use: tests of the agent loop (tool calls, malformed arguments,
 * model errors, stalls), and the offline demo. A script is either an array of
 * turns served in order, or a function of the request and the turn index, for
 * turns that depend on what the loop sent (e.g. echo the last tool result).
 *
 * Details: text streams as `textDelta` progress (in `chunkChars` pieces, with
 * `chunkDelayMs` between them on Effect's Clock), each tool call as a
 * `toolCallDelta`. Tool-call ids are `scripted_<index>_<k>`; the agent loop
 * assigns its own journal call ids. `stallMs` sleeps (Clock) before anything
 * is streamed, which is how tests drive the stall watchdog with `TestClock`.
 * Usage is deterministic: about a token per four characters of the request
 * and of the answer, unless the turn says otherwise.
 *
 * Gotcha: `index` counts the turns this instance has been asked, across runs:
 * make a new model per test. An array script asked for a turn it does not
 * hold fails with `ModelResponseInvalid`, so a loop that calls the model once
 * too often fails loudly instead of hanging.
 *
 * @example
 *   const model = ScriptedModel.make([
 *     { text: "Let me look.", toolCalls: [{ name: "read_file", input: { path: "a.txt" } }] },
 *     { text: "The file says hello." }
 *   ])
 */
import { Effect, type Schema } from "effect"
import {
  isJsonObject,
  isMalformed,
  type Message,
  type ModelProgress,
  type ModelRequest,
  type ModelShape,
  type ModelTurn,
  type ProposedCall,
  parseToolCall
} from "./Model.ts"
import { type ModelError, ModelResponseInvalid } from "./ModelError.ts"

/** One scripted tool call: arguments as JSON, or a raw string the model "sent" that the loop must reject. */
export type ScriptedToolCall = { readonly name: string; readonly input: Schema.Json } | { readonly name: string; readonly malformed: string }

export interface ScriptedTurn {
  readonly text?: string
  readonly toolCalls?: ReadonlyArray<ScriptedToolCall>
  /** The turn fails with this error (after `stallMs`, before streaming anything). */
  readonly error?: ModelError
  /** Sleeps this long (Effect Clock) before anything: to test the stall watchdog. */
  readonly stallMs?: number
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number }
  /** Default: "toolUse" when the turn has tool calls, "end" otherwise. */
  readonly stopReason?: ModelTurn["stopReason"]
}

/** `index` = how many turns this model instance has been asked so far. */
export type Script = (request: ModelRequest, index: number) => ScriptedTurn

export interface ScriptedOptions {
  /** For status lines and recordings; default "scripted". */
  readonly name?: string
  /** Text is streamed in pieces of this many characters; default: one piece. */
  readonly chunkChars?: number
  /** Sleep (Effect Clock) between two pieces; default 0. */
  readonly chunkDelayMs?: number
}

export const make = (script: Script | ReadonlyArray<ScriptedTurn>, options: ScriptedOptions = {}): ModelShape => {
  const next: Script = typeof script === "function" ? script : fromArray(script)
  const chunkChars = Math.max(1, Math.floor(options.chunkChars ?? Number.POSITIVE_INFINITY))
  const chunkDelayMs = Math.max(0, options.chunkDelayMs ?? 0)
  let asked = 0
  return {
    name: options.name ?? "scripted",
    turn: (request, onProgress) =>
      Effect.suspend(() => {
        const index = asked
        asked += 1
        return play(next(request, index), request, index, onProgress, chunkChars, chunkDelayMs)
      })
  }
}

/** The turns of an array in order; past its end, a typed failure. */
const fromArray =
  (turns: ReadonlyArray<ScriptedTurn>): Script =>
  (_request, index) =>
    turns[index] ?? { error: new ModelResponseInvalid({ message: `the script has no turn ${index} (turns count from 0; it holds ${turns.length})` }) }

function play(
  turn: ScriptedTurn,
  request: ModelRequest,
  index: number,
  onProgress: (progress: ModelProgress) => void,
  chunkChars: number,
  chunkDelayMs: number
): Effect.Effect<ModelTurn, ModelError> {
  return Effect.gen(function* () {
    if (turn.stallMs !== undefined && turn.stallMs > 0) yield* Effect.sleep(turn.stallMs)
    if (turn.error !== undefined) return yield* Effect.fail(turn.error)
    const text = turn.text ?? ""
    for (let at = 0; at < text.length; at += chunkChars) {
      if (at > 0 && chunkDelayMs > 0) yield* Effect.sleep(chunkDelayMs)
      onProgress({ _tag: "textDelta", text: text.slice(at, at + chunkChars) })
    }
    const toolCalls = (turn.toolCalls ?? []).map((call, k) => proposed(call, `scripted_${index}_${k}`))
    for (const call of toolCalls) onProgress({ _tag: "toolCallDelta", id: call.id, name: call.name })
    return {
      text,
      toolCalls,
      usage: turn.usage ?? { inputTokens: Math.ceil(requestChars(request) / 4), outputTokens: Math.ceil(answerChars(text, toolCalls) / 4) },
      stopReason: turn.stopReason ?? (toolCalls.length > 0 ? "toolUse" : "end")
    }
  })
}

function proposed(call: ScriptedToolCall, id: string): ProposedCall {
  if ("malformed" in call) {
    const parsed = parseToolCall(id, call.name, call.malformed)
    // The script said malformed: even text that happens to be a JSON object stays malformed.
    return isMalformed(parsed) ? parsed : { id, name: call.name, malformed: call.malformed, error: "the script marked these arguments malformed" }
  }
  return isJsonObject(call.input)
    ? { id, name: call.name, input: call.input }
    : { id, name: call.name, malformed: JSON.stringify(call.input), error: "the arguments are not a JSON object" }
}

const messageChars = (message: Message): number => {
  switch (message.role) {
    case "user":
      return message.text.length
    case "assistant":
      return message.text.length + message.toolCalls.reduce((n, c) => n + c.name.length + JSON.stringify(c.input).length, 0)
    case "tool":
      return message.results.reduce((n, r) => n + r.content.length, 0)
  }
}

const requestChars = (request: ModelRequest): number =>
  request.system.length +
  request.messages.reduce((n, m) => n + messageChars(m), 0) +
  request.tools.reduce((n, t) => n + t.name.length + t.description.length + JSON.stringify(t.inputSchema).length, 0)

const answerChars = (text: string, calls: ReadonlyArray<ProposedCall>): number =>
  text.length + calls.reduce((n, c) => n + c.name.length + ("malformed" in c ? c.malformed.length : JSON.stringify(c.input).length), 0)
