/**
 * The ways a model call fails, as tagged data (design §8.4). `isRetryable`
 * says whether the same request may succeed later: the loop retries those
 * with a bounded Schedule (`retrying` in Retry.ts) and turns the rest into a
 * failed run with a reason.
 */
import { Schema } from "effect"

/** 429: too many requests; `retryAfterMs` from the `retry-after` header when the API sent one. */
export class ModelRateLimited extends Schema.TaggedError<ModelRateLimited>()("ModelRateLimited", {
  message: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number)
}) {
  readonly isRetryable = true
}

/** 529 / 503: the provider is overloaded. */
export class ModelOverloaded extends Schema.TaggedError<ModelOverloaded>()("ModelOverloaded", {
  message: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number)
}) {
  readonly isRetryable = true
}

/** The conversation does not fit the model's window; retrying the same request cannot help. */
export class ModelContextTooLong extends Schema.TaggedError<ModelContextTooLong>()("ModelContextTooLong", {
  message: Schema.String
}) {
  readonly isRetryable = false
}

/** The connection failed or dropped mid-stream. */
export class ModelNetworkError extends Schema.TaggedError<ModelNetworkError>()("ModelNetworkError", {
  message: Schema.String
}) {
  readonly isRetryable = true
}

/** No key, a refused key, a model that does not exist: a person has to act. */
export class ModelUnavailable extends Schema.TaggedError<ModelUnavailable>()("ModelUnavailable", {
  message: Schema.String
}) {
  readonly isRetryable = false
}

/** The model (or provider) returned something that is not a turn: garbage, an unknown stop, a bad request. */
export class ModelResponseInvalid extends Schema.TaggedError<ModelResponseInvalid>()("ModelResponseInvalid", {
  message: Schema.String
}) {
  readonly isRetryable = false
}

/** A replayed model was asked something its recording does not hold. */
export class ModelReplayMismatch extends Schema.TaggedError<ModelReplayMismatch>()("ModelReplayMismatch", {
  message: Schema.String,
  turn: Schema.Number
}) {
  readonly isRetryable = false
}

export type ModelError =
  | ModelRateLimited
  | ModelOverloaded
  | ModelContextTooLong
  | ModelNetworkError
  | ModelUnavailable
  | ModelResponseInvalid
  | ModelReplayMismatch

export const isRetryable = (error: ModelError): boolean => error.isRetryable

export const isModelError = (u: unknown): u is ModelError =>
  u instanceof ModelRateLimited ||
  u instanceof ModelOverloaded ||
  u instanceof ModelContextTooLong ||
  u instanceof ModelNetworkError ||
  u instanceof ModelUnavailable ||
  u instanceof ModelResponseInvalid ||
  u instanceof ModelReplayMismatch

/**
 * The wait a provider asked for, for adapters: `retry-after-ms`, else
 * `retry-after` in seconds or as an HTTP date (then `now`, from Effect's Clock,
 * gives the difference). `header` looks a header up by its lower-case name.
 */
export const retryAfterMs = (header: (name: string) => string | null | undefined, now: number): number | undefined => {
  const ms = Number.parseFloat(header("retry-after-ms") ?? "")
  if (Number.isFinite(ms) && ms >= 0) return Math.round(ms)
  const value = header("retry-after")
  if (value === null || value === undefined) return undefined
  const seconds = Number.parseFloat(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000)
  const date = Date.parse(value)
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined
}

/** Whether a provider's 400/413 message says the conversation does not fit (wordings of Anthropic, OpenAI, Google). */
export const saysContextTooLong = (message: string): boolean =>
  /prompt is too long|context window|context length|context_length_exceeded|too many (input )?tokens|maximum context|exceeds the maximum|too large/i.test(
    message
  )
