/**
 * Recorded model turns: run once against a real model, keep every turn in a
 * file, and replay them later, offline, as a regression test or a demo.
 *
 * When to use: `record(model, file)` around a real adapter while you run a
 * scenario; `replay(file)` in its place afterwards. In strict mode (the
 * default) the replay checks that each request is the one that was recorded,
 * so a change in prompts, tools or the loop's context assembly fails loudly
 * with `ModelReplayMismatch` naming the turn; `strict: false` only keeps the
 * order, for recordings meant to survive harmless prompt edits.
 *
 * Details: the file is NDJSON, one line per turn: `{ v, turn, model, digest,
 * at, ok }` or `{ …, error }` (errors are recorded too, so a replay meets the
 * same rate limit at the same point). The digest is the SHA-256 of a canonical
 * JSON (sorted keys) of the system prompt, the messages and the tool names.
 * A replayed turn streams its text as `textDelta` and its calls as
 * `toolCallDelta`, like a live one.
 *
 * Gotchas: `record` appends: start from a fresh file. One recorder serves
 * one conversation at a time (turns of parallel agents would interleave). A
 * missing file is `ModelUnavailable`, a line that does not parse
 * `ModelResponseInvalid` naming `file:line` (never a crash, never a skipped
 * line); a failed write while recording is `ModelUnavailable`.
 *
 * @example
 *   const model = process.env.RECORD ? RecordReplay.record(retrying(AnthropicModel.make(opts)), "test/fixtures/demo.ndjson") : RecordReplay.replay("test/fixtures/demo.ndjson")
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect, Result, Schema } from "effect"
import { canonicalJson } from "../internal/canonicalJson.ts"
import type { ModelRequest, ModelShape, ModelTurn } from "./Model.ts"
import {
  ModelContextTooLong,
  type ModelError,
  ModelNetworkError,
  ModelOverloaded,
  ModelRateLimited,
  ModelReplayMismatch,
  ModelResponseInvalid,
  ModelUnavailable
} from "./ModelError.ts"

const formatVersion = 1

const Usage = Schema.Struct({ inputTokens: Schema.Finite, outputTokens: Schema.Finite })
const Call = Schema.Union([
  Schema.Struct({ id: Schema.String, name: Schema.String, input: Schema.Json }),
  Schema.Struct({ id: Schema.String, name: Schema.String, malformed: Schema.String, error: Schema.String })
])
const Turn = Schema.Struct({
  text: Schema.String,
  toolCalls: Schema.Array(Call),
  usage: Usage,
  stopReason: Schema.Literals(["end", "toolUse", "maxTokens", "other"])
})
const ErrorTags = [
  "ModelRateLimited",
  "ModelOverloaded",
  "ModelContextTooLong",
  "ModelNetworkError",
  "ModelUnavailable",
  "ModelResponseInvalid",
  "ModelReplayMismatch"
] as const
const RecordedError = Schema.Struct({ _tag: Schema.Literals(ErrorTags), message: Schema.String, retryAfterMs: Schema.optional(Schema.Finite) })

/** One line of a recording. */
export const Recorded = Schema.Struct({
  v: Schema.Literal(formatVersion),
  turn: Schema.Int,
  model: Schema.String,
  digest: Schema.String,
  at: Schema.Finite,
  ok: Schema.optional(Turn),
  error: Schema.optional(RecordedError)
})
export type Recorded = typeof Recorded.Type

const decodeRecorded = Schema.decodeUnknownResult(Recorded)

/** SHA-256 (hex) of the canonical JSON of what identifies a request: system, messages, tool names. */
export const digest = (request: ModelRequest): string =>
  createHash("sha256")
    .update(canonicalJson({ system: request.system, messages: request.messages, tools: request.tools.map((t) => t.name) }))
    .digest("hex")

/** Wraps `model`: every turn (or error) it gives is appended to `file` as one NDJSON line. */
export const record = (model: ModelShape, file: string): ModelShape => {
  // Numbered when written: an interrupted turn leaves no line and no gap.
  let written = 0
  return {
    name: model.name,
    turn: (request, onProgress) =>
      Effect.gen(function* () {
        const result = yield* Effect.result(model.turn(request, onProgress))
        const at = yield* Clock.currentTimeMillis
        const line: Recorded = {
          v: formatVersion,
          turn: written,
          model: model.name,
          digest: digest(request),
          at,
          ...(Result.isSuccess(result) ? { ok: result.success } : { error: errorData(result.failure) })
        }
        yield* Effect.tryPromise({
          try: () => fs.promises.appendFile(file, `${JSON.stringify(line)}\n`, "utf8"),
          catch: (e) => new ModelUnavailable({ message: `cannot record to ${file}: ${e instanceof Error ? e.message : String(e)}` })
        })
        written += 1
        return Result.isSuccess(result) ? result.success : yield* Effect.fail(result.failure)
      })
  }
}

