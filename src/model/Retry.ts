/**
 * Retries of a model call: the same request again after a rate limit, an
 * overload or a dropped connection, and nothing else.
 *
 * When to use: wrap every real adapter (`retrying(AnthropicModel.make(...))`);
 * the adapters themselves never retry (their SDKs' retries are switched off so
 * that time runs on Effect's Clock and the bounds live in one place).
 *
 * Details: only errors with `isRetryable` are retried, at most `attemptsMax`
 * attempts in all (the first included; default 5, never more than
 * `Limits.modelAttemptsMax`). The wait before retry n is a jittered
 * exponential backoff (`baseMs * 2^(n-1)`, ±20 %) capped at `capMs`; when the
 * provider said when to come back (`retryAfterMs`) the wait is the longer of
 * the two, but never more than `retryAfterCeilingMs` (a provider asking for an
 * hour must not park the agent for an hour: it fails and the run says why).
 * `onRetry(error, delayMs, attempt)` is told before each wait, `attempt` being
 * the attempt that just failed (1 = the first call).
 *
 * Gotcha: progress callbacks of a failed attempt have already fired: a
 * listener that accumulates text must start over on the next attempt (the
 * loop only keeps the turn that succeeds).
 *
 * @example
 *   const model = retrying(AnthropicModel.make({ apiKey, model: "claude-sonnet-4-5" }), { attemptsMax: 4 }, (e, ms) => log(`${e._tag}: retry in ${ms} ms`))
 */
import { Duration, Effect, Schedule } from "effect"
import { Limits } from "../Limits.ts"
import type { ModelShape } from "./Model.ts"
import type { ModelError } from "./ModelError.ts"

export interface RetryPolicy {
  /** Attempts in all, the first included; default 5, clamped to 1..Limits.modelAttemptsMax. */
  readonly attemptsMax?: number
  /** First backoff delay; default 1 s. */
  readonly baseMs?: number
  /** Longest backoff delay (after jitter); default 30 s. */
  readonly capMs?: number
}

export const defaults = { attemptsMax: 5, baseMs: 1000, capMs: 30_000 } as const

/** No wait, however long the provider's retry-after, exceeds this. */
export const retryAfterCeilingMs = 60_000

export type OnRetry = (error: ModelError, delayMs: number, attempt: number) => void

export const retrying = (model: ModelShape, policy: RetryPolicy = {}, onRetry?: OnRetry): ModelShape => {
  const schedule = backoff(policy, onRetry)
  return {
    name: model.name,
    turn: (request, onProgress) => Effect.retry(model.turn(request, onProgress), schedule)
  }
}

/** The schedule itself, exported for tests and for callers that retry something else the same way. */
export const backoff = (policy: RetryPolicy = {}, onRetry?: OnRetry): Schedule.Schedule<Duration.Duration, ModelError> => {
  const attemptsMax = clamp(Math.floor(policy.attemptsMax ?? defaults.attemptsMax), 1, Limits.modelAttemptsMax)
  const baseMs = Math.max(1, policy.baseMs ?? defaults.baseMs)
  const capMs = clamp(policy.capMs ?? defaults.capMs, baseMs, retryAfterCeilingMs)
  const exponential: Schedule.Schedule<Duration.Duration, ModelError> = Schedule.exponential(Duration.millis(baseMs))
  return exponential.pipe(
    Schedule.jittered,
    // `while` before `modifyDelay`: onRetry hears only of retries that happen.
    Schedule.while(({ input, attempt }) => input.isRetryable && attempt < attemptsMax),
    Schedule.modifyDelay(({ input, attempt, duration }) =>
      Effect.sync(() => {
        const delayMs = Math.round(Math.min(retryAfterCeilingMs, Math.max(retryAfterMs(input), Math.min(capMs, Duration.toMillis(duration)))))
        onRetry?.(input, delayMs, attempt)
        return Duration.millis(delayMs)
      })
    )
  )
}

const retryAfterMs = (error: ModelError): number => ("retryAfterMs" in error && error.retryAfterMs !== undefined ? error.retryAfterMs : 0)

const clamp = (n: number, low: number, high: number): number => Math.min(high, Math.max(low, n))
