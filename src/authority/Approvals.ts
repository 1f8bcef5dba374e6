/**
 * Approval gates: a call whose capability demands a person's yes waits in
 * `awaitingApproval` until an allowed approver decides, or its deadline
 * passes — and then it is `expired`, a rejection (silence means no).
 *
 * When to use: `approve(session, callId, by)` / `reject(session, callId, by,
 * reason)` from an API or a terminal; the executor waits with `awaitDecision`.
 *
 * Details: the request and its deadline are journaled (`tool.call.awaitingApproval`),
 * so a restart honours the remaining time. A decision binds to the arguments'
 * hash the approver saw; it counts only if the call still awaits one, the
 * approver is allowed, and the Clock is before the deadline. Every other
 * decision is journaled as `tool.call.decisionIgnored` (who, when, what, why)
 * and answered with a typed error. Two decisions racing (approve vs expire at
 * the same instant, two approvers) are ordered by the session's single
 * writer: the call's machine accepts the first, refuses the second, and the
 * second becomes an ignored decision — exactly one wins, and it is journaled.
 *
 * Gotcha: decisions must go through the session's writer process (the one
 * holding the lease); another process opens the session read-only.
 */
import { Clock, Deferred, Duration, Effect, Schema } from "effect"
import type { ToolCallEvent } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { Limits } from "../Limits.ts"
import type { Session, WriteError } from "../session/Session.ts"
import type { ToolCallRefused } from "../session/SessionError.ts"
import type { Call } from "../toolcall/ToolCalls.ts"

/** The call does not exist in this session. Nothing is journaled (there is no call to attach it to). */
export class ApprovalUnknownCall extends Schema.TaggedError<ApprovalUnknownCall>()("ApprovalUnknownCall", { callId: Schema.String }) {
  override get message(): string {
    return `there is no call ${this.callId} in this session`
  }
}

/** The decision does not count (late, second, not an approver, other arguments, nothing asked); it is journaled as ignored. */
export class ApprovalIgnored extends Schema.TaggedError<ApprovalIgnored>()("ApprovalIgnored", {
  callId: Schema.String,
  by: Schema.String,
  why: Schema.Literals(["alreadyDecided", "notRequested", "notAnApprover", "argumentsChanged", "expired"]),
  message: Schema.String
}) {}

/** The states a call cannot be in once an approval of it counted (it is approved, or has moved on from there). */
const notStartedAfterApproval: ReadonlySet<string> = new Set(["proposed", "authorized", "denied", "awaitingApproval", "rejected", "expired"])

export type ApprovalError = ApprovalUnknownCall | ApprovalIgnored | WriteError | ToolCallRefused

/** The principal of the runtime's own decisions (withdrawals); never an approver. */
export const runtimePrincipal = "runtime"

// The executors waiting for a decision, per session and call (in-process: the writer's).
const waiters = new WeakMap<Session, Map<string, Deferred.Deferred<void>>>()

const waiter = (session: Session, callId: string): Deferred.Deferred<void> => {
  let calls = waiters.get(session)
  if (calls === undefined) {
    calls = new Map()
    waiters.set(session, calls)
  }
  let deferred = calls.get(callId)
  if (deferred === undefined) {
    deferred = Deferred.makeUnsafe<void>()
    calls.set(callId, deferred)
  }
  return deferred
}

const wake = (session: Session, callId: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const deferred = waiters.get(session)?.get(callId)
    waiters.get(session)?.delete(callId)
    return deferred === undefined ? Effect.void : Deferred.succeed(deferred, undefined).pipe(Effect.asVoid)
  })

/** Approves call `callId` for `by`, if it counts; `argsHash` (what the approver was shown) must match when given. */
export const approve = (session: Session, callId: string, by: string, options: { readonly argsHash?: string } = {}): Effect.Effect<Call, ApprovalError> =>
  decide(session, callId, by, "approve", options.argsHash, "")

/** Rejects call `callId` for `by` with `reason`, if it counts. */
export const reject = (session: Session, callId: string, by: string, reason: string): Effect.Effect<Call, ApprovalError> =>
  decide(session, callId, by, "reject", undefined, reason)

