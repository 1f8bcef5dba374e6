/**
 * The executor: runs tool calls as transactions (design §2, §5).
 *
 * For every attempt: journal `tool.call.started {callId, key, attempt}` and
 * wait until it is durable (WalInv), only then run the tool's Effect with its
 * timeout and an AbortSignal, then journal exactly one outcome (PairingInv).
 * Retries follow the tool's policy with a jittered, capped exponential
 * `Schedule`, only for retryable failures and only for readOnly/idempotent
 * tools; every attempt carries the same idempotency key (KeyStableInv).
 *
 * A tool's failure, timeout, defect, bad input or bad output is an outcome
 * the model sees, never an exception. Interrupting a run (cancel, Ctrl-C)
 * journals `tool.call.cancelled` for every call in flight before the
 * interruption completes. The executor fails only when the journal does
 * (`WriteError`): then the session is fail-stop and recovery takes over.
 *
 * @example
 *   const { calls } = yield* session.propose("assistant", { text: "…" }, [{ callId: "c1", tool: "add", input: { a: 1, b: 2 } }])
 *   const done = yield* Executor.runCalls(session, Executor.registry([add]), calls.map((c) => c.callId))
 */
import { Cause, Clock, Duration, Effect, Exit, Option, Schedule } from "effect"
import * as Approvals from "../authority/Approvals.ts"
import type { Authority } from "../authority/Authority.ts"
import type { ToolCallEvent } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { canonicalJson } from "../internal/canonicalJson.ts"
import { Limits } from "../Limits.ts"
import type { Session, WriteError } from "../session/Session.ts"
import type { ToolCallRefused } from "../session/SessionError.ts"
import { Trace } from "../trace/Trace.ts"
import * as Tool from "./Tool.ts"
import type { Call } from "./ToolCalls.ts"

export type ExecutorError = WriteError | ToolCallRefused

/** The tools a session may call, by name, and the authority their calls run under. */
export interface Registry {
  readonly get: (name: string) => Tool.AnyTool | undefined
  readonly authority: Authority
}

/** No tool runs without an authority that covers the call: there is no default (no ambient authority). */
export function registry(tools: ReadonlyArray<Tool.AnyTool>, authority: Authority): Registry {
  const byName = new Map<string, Tool.AnyTool>()
  for (const tool of tools) {
    if (byName.has(tool.name)) throw new Tool.InvalidToolDefinition(`two tools are named ${tool.name}`)
    byName.set(tool.name, tool)
  }
  return { get: (name) => byName.get(name), authority }
}

export interface RunOptions {
  /** Calls running at once (default 8). */
  readonly concurrency?: number
  /** Told when an attempt's `started` record is durable and the tool is about to run (progress for UIs). */
  readonly onStart?: (call: Call, attempt: number, time: number) => void
  /**
   * Runs when a call awaits approval (its request is durable): ask a person and
   * record the decision with `Approvals.approve`/`reject`. Interrupted when the
   * deadline passes first (the call is then expired). Without it, the call
   * waits for a decision from elsewhere until its deadline.
   */
  readonly onApproval?: (call: Call) => Effect.Effect<void, ExecutorError>
}

/** Runs the proposed calls concurrently (bounded); one failing or cancelled call never loses the others' results. */
export const runCalls = (
  session: Session,
  tools: Registry,
  callIds: ReadonlyArray<string>,
  options: RunOptions = {}
): Effect.Effect<ReadonlyArray<Call>, ExecutorError> =>
  Effect.forEach(callIds, (callId) => runCall(session, tools, callId, options), { concurrency: options.concurrency ?? 8 })

