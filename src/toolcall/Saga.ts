/**
 * Atomic groups of tool calls (sagas): the calls an entry proposed with
 * `{ atomic: true }` run one after another; if one does not succeed, the
 * ones that did are compensated in reverse order, each compensation journaled
 * (`tool.call.compensated`), and the calls not yet run are rejected without
 * running. Everything needed to finish a saga is in the journal, so
 * `continueSaga` after a crash picks up where the process stopped.
 *
 * @example
 *   const { entry } = yield* session.propose("assistant", turn, [book, charge], { atomic: true })
 *   const committed = yield* Saga.runAtomic(session, tools, entry.id)
 */
import { Cause, Duration, Effect, Exit, Result, Schema } from "effect"
import { assert } from "../internal/assert.ts"
import type { Session } from "../session/Session.ts"
import { context, current, type ExecutorError, type Registry, reject, runCall } from "./Executor.ts"
import type { Call } from "./ToolCalls.ts"

/** A compensation that failed: the saga stays uncompensated and is retried by the next `continueSaga`. */
export class CompensationFailed extends Schema.TaggedError<CompensationFailed>()("CompensationFailed", {
  callId: Schema.String,
  message: Schema.String
}) {}

/** Runs the atomic group proposed by `entryId`; true when every call succeeded, false when it was rolled back. */
export const runAtomic = (session: Session, tools: Registry, entryId: number): Effect.Effect<boolean, ExecutorError | CompensationFailed> =>
  continueSaga(session, tools, entryId)

/**
 * Drives the group to its end from whatever state the journal holds: runs
 * the next proposed call while all before it succeeded; once one did not,
 * rejects the rest and compensates the succeeded ones, newest first.
 * Idempotent: calling it on a finished group changes nothing.
 */
export const continueSaga = (session: Session, tools: Registry, entryId: number): Effect.Effect<boolean, ExecutorError | CompensationFailed> =>
  Effect.gen(function* () {
    const calls = session.calls().ofEntry(entryId)
    assert(calls.length > 0 && calls.every((c) => c.atomic), "PairingInv", `entry ${entryId} has no atomic group`)
    let failed = calls.some((c) => isUnsuccessful(c))
    for (const call of calls) {
      const now = current(session, call.callId)
      if (now.state !== "proposed") continue
      if (failed) {
        yield* reject(session, now, "error", "not run: an earlier call of its atomic group did not succeed")
        continue
      }
      const done = yield* runCall(session, tools, now.callId)
      if (isUnsuccessful(done)) failed = true
    }
    if (!failed) return true
    // Only compensatable tools are undone (CompensationInv); a read-only step has nothing to undo.
    for (const call of [...session.calls().ofEntry(entryId)].reverse()) {
      if (call.state === "succeeded" && tools.get(call.tool)?.semantics === "compensatable") yield* compensate(session, tools, call)
    }
    return false
  })

const isUnsuccessful = (call: Call): boolean =>
  call.state === "failed" || call.state === "cancelled" || call.state === "timedOut" || call.state === "compensated"

/** Undoes one succeeded call with its tool's `compensate`, then journals `tool.call.compensated`. */
function compensate(session: Session, tools: Registry, call: Call): Effect.Effect<void, ExecutorError | CompensationFailed> {
  return Effect.gen(function* () {
    const tool = tools.get(call.tool)
    const fail = (message: string) => Effect.fail(new CompensationFailed({ callId: call.callId, message }))
    if (tool?.compensate === undefined) return yield* fail(`tool ${call.tool} cannot compensate`)
    if (call.outcome?.kind !== "succeeded") return yield* fail("no output to compensate")
    const input = Schema.decodeUnknownResult(Schema.toCodecJson(tool.input))(call.input)
    const output = Schema.decodeUnknownResult(Schema.toCodecJson(tool.output))(call.outcome.output)
    if (Result.isFailure(input) || Result.isFailure(output)) return yield* fail("the journaled input or output no longer fits the tool's Schemas")
    const undoCall = tool.compensate
    // suspend + exit: a compensation that throws or dies is a failed compensation, retried by the next recovery.
    const undo = yield* Effect.suspend(() => undoCall(input.success, output.success, context(session, call, call.attempt, new AbortController().signal))).pipe(
      Effect.timeout(Duration.millis(tool.timeoutMs)),
      Effect.exit
    )
    if (Exit.isFailure(undo)) return yield* fail(Cause.pretty(undo.cause).slice(0, 1000))
    yield* session.recordCall((time) => ({ _tag: "tool.call.compensated", callId: call.callId, time }))
  })
}