function decide(
  session: Session,
  callId: string,
  by: string,
  decision: "approve" | "reject",
  argsHash: string | undefined,
  reason: string
): Effect.Effect<Call, ApprovalError> {
  return Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const call = session.calls().get(callId)
    if (call === undefined) return yield* new ApprovalUnknownCall({ callId })
    const ignored =
      (message: string) =>
      (time: number): ToolCallEvent => ({ _tag: "tool.call.decisionIgnored", callId, by, decision, why: message, time })
    const ignore = (why: ApprovalIgnored["why"], message: string, also: ReadonlyArray<ToolCallEvent> = []) =>
      session
        .recordCall((time) => [...also.map((e) => ({ ...e, time })), ignored(message)(time)])
        .pipe(
          // Raced: the call moved on between the look above and this write (its expiry, another decision, its start).
          // The decision is ignored all the same: journaled alone where the call still takes the record (the ToolCall
          // machine takes none once the call started), and the caller is told.
          Effect.catchTag("ToolCallRefused", () =>
            also.length === 0
              ? Effect.void
              : session.recordCall(ignored(message)).pipe(
                  Effect.asVoid,
                  Effect.catchTag("ToolCallRefused", () => Effect.void)
                )
          ),
          Effect.andThen(wake(session, callId)),
          Effect.andThen(new ApprovalIgnored({ callId, by, why, message }))
        )
    if (call.state === "proposed" || call.state === "authorized") {
      // Nothing was asked: there is no request to attach an ignored decision to.
      return yield* new ApprovalIgnored({ callId, by, why: "notRequested", message: `call ${callId} is ${call.state}: no approval was requested` })
    }
    if (call.state !== "awaitingApproval") {
      const message = `call ${callId} was already decided (${call.state}); this decision does not count`
      // Every decision after a request is an audit record, whatever became of the call since (started, finished…).
      if (call.approval !== undefined && call.state !== "denied") return yield* ignore("alreadyDecided", message)
      return yield* new ApprovalIgnored({ callId, by, why: "alreadyDecided", message })
    }
    const request = call.approval
    assert(request !== undefined, "ExpiryInv", `call ${callId} awaits approval without a request`)
    // "runtime" is never a person: its only decision is a withdrawal (`withdraw`), which the spec tells apart by that name.
    if (by === runtimePrincipal || !request.approvers.includes(by))
      return yield* ignore("notAnApprover", `${by} may not decide call ${callId} (approvers: ${request.approvers.join(", ")})`)
    if (argsHash !== undefined && argsHash !== request.argsHash) {
      return yield* ignore(
        "argumentsChanged",
        `the decision names arguments ${argsHash}, the call has ${request.argsHash}: a changed call needs a new approval`
      )
    }
    if (now >= request.deadline) {
      const expired: ToolCallEvent = { _tag: "tool.call.expired", callId, deadline: request.deadline, time: now }
      return yield* ignore("expired", `the deadline of call ${callId} passed ${now - request.deadline} ms before this decision`, [expired])
    }
    // The record's time is the commit's (the Clock may have moved since `now`): at or past the deadline the
    // decision does not count, whether a yes or a no (ExpiryInv; the machine guards only the yes): the
    // expiry is journaled with it, as above.
    const lateMessage = `the deadline of call ${callId} passed while this decision was recorded`
    let tooLate = false
    const counted = yield* Effect.exit(
      session.recordCall((time): ReadonlyArray<ToolCallEvent> => {
        tooLate = time >= request.deadline
        if (tooLate) return [{ _tag: "tool.call.expired", callId, deadline: request.deadline, time }, ignored(lateMessage)(time)]
        return [
          decision === "approve"
            ? { _tag: "tool.call.approved", callId, by, argsHash: request.argsHash, time }
            : { _tag: "tool.call.rejected", callId, by, reason, time }
        ]
      })
    )
    if (counted._tag === "Success" && tooLate) {
      yield* wake(session, callId)
      return yield* new ApprovalIgnored({ callId, by, why: "expired", message: lateMessage })
    }
    if (counted._tag === "Failure") {
      // Raced by another decision or the deadline (the machine refused this one): it is journaled as ignored.
      const after = session.calls().get(callId)
      if (after !== undefined && after.state !== "awaitingApproval") return yield* ignore("alreadyDecided", `call ${callId} was decided first (${after.state})`)
      const late = yield* Clock.currentTimeMillis
      if (late >= request.deadline) {
        const expired: ToolCallEvent = { _tag: "tool.call.expired", callId, deadline: request.deadline, time: late }
        return yield* ignore("expired", lateMessage, [expired])
      }
      return yield* Effect.failCause(counted.cause)
    }
    // This decision counted. The executor waiting for it may already have started an approved call (it
    // wakes on any decision or its deadline, and runs as soon as the record is folded): started or later.
    const after = session.calls().get(callId)
    assert(
      after !== undefined && (decision === "approve" ? !notStartedAfterApproval.has(after.state) : after.state === "rejected"),
      "OneDecisionInv",
      `call ${callId} is ${after?.state} after a counted ${decision}`
    )
    yield* wake(session, callId)
    return after
  })
}