/** Runs one proposed call to its outcome. */
export const runCall = (session: Session, tools: Registry, callId: string, options: RunOptions = {}): Effect.Effect<Call, ExecutorError> =>
  Effect.gen(function* () {
    const call = current(session, callId)
    assert(call.state === "proposed", "PairingInv", `runCall(${callId}) in state ${call.state}`)
    const tool = tools.get(call.tool)
    if (tool === undefined) return yield* reject(session, call, "unknownTool", `there is no tool named ${JSON.stringify(call.tool)}`)
    const input = yield* Effect.exit(Tool.decodeInput(tool, call.input))
    if (Exit.isFailure(input)) {
      const error = Cause.findErrorOption(input.cause)
      return yield* reject(session, call, "invalidInput", error._tag === "Some" ? error.value.message : "invalid input")
    }
    // The authority check, between proposed and started (AuthorityInv): on the decoded arguments.
    const now = yield* Clock.currentTimeMillis
    const verdict = yield* tools.authority.check({ callId, tool: tool.name, input: input.value }, { now, usesOf: (id) => session.calls().usesOf(id) })
    if (!verdict.granted) {
      yield* session.recordCall((time) => ({ _tag: "tool.call.denied", callId, reason: verdict.reason, message: verdict.message, time }))
      return current(session, callId)
    }
    const authorized: ToolCallEvent = {
      _tag: "tool.call.authorized",
      callId,
      capability: verdict.capability,
      blocks: [...verdict.blocks],
      approvalRequired: verdict.approval !== undefined,
      time: 0
    }
    if (verdict.approval === undefined) return yield* attempts(session, tool, call, input.value, options, [authorized])
    const demand = verdict.approval
    const argsHash = yield* Effect.promise(() => hashArguments(call.input))
    const timeoutMs = Math.max(1, Math.min(demand.timeoutMs, Limits.approvalTimeoutMsMax))
    yield* session.recordCall((time) => [
      { ...authorized, time },
      { _tag: "tool.call.awaitingApproval", callId, argsHash, approvers: [...demand.approvers], deadline: time + timeoutMs, time }
    ])
    return yield* continueApproval(session, tools, callId, options)
  })

/**
 * Goes on with a call awaiting approval (also after a restart: the deadline
 * is the journal's): asks through `onApproval` while waiting for a decision
 * or the deadline, then starts the call if it was approved.
 */
export const continueApproval = (session: Session, tools: Registry, callId: string, options: RunOptions = {}): Effect.Effect<Call, ExecutorError> =>
  Effect.gen(function* () {
    const call = current(session, callId)
    if (call.state === "awaitingApproval") {
      // Asking a person ends with a decision (theirs or another's); the deadline interrupts it and expires the call.
      if (options.onApproval !== undefined) yield* Effect.raceFirst(options.onApproval(call), Approvals.untilDeadline(session, callId))
      yield* Approvals.awaitDecision(session, callId)
    }
    return yield* startApproved(session, tools, callId, options)
  })

/** Starts a call that is approved (or authorized) and has not started: e.g. one left so by a crash. */
export const startApproved = (session: Session, tools: Registry, callId: string, options: RunOptions = {}): Effect.Effect<Call, ExecutorError> =>
  Effect.gen(function* () {
    const call = current(session, callId)
    if (call.state !== "approved" && call.state !== "authorized") return call
    const tool = tools.get(call.tool)
    const input = tool === undefined ? undefined : yield* Effect.option(Tool.decodeInput(tool, call.input))
    if (tool === undefined || input === undefined || input._tag === "None") {
      return yield* reject(session, call, "error", `not run: the tool ${call.tool} is no longer available here`)
    }
    return yield* attempts(session, tool, call, input.value, options)
  })

