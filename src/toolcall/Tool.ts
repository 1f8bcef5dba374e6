/**
 * Tool definitions: what a tool takes and returns (Schemas), what running it
 * does to the world (semantics), and how long and how often it may run.
 *
 * When to use: define every tool with `Tool.make`; the executor decodes the
 * model's arguments with `input` before anything runs, encodes the result with
 * `output` before it is journaled, and retries only where `semantics` allows.
 *
 * Details: `run(input, ctx)` gets the idempotency key (forward it to external
 * APIs), an AbortSignal and the attempt number — nothing ambient: its Effect
 * may not require any service (`R = never`). Expected failures are
 * `ToolFailure` (with `retryable`); anything else the tool throws is a defect
 * that the executor turns into an error result, never a crash.
 *
 * @example
 *   const readFile = Tool.make({
 *     name: "read_file",
 *     description: "Read a UTF-8 file",
 *     input: Schema.Struct({ path: Schema.String }),
 *     output: Schema.String,
 *     semantics: "readOnly",
 *     timeoutMs: 5_000,
 *     run: ({ path }, ctx) => Effect.tryPromise({ try: () => fs.readFile(path, { encoding: "utf8", signal: ctx.signal }), catch: (e) => new ToolFailure({ message: String(e), retryable: false }) })
 *   })
 */
import { Effect, Result, Schema } from "effect"
import { Limits } from "../Limits.ts"

/** What running a tool does to the world; decides retries and crash recovery (design §3). */
export type Semantics = "readOnly" | "idempotent" | "compensatable" | "unsafe"

/** A tool's expected failure. `retryable` failures of readOnly/idempotent tools are retried with backoff. */
export class ToolFailure extends Schema.TaggedError<ToolFailure>()("ToolFailure", {
  message: Schema.String,
  retryable: Schema.Boolean
}) {}

/** The model's arguments do not fit the tool's input Schema; nothing ran. The model sees `message`. */
export class ToolInputInvalid extends Schema.TaggedError<ToolInputInvalid>()("ToolInputInvalid", {
  tool: Schema.String,
  message: Schema.String
}) {}

/** The tool returned something its output Schema refuses; the result is an error, not journaled as success. */
export class ToolOutputInvalid extends Schema.TaggedError<ToolOutputInvalid>()("ToolOutputInvalid", {
  tool: Schema.String,
  message: Schema.String
}) {}

/** A definition that can never run safely (e.g. retries on an unsafe tool); thrown by `make`, at start-up. */
export class InvalidToolDefinition extends Error {
  override readonly name = "InvalidToolDefinition"
}

/** Everything a tool gets. No file system, no network, no environment: what it needs comes as input. */
export interface ToolContext {
  readonly callId: string
  /** Deterministic from session id + call id: the same across retries, replays and processes. */
  readonly idempotencyKey: string
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Aborted when the call is cancelled or times out. */
  readonly signal: AbortSignal
}

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  readonly attemptsMax: number
  /** First delay; doubled each retry, jittered, capped at `capMs`. */
  readonly baseMs: number
  readonly capMs: number
}

/** What a reconcile found out about a call whose outcome was lost in a crash. */
export type Reconciled<O> = { readonly executed: true; readonly output: O } | { readonly executed: false }

export interface Tool<I, O> {
  readonly name: string
  readonly description: string
  readonly input: Schema.Codec<I, unknown>
  readonly output: Schema.Codec<O, unknown>
  readonly semantics: Semantics
  readonly timeoutMs: number
  readonly retry: RetryPolicy
  readonly run: (input: I, ctx: ToolContext) => Effect.Effect<O, ToolFailure>
  /**
   * Undoes a succeeded call (required for compensatable tools). Must be
   * idempotent by its key: a crash after the undo and before
   * `tool.call.compensated` is durable makes recovery compensate again.
   */
  readonly compensate: ((input: I, output: O, ctx: ToolContext) => Effect.Effect<void, ToolFailure>) | undefined
  /** Asks the world whether a call whose outcome was lost ran (by its idempotency key). */
  readonly reconcile: ((input: I, ctx: ToolContext) => Effect.Effect<Reconciled<O>, ToolFailure>) | undefined
}