/**
 * Waits until call `callId` (awaiting approval) is decided, or its deadline
 * passes: then journals `expired` (unless a decision won the race). Returns
 * the call in its decided state.
 */
export const awaitDecision = (session: Session, callId: string): Effect.Effect<Call, WriteError | ToolCallRefused> =>
  Effect.gen(function* () {
    const call = session.calls().get(callId)
    assert(call !== undefined && call.approval !== undefined, "ExpiryInv", `awaitDecision(${callId}) without a request`)
    // Woken by every decision, counted or not (an ignored one leaves the call waiting): wait again until it is decided or due.
    // The waiter is registered before the state is read: a decision folded after the read wakes it (no lost wake-up).
    for (let wakes = 0; ; wakes++) {
      const woken = waiter(session, callId)
      if (session.calls().get(callId)?.state !== "awaitingApproval") break
      assert(wakes <= Limits.decisionsPerCallMax, "ExpiryInv", `call ${callId} was woken ${wakes} times without a decision`)
      const now = yield* Clock.currentTimeMillis
      if (now >= call.approval.deadline) break
      yield* Effect.raceFirst(Deferred.await(woken), untilDeadline(session, callId))
    }
    yield* expireIfDue(session, callId)
    const after = session.calls().get(callId)
    assert(after !== undefined && after.state !== "awaitingApproval", "ExpiryInv", `call ${callId} still awaits approval after its wait`)
    return after
  })

/** Sleeps (Clock) until the deadline of call `callId`'s approval request: the remaining time, also after a restart. */
export const untilDeadline = (session: Session, callId: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = session.calls().get(callId)?.approval?.deadline ?? 0
    const now = yield* Clock.currentTimeMillis
    yield* Effect.sleep(Duration.millis(Math.max(0, deadline - now)))
  })

/**
 * Withdraws the request of a call still awaiting approval (its run was
 * cancelled or ran out of budget): journaled as rejected by "runtime". Not a
 * person's decision, so no approver check; a decision that came first wins.
 */
export const withdraw = (session: Session, callId: string, reason: string): Effect.Effect<void, WriteError | ToolCallRefused> =>
  Effect.gen(function* () {
    if (session.calls().get(callId)?.state !== "awaitingApproval") return
    yield* closeUnlessDecided(session, callId, (time) => ({ _tag: "tool.call.rejected", callId, by: runtimePrincipal, reason, time }))
  })

/**
 * Journals the runtime's closing of a request (a withdrawal, an expiry) and
 * wakes the waiters; if a decision came first the machine refuses the record,
 * and that is no error: the decision stands.
 */
const closeUnlessDecided = (session: Session, callId: string, build: (time: number) => ToolCallEvent): Effect.Effect<void, WriteError | ToolCallRefused> =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(session.recordCall(build))
    if (exit._tag === "Failure" && session.calls().get(callId)?.state === "awaitingApproval") return yield* Effect.failCause(exit.cause)
    yield* wake(session, callId)
  })

/** Journals `expired` for a call still awaiting approval at or after its deadline; a decision that came first wins. */
export const expireIfDue = (session: Session, callId: string): Effect.Effect<void, WriteError | ToolCallRefused> =>
  Effect.gen(function* () {
    const call = session.calls().get(callId)
    if (call?.state !== "awaitingApproval" || call.approval === undefined) return
    const now = yield* Clock.currentTimeMillis
    if (now < call.approval.deadline) return
    const deadline = call.approval.deadline
    yield* closeUnlessDecided(session, callId, (time) => ({ _tag: "tool.call.expired", callId, deadline, time }))
  })