/** The hash an approval binds to: SHA-256 of the arguments' canonical JSON (keys sorted). */
export async function hashArguments(input: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(input))
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`
}

/**
 * Goes on with a call whose last attempt failed retryably and whose next
 * attempt never started (the process stopped during the backoff): the next
 * attempt, same key, within the tool's policy.
 */
export const retryCall = (session: Session, tools: Registry, callId: string, options: RunOptions = {}): Effect.Effect<Call, ExecutorError> =>
  Effect.gen(function* () {
    const call = current(session, callId)
    assert(call.state === "failed" && call.outcome?.kind === "failed" && call.outcome.retryable, "PairingInv", `retryCall(${callId}) in state ${call.state}`)
    const tool = tools.get(call.tool)
    const input = tool === undefined ? undefined : yield* Effect.option(Tool.decodeInput(tool, call.input))
    // The journal said another attempt follows; a registry without the tool cannot keep that promise: the model sees the last failure.
    if (tool === undefined || input === undefined || input._tag === "None") return call
    return yield* attempts(session, tool, call, input.value, options)
  })

/**
 * Resolves a call found in doubt after a crash (design §3): readOnly and
 * idempotent tools run again with the same key; compensatable and unsafe
 * tools are reconciled when the tool can ask the world, and otherwise closed
 * as failed with reason "unknown". An unsafe tool is never re-run.
 */
export const resolveInDoubt = (session: Session, tools: Registry, callId: string, options: RunOptions = {}): Effect.Effect<Call, ExecutorError> =>
  Effect.gen(function* () {
    const call = current(session, callId)
    assert(call.state === "inDoubt", "PairingInv", `resolveInDoubt(${callId}) in state ${call.state}`)
    const tool = tools.get(call.tool)
    const input = tool === undefined ? undefined : yield* Effect.option(Tool.decodeInput(tool, call.input))
    if (tool === undefined || input === undefined || input._tag === "None") {
      return yield* closeUnknown(session, call, `outcome unknown: the process stopped during the call, and its tool ${call.tool} cannot be run again here`)
    }
    if (tool.semantics === "readOnly" || tool.semantics === "idempotent") {
      // Rerun counts against the tool's attempts: a call that kills the process every time ends closed, not looping.
      if (call.attempt >= tool.retry.attemptsMax) {
        return yield* closeUnknown(session, call, `outcome unknown: the process stopped during attempt ${call.attempt}, the last one allowed`)
      }
      return yield* attempts(session, tool, call, input.value, options)
    }
    if (tool.reconcile === undefined) {
      return yield* closeUnknown(
        session,
        call,
        `outcome unknown: the process stopped during this ${tool.semantics} call; it was not run again (it could act twice) and the tool cannot reconcile`
      )
    }
    const reconcile = tool.reconcile
    const reconciled = yield* Effect.suspend(() => reconcile(input.value, context(session, call, call.attempt, new AbortController().signal))).pipe(
      Effect.timeout(Duration.millis(tool.timeoutMs)),
      Effect.exit
    )
    if (Exit.isFailure(reconciled))
      return yield* closeUnknown(session, call, `outcome unknown: reconcile failed: ${Cause.pretty(reconciled.cause).slice(0, 500)}`)
    if (!reconciled.value.executed) {
      yield* session.recordCall((time) => ({
        _tag: "tool.call.failed",
        callId,
        attempt: call.attempt,
        reason: "error",
        message: "the call did not take effect (reconciled after a crash)",
        retryable: false,
        time
      }))
      return current(session, callId)
    }
    const output = yield* Effect.exit(Tool.encodeOutput(tool, reconciled.value.output))
    yield* session.recordCall((time) =>
      Exit.isSuccess(output)
        ? { _tag: "tool.call.succeeded", callId, attempt: call.attempt, output: output.value, reconciled: true, time }
        : { _tag: "tool.call.failed", callId, attempt: call.attempt, reason: "invalidOutput", message: outputMessage(output.cause), retryable: false, time }
    )
    return current(session, callId)
  })

// ------------------------------------------------------------------------------------------------

/** Signals Effect.retry that an attempt failed in a way the tool's policy retries. */
class RetryableFailure {
  readonly _tag = "RetryableFailure"
}

export const current = (session: Session, callId: string): Call => {
  const call = session.calls().get(callId)
  assert(call !== undefined, "PairingInv", `no call ${callId}`)
  return call
}

export const context = (session: Session, call: Call, attempt: number, signal: AbortSignal): Tool.ToolContext => ({
  callId: call.callId,
  idempotencyKey: Tool.idempotencyKey(session.id, call.callId),
  attempt,
  signal
})

/** Jittered exponential backoff, capped; the number of retries is bounded by `times` at the call site. */
const backoff = (policy: Tool.RetryPolicy) =>
  Schedule.exponential(Duration.millis(Math.max(1, policy.baseMs))).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(policy.capMs))))
  )

/**
 * Attempts after `call.attempt`, as many as the tool's retry policy allows in
 * all, each through the WAL. A call in doubt first has its lost attempt
 * closed (failed, "unknown", retryable) in the same batch as the next
 * `started` (spec: Rerun).
 */
function attempts<I, O>(
  session: Session,
  tool: Tool.Tool<I, O>,
  call: Call,
  input: I,
  options: RunOptions,
  first: ReadonlyArray<ToolCallEvent> = []
): Effect.Effect<Call, ExecutorError> {
  const allowed = tool.semantics === "readOnly" || tool.semantics === "idempotent" ? tool.retry.attemptsMax : 1
  let attempt = call.attempt
  const once = Effect.suspend(() => {
    const lead: ReadonlyArray<ToolCallEvent> = attempt !== call.attempt ? [] : call.state === "inDoubt" ? [lostAttempt(call.callId, attempt, 0)] : first
    attempt += 1
    return attemptOnce(session, tool, call, input, attempt, lead, attempt < allowed, options)
  })
  return once.pipe(
    Effect.retry({ schedule: backoff(tool.retry), times: Math.max(0, allowed - call.attempt - 1), while: (e) => e instanceof RetryableFailure }),
    Effect.catchIf(
      (e): e is RetryableFailure => e instanceof RetryableFailure,
      () => Effect.succeed(current(session, call.callId))
    ),
    // Interrupted during a backoff: the journal promised another attempt; it is closed as cancelled before it runs.
    Effect.onInterrupt(() => abandonRetry(session, call.callId).pipe(Effect.ignore))
  )
}

/**
 * Closes a call whose last attempt failed retryably and whose next attempt
 * will not run (cancelled during the backoff): the next attempt is journaled
 * started and cancelled in one batch, so no effect runs and the call ends
 * with an outcome the model sees. A call in any other state is left alone.
 */
export const abandonRetry = (session: Session, callId: string): Effect.Effect<Call, ExecutorError> =>
  Effect.suspend(() => {
    const call = current(session, callId)
    if (!(call.state === "failed" && call.outcome?.kind === "failed" && call.outcome.retryable)) return Effect.succeed(call)
    const attempt = call.attempt + 1
    return session
      .recordCall((time) => [
        { _tag: "tool.call.started", callId, key: call.key, attempt, time },
        { _tag: "tool.call.cancelled", callId, attempt, time }
      ])
      .pipe(Effect.map(() => current(session, callId)))
  })

/** Closes an attempt lost in a crash so that the next may start (its effect may or may not have happened). */
const lostAttempt = (callId: string, attempt: number, time: number): ToolCallEvent => ({
  _tag: "tool.call.failed",
  callId,
  attempt,
  reason: "unknown",
  message: "the process stopped during this attempt; it is run again with the same key",
  retryable: true,
  time
})

/**
 * One attempt: `started` durable, then the effect, then one outcome. The
 * journal writes are uninterruptible, so an interruption between them still
 * ends with `tool.call.cancelled` on disk. A failure is journaled retryable
 * only if another attempt may follow (`more`): the journal then says truly
 * whether the call is finished, which is what lets an agent run go on.
 */
function attemptOnce<I, O>(
  session: Session,
  tool: Tool.Tool<I, O>,
  call: Call,
  input: I,
  attempt: number,
  lead: ReadonlyArray<ToolCallEvent>,
  more: boolean,
  options: RunOptions
): Effect.Effect<Call, ExecutorError | RetryableFailure> {
  const callId = call.callId
  const key = Tool.idempotencyKey(session.id, callId)
  return Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      yield* session.recordCall((time) => [...lead.map((e) => ({ ...e, time })), { _tag: "tool.call.started", callId, key, attempt, time }])
      const controller = new AbortController()
      // The external effect may happen from here on (spec: Execute).
      const tracer = yield* Effect.serviceOption(Trace)
      if (Option.isSome(tracer)) tracer.value.emit({ spec: "ToolCall", action: "Execute", args: { call: callId, attempt } })
      if (options.onStart !== undefined) options.onStart(current(session, callId), attempt, yield* Clock.currentTimeMillis)
      // suspend: a tool that throws instead of failing is a defect of its own run, not of the executor.
      const run = Effect.suspend(() => tool.run(input, context(session, call, attempt, controller.signal))).pipe(
        Effect.timeout(Duration.millis(tool.timeoutMs)),
        Effect.onInterrupt(() => Effect.sync(() => controller.abort()))
      )
      const exit = yield* Effect.exit(restore(run))
      const outcome = yield* classify(tool, exit, more)
      yield* session.recordCall((time) => outcome(callId, attempt, time))
      const after = current(session, callId)
      if (after.state === "failed" && after.outcome?.kind === "failed" && after.outcome.retryable) return yield* Effect.fail(new RetryableFailure())
      return after
    })
  )
}

type OutcomeEvent = (callId: string, attempt: number, time: number) => ToolCallEvent

/** Turns the attempt's exit into the one outcome event to journal. */
function classify<I, O>(tool: Tool.Tool<I, O>, exit: Exit.Exit<O, Tool.ToolFailure | Cause.TimeoutError>, more: boolean): Effect.Effect<OutcomeEvent> {
  return Effect.gen(function* () {
    if (Exit.isSuccess(exit)) {
      const output = yield* Effect.exit(Tool.encodeOutput(tool, exit.value))
      return Exit.isSuccess(output)
        ? (callId, attempt, time) => ({ _tag: "tool.call.succeeded", callId, attempt, output: output.value, reconciled: false, time })
        : (callId, attempt, time) => ({
            _tag: "tool.call.failed",
            callId,
            attempt,
            reason: "invalidOutput",
            message: outputMessage(output.cause),
            retryable: false,
            time
          })
    }
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some") {
      const e = error.value
      if (Cause.isTimeoutError(e)) return (callId, attempt, time) => ({ _tag: "tool.call.timedOut", callId, attempt, time })
      return (callId, attempt, time) => ({
        _tag: "tool.call.failed",
        callId,
        attempt,
        reason: "error",
        message: e.message,
        retryable: e.retryable && more,
        time
      })
    }
    if (Cause.hasDies(exit.cause)) {
      const message = `the tool failed unexpectedly: ${Cause.pretty(exit.cause).slice(0, 1000)}`
      return (callId, attempt, time) => ({ _tag: "tool.call.failed", callId, attempt, reason: "defect", message, retryable: false, time })
    }
    return (callId, attempt, time) => ({ _tag: "tool.call.cancelled", callId, attempt, time })
  })
}

function outputMessage(cause: Cause.Cause<Tool.ToolOutputInvalid>): string {
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" ? error.value.message : "the output does not fit the tool's output Schema"
}

export function reject(session: Session, call: Call, reason: "unknownTool" | "invalidInput" | "error", message: string): Effect.Effect<Call, ExecutorError> {
  return session
    .recordCall((time) => ({ _tag: "tool.call.failed", callId: call.callId, attempt: 0, reason, message, retryable: false, time }))
    .pipe(Effect.map(() => current(session, call.callId)))
}

function closeUnknown(session: Session, call: Call, message: string): Effect.Effect<Call, ExecutorError> {
  return session
    .recordCall((time) => ({ _tag: "tool.call.failed", callId: call.callId, attempt: call.attempt, reason: "unknown", message, retryable: false, time }))
    .pipe(Effect.map(() => current(session, call.callId)))
}