export interface ReplayOptions {
  /** Check each request's digest against the recording (default true). */
  readonly strict?: boolean
}

/** A model that serves the turns recorded in `file`, in order. The file is read at the first turn. */
export const replay = (file: string, options: ReplayOptions = {}): ModelShape => {
  const strict = options.strict ?? true
  let loaded: Effect.Effect<ReadonlyArray<Recorded>, ModelError> | undefined
  let asked = 0
  return {
    name: `replay:${path.basename(file)}`,
    turn: (request, onProgress) =>
      Effect.gen(function* () {
        loaded ??= yield* Effect.cached(load(file))
        const lines = yield* loaded
        const turn = asked
        asked += 1
        const line = lines[turn]
        if (line === undefined) {
          return yield* Effect.fail(new ModelReplayMismatch({ message: `${file} holds ${lines.length} turns; turn ${turn} was asked for`, turn }))
        }
        if (strict && line.digest !== digest(request)) {
          return yield* Effect.fail(
            new ModelReplayMismatch({
              message: `turn ${turn}: the request differs from the recorded one (system prompt, messages or tools changed); replay with strict: false to ignore`,
              turn
            })
          )
        }
        const ok: ModelTurn | undefined = line.ok
        if (ok === undefined) {
          return yield* Effect.fail(line.error !== undefined ? toError(line.error, turn) : new ModelResponseInvalid({ message: `turn ${turn} holds no turn` }))
        }
        if (ok.text !== "") onProgress({ _tag: "textDelta", text: ok.text })
        for (const call of ok.toolCalls) onProgress({ _tag: "toolCallDelta", id: call.id, name: call.name })
        return ok
      })
  }
}

/** Reads and checks every line; the first problem is the error of every turn. */
const load = (file: string): Effect.Effect<ReadonlyArray<Recorded>, ModelError> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => fs.promises.readFile(file, "utf8"),
      catch: (e) => new ModelUnavailable({ message: `cannot read the recording ${file}: ${e instanceof Error ? e.message : String(e)}` })
    })
    const lines: Array<Recorded> = []
    const rows = text.split("\n")
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] ?? ""
      if (row.trim() === "") continue
      const where = `${file}:${i + 1}`
      let json: unknown
      try {
        json = JSON.parse(row)
      } catch (e) {
        return yield* Effect.fail(new ModelResponseInvalid({ message: `${where}: not JSON (${e instanceof Error ? e.message : String(e)})` }))
      }
      const decoded = decodeRecorded(json)
      if (Result.isFailure(decoded))
        return yield* Effect.fail(new ModelResponseInvalid({ message: `${where}: not a recorded turn: ${decoded.failure.message}` }))
      const line = decoded.success
      if ((line.ok === undefined) === (line.error === undefined)) {
        return yield* Effect.fail(new ModelResponseInvalid({ message: `${where}: a recorded turn holds either ok or error` }))
      }
      if (line.turn !== lines.length) {
        return yield* Effect.fail(new ModelResponseInvalid({ message: `${where}: turn ${line.turn} where turn ${lines.length} was expected` }))
      }
      lines.push(line)
    }
    return lines
  })

const errorData = (error: ModelError): Schema.Schema.Type<typeof RecordedError> =>
  "retryAfterMs" in error && error.retryAfterMs !== undefined
    ? { _tag: error._tag, message: error.message, retryAfterMs: error.retryAfterMs }
    : { _tag: error._tag, message: error.message }

function toError(data: Schema.Schema.Type<typeof RecordedError>, turn: number): ModelError {
  const { message } = data
  const after = data.retryAfterMs !== undefined ? { retryAfterMs: data.retryAfterMs } : {}
  switch (data._tag) {
    case "ModelRateLimited":
      return new ModelRateLimited({ message, ...after })
    case "ModelOverloaded":
      return new ModelOverloaded({ message, ...after })
    case "ModelContextTooLong":
      return new ModelContextTooLong({ message })
    case "ModelNetworkError":
      return new ModelNetworkError({ message })
    case "ModelUnavailable":
      return new ModelUnavailable({ message })
    case "ModelResponseInvalid":
      return new ModelResponseInvalid({ message })
    case "ModelReplayMismatch":
      return new ModelReplayMismatch({ message, turn })
  }
}