/** Any tool, for registries. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds tools of every input and output type
export type AnyTool = Tool<any, any>

export interface ToolSpec<IS extends Schema.Codec<unknown, unknown>, OS extends Schema.Codec<unknown, unknown>> {
  readonly name: string
  readonly description: string
  readonly input: IS
  readonly output: OS
  readonly semantics: Semantics
  readonly timeoutMs: number
  readonly retry?: Partial<RetryPolicy>
  readonly run: (input: IS["Type"], ctx: ToolContext) => Effect.Effect<OS["Type"], ToolFailure>
  readonly compensate?: (input: IS["Type"], output: OS["Type"], ctx: ToolContext) => Effect.Effect<void, ToolFailure>
  readonly reconcile?: (input: IS["Type"], ctx: ToolContext) => Effect.Effect<Reconciled<OS["Type"]>, ToolFailure>
}

const namePattern = /^[A-Za-z0-9_-]{1,64}$/

/** Defines a tool; throws InvalidToolDefinition for a definition that could never run safely. */
export function make<IS extends Schema.Codec<unknown, unknown>, OS extends Schema.Codec<unknown, unknown>>(
  spec: ToolSpec<IS, OS>
): Tool<IS["Type"], OS["Type"]> {
  const retry: RetryPolicy = { attemptsMax: 1, baseMs: 100, capMs: 10_000, ...spec.retry }
  const invalid = (why: string) => new InvalidToolDefinition(`tool ${JSON.stringify(spec.name)}: ${why}`)
  if (!namePattern.test(spec.name)) throw invalid("a name is 1-64 letters, digits, _ or -")
  if (!Number.isInteger(spec.timeoutMs) || spec.timeoutMs < 1 || spec.timeoutMs > Limits.toolTimeoutMsMax) {
    throw invalid(`timeoutMs must be an integer in 1..${Limits.toolTimeoutMsMax}`)
  }
  if (!Number.isInteger(retry.attemptsMax) || retry.attemptsMax < 1 || retry.attemptsMax > Limits.retryAttemptsMax) {
    throw invalid(`retry.attemptsMax must be an integer in 1..${Limits.retryAttemptsMax}`)
  }
  if (retry.baseMs < 0 || retry.capMs < retry.baseMs) throw invalid("retry delays need 0 <= baseMs <= capMs")
  // Retrying re-runs the effect: only where running twice is harmless (design §3, §5).
  if (retry.attemptsMax > 1 && (spec.semantics === "compensatable" || spec.semantics === "unsafe")) {
    throw invalid(`a ${spec.semantics} tool may not be retried (it could run its effect twice)`)
  }
  if (spec.semantics === "compensatable" && spec.compensate === undefined) throw invalid("a compensatable tool needs compensate")
  return {
    name: spec.name,
    description: spec.description,
    input: spec.input as Schema.Codec<IS["Type"], unknown>,
    output: spec.output as Schema.Codec<OS["Type"], unknown>,
    semantics: spec.semantics,
    timeoutMs: spec.timeoutMs,
    retry,
    run: spec.run,
    compensate: spec.compensate,
    reconcile: spec.reconcile
  }
}

/**
 * The idempotency key of a call: deterministic from the session and the call,
 * so a retry, a replay after a crash and another process all send the same
 * one. `attempt` is for tools whose API wants a fresh key per attempt.
 */
export function idempotencyKey(sessionId: string, callId: string, attempt?: number): string {
  return attempt === undefined ? `keel:${sessionId}:${callId}` : `keel:${sessionId}:${callId}:${attempt}`
}

/**
 * Decodes the model's arguments (JSON) with the input Schema's JSON codec —
 * the same codec the exported JSON Schema describes. A failure names every
 * problem, for the model to fix its call.
 */
export function decodeInput<I, O>(tool: Tool<I, O>, raw: unknown): Effect.Effect<I, ToolInputInvalid> {
  const result = Schema.decodeUnknownResult(Schema.toCodecJson(tool.input))(raw, { errors: "all" })
  return Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(new ToolInputInvalid({ tool: tool.name, message: result.failure.message }))
}

/** Encodes a result with the output Schema's JSON codec: what is journaled and shown to the model. */
export function encodeOutput<I, O>(tool: Tool<I, O>, output: O): Effect.Effect<Schema.Json, ToolOutputInvalid> {
  const result = Schema.encodeUnknownResult(Schema.toCodecJson(tool.output))(output, { errors: "all" })
  if (Result.isFailure(result)) return Effect.fail(new ToolOutputInvalid({ tool: tool.name, message: result.failure.message }))
  return Schema.is(Schema.Json)(result.success)
    ? Effect.succeed(result.success)
    : Effect.fail(new ToolOutputInvalid({ tool: tool.name, message: "the encoded output is not JSON data" }))
}

/** The tool as a model sees it: name, description and a JSON Schema of its input (from the same Schema). */
export function describe<I, O>(tool: Tool<I, O>): { readonly name: string; readonly description: string; readonly inputSchema: unknown } {
  const document = Schema.toJsonSchemaDocument(tool.input)
  return { name: tool.name, description: tool.description, inputSchema: { ...document.schema, $defs: document.definitions } }
}
