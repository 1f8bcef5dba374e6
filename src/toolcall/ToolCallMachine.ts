/**
 * The ToolCall lifecycle (design §3), pure:
 *   proposed → authorized | denied  (Authorize / Deny: the capability check, spec/Authority.tla)
 *   authorized → awaitingApproval → approved | rejected | expired   (RequestApproval, Approve, RejectApproval, Expire)
 *   authorized | approved → started (Start: the one path into started)
 *   started → succeeded | failed | cancelled | timedOut
 *   failed (retryable) → started   (Retry: same key, next attempt)
 *   succeeded → compensated        (saga undo)
 *   started → inDoubt              (found without an outcome after a crash: `recover`)
 *   inDoubt → failed → started     (Rerun: readOnly/idempotent, the lost attempt closed
 *                                   as failed "unknown" retryable, then the next attempt, same key)
 *   inDoubt → succeeded | failed   (Reconcile, or CloseUnknown: failed, reason "unknown")
 *   proposed | authorized | approved → failed   (Reject: attempt 0, nothing ran — bad input, unknown
 *                                   tool, or the run ended before the start)
 *   decisionIgnored                 (IgnoreDecision: an audit record that changes nothing; not in
 *                                   proposed or authorized, where no decision was asked for)
 * Event types are the journal's tags (src/Event.ts), named after the
 * actions of spec/ToolCall.tla; `recover` is not journaled: it is what
 * opening a journal means for a call still `started`.
 * Every transition into `started` comes from `authorized` or `approved`
 * (or, for a retry, from a failure of a started attempt): nothing starts
 * without the authority check (test/toolcall/ToolCallMachine.test.ts
 * enumerates the transitions to prove it).
 */
import { assign, type SnapshotFrom, setup, transition } from "xstate"
import type { ToolCallEvent } from "../Event.ts"

export type ToolCallMachineEvent = ToolCallEvent | { readonly _tag: "recover" }
type MachineEvent = { readonly type: ToolCallMachineEvent["_tag"]; readonly event: ToolCallMachineEvent }

export interface ToolCallContext {
  readonly key: string
  readonly attempt: number
  readonly retryable: boolean
  /** The arguments' hash an approval must name ("" until approval is requested). */
  readonly argsHash: string
  /** When an approval request expires (ms; 0 until requested). */
  readonly deadline: number
  /** The authorizing capability demands an approval: `authorized` may not start (AuthorityInv). */
  readonly approvalRequired: boolean
}

const attemptOf = (e: ToolCallMachineEvent): number => ("attempt" in e ? e.attempt : -1)
const keyOf = (e: ToolCallMachineEvent): string => ("key" in e ? e.key : "")
const hashOf = (e: ToolCallMachineEvent): string => ("argsHash" in e ? e.argsHash : "")
const timeOf = (e: ToolCallMachineEvent): number => ("time" in e ? e.time : 0)
const requiresApproval = (e: ToolCallMachineEvent): boolean => e._tag === "tool.call.authorized" && e.approvalRequired

export const toolCallMachine = setup({
  types: {
    context: {} as ToolCallContext,
    events: {} as MachineEvent
  },
  guards: {
    firstAttempt: ({ event }) => attemptOf(event.event) === 1,
    // KeyStableInv: every attempt of a call carries the key of its first attempt.
    retryableNextAttempt: ({ context, event }) => context.retryable && attemptOf(event.event) === context.attempt + 1 && keyOf(event.event) === context.key,
    currentAttempt: ({ context, event }) => attemptOf(event.event) === context.attempt,
    rejectedBeforeStart: ({ event }) => attemptOf(event.event) === 0,
    // ExpiryInv: an approval counts only for the requested arguments and before the deadline.
    approvalInTime: ({ context, event }) => hashOf(event.event) === context.argsHash && timeOf(event.event) < context.deadline,
    pastDeadline: ({ context, event }) => timeOf(event.event) >= context.deadline,
    // AuthorityInv: a call whose capability demands an approval starts only from approved.
    firstAttemptUnapproved: ({ context, event }) => attemptOf(event.event) === 1 && !context.approvalRequired,
    // A decision after a request is kept for the audit (ignored), whatever became of the call.
    requested: ({ context }) => context.argsHash !== ""
  },
  actions: {
    recordStart: assign(({ event }) => ({ key: keyOf(event.event), attempt: attemptOf(event.event), retryable: false })),
    recordFailure: assign(({ event }) => ({ retryable: event.event._tag === "tool.call.failed" && event.event.retryable })),
    recordAuthorization: assign(({ event }) => ({ approvalRequired: requiresApproval(event.event) })),
    recordRequest: assign(({ event }) => ({
      argsHash: hashOf(event.event),
      deadline: event.event._tag === "tool.call.awaitingApproval" ? event.event.deadline : 0
    }))
  }
}).createMachine({
  id: "toolCall",
  // A constant context: XState's `transition` re-evaluates it for every step, so it must be cheap and need no input.
  context: { key: "", attempt: 0, retryable: false, argsHash: "", deadline: 0, approvalRequired: false },
  initial: "proposed",
  states: {
    proposed: {
      on: {
        "tool.call.authorized": { target: "authorized", actions: "recordAuthorization" },
        "tool.call.denied": { target: "denied" },
        "tool.call.failed": { target: "failed", guard: "rejectedBeforeStart" }
      }
    },
    authorized: {
      on: {
        "tool.call.started": { target: "started", guard: "firstAttemptUnapproved", actions: "recordStart" },
        "tool.call.awaitingApproval": { target: "awaitingApproval", actions: "recordRequest" },
        "tool.call.failed": { target: "failed", guard: "rejectedBeforeStart" }
      }
    },
    awaitingApproval: {
      on: {
        "tool.call.approved": { target: "approved", guard: "approvalInTime" },
        "tool.call.rejected": { target: "rejected" },
        "tool.call.expired": { target: "expired", guard: "pastDeadline" },
        "tool.call.decisionIgnored": { target: "awaitingApproval" }
      }
    },
    approved: {
      on: {
        "tool.call.started": { target: "started", guard: "firstAttempt", actions: "recordStart" },
        "tool.call.failed": { target: "failed", guard: "rejectedBeforeStart" },
        "tool.call.decisionIgnored": { target: "approved" }
      }
    },
    denied: {},
    rejected: { on: { "tool.call.decisionIgnored": { target: "rejected" } } },
    expired: { on: { "tool.call.decisionIgnored": { target: "expired" } } },
    started: {
      on: {
        "tool.call.succeeded": { target: "succeeded", guard: "currentAttempt" },
        "tool.call.failed": { target: "failed", guard: "currentAttempt", actions: "recordFailure" },
        "tool.call.cancelled": { target: "cancelled", guard: "currentAttempt" },
        "tool.call.timedOut": { target: "timedOut", guard: "currentAttempt" },
        recover: { target: "inDoubt" },
        "tool.call.decisionIgnored": { target: "started", guard: "requested" }
      }
    },
    inDoubt: {
      on: {
        "tool.call.succeeded": { target: "succeeded", guard: "currentAttempt" },
        // Reconcile / CloseUnknown (not retryable), or the first half of Rerun (retryable: the lost attempt closed).
        "tool.call.failed": { target: "failed", guard: "currentAttempt", actions: "recordFailure" },
        "tool.call.decisionIgnored": { target: "inDoubt", guard: "requested" }
      }
    },
    succeeded: {
      on: { "tool.call.compensated": { target: "compensated" }, "tool.call.decisionIgnored": { target: "succeeded", guard: "requested" } }
    },
    failed: {
      on: {
        "tool.call.started": { target: "started", guard: "retryableNextAttempt", actions: "recordStart" },
        "tool.call.decisionIgnored": { target: "failed", guard: "requested" }
      }
    },
    cancelled: { on: { "tool.call.decisionIgnored": { target: "cancelled", guard: "requested" } } },
    timedOut: { on: { "tool.call.decisionIgnored": { target: "timedOut", guard: "requested" } } },
    compensated: { on: { "tool.call.decisionIgnored": { target: "compensated", guard: "requested" } } }
  }
})

export type ToolCallSnapshot = SnapshotFrom<typeof toolCallMachine>
export type ToolCallState =
  | "proposed"
  | "authorized"
  | "denied"
  | "awaitingApproval"
  | "approved"
  | "rejected"
  | "expired"
  | "started"
  | "inDoubt"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "timedOut"
  | "compensated"

/** A call's state as plain data: the machine's state value and context. */
export interface CallSnapshot {
  readonly value: ToolCallState
  readonly context: ToolCallContext
}

/** States in which the model can be shown a result. */
export const terminalStates: ReadonlySet<ToolCallState> = new Set([
  "succeeded",
  "failed",
  "cancelled",
  "timedOut",
  "compensated",
  "denied",
  "rejected",
  "expired"
])

/** States after a decision was asked for, where a decision that does not count is recorded (and ignored). */
const decidedStates: ReadonlySet<ToolCallState> = new Set(["awaitingApproval", "approved", "rejected", "expired"])
/** States after a start; a late decision is recorded there too if an approval was requested. */
const afterStartStates: ReadonlySet<ToolCallState> = new Set(["started", "inDoubt", "succeeded", "failed", "cancelled", "timedOut", "compensated"])

export const initialCall: CallSnapshot = {
  value: "proposed",
  context: { key: "", attempt: 0, retryable: false, argsHash: "", deadline: 0, approvalRequired: false }
}

/**
 * The machine's transition function written out: XState's `transition`
 * builds a throwaway actor per step (~50 µs), too slow for a fold that runs
 * on every tool-call record. test/toolcall/ToolCallMachine.test.ts checks
 * that this function and XState's `transition` on `toolCallMachine` agree for
 * every state, event, attempt, key and flag, so the machine stays the one
 * definition of the lifecycle. Undefined: the machine refuses the event.
 */
export function reduceCall(call: CallSnapshot, event: ToolCallMachineEvent): CallSnapshot | undefined {
  const { value, context } = call
  const attempt = attemptOf(event)
  const sameKeyNext = attempt === context.attempt + 1 && keyOf(event) === context.key
  const current = attempt === context.attempt
  const start = (): CallSnapshot => ({ value: "started", context: { ...context, key: keyOf(event), attempt, retryable: false } })
  switch (event._tag) {
    case "tool.call.authorized":
      return value === "proposed" ? { value: "authorized", context: { ...context, approvalRequired: event.approvalRequired } } : undefined
    case "tool.call.denied":
      return value === "proposed" ? { value: "denied", context } : undefined
    case "tool.call.awaitingApproval":
      return value === "authorized" ? { value: "awaitingApproval", context: { ...context, argsHash: event.argsHash, deadline: event.deadline } } : undefined
    case "tool.call.approved":
      return value === "awaitingApproval" && event.argsHash === context.argsHash && event.time < context.deadline ? { value: "approved", context } : undefined
    case "tool.call.rejected":
      return value === "awaitingApproval" ? { value: "rejected", context } : undefined
    case "tool.call.expired":
      return value === "awaitingApproval" && event.time >= context.deadline ? { value: "expired", context } : undefined
    case "tool.call.decisionIgnored":
      return decidedStates.has(value) || (context.argsHash !== "" && afterStartStates.has(value)) ? call : undefined
    case "tool.call.started":
      if (value === "authorized" && attempt === 1 && !context.approvalRequired) return start()
      if (value === "approved" && attempt === 1) return start()
      if (value === "failed" && context.retryable && sameKeyNext) return start()
      return undefined
    case "tool.call.succeeded":
      return (value === "started" || value === "inDoubt") && current ? { value: "succeeded", context } : undefined
    case "tool.call.failed":
      if ((value === "proposed" || value === "authorized" || value === "approved") && attempt === 0) return { value: "failed", context }
      if (value === "started" && current) return { value: "failed", context: { ...context, retryable: event.retryable } }
      if (value === "inDoubt" && current) return { value: "failed", context: { ...context, retryable: event.retryable } }
      return undefined
    case "tool.call.cancelled":
      return value === "started" && current ? { value: "cancelled", context } : undefined
    case "tool.call.timedOut":
      return value === "started" && current ? { value: "timedOut", context } : undefined
    case "tool.call.compensated":
      return value === "succeeded" ? { value: "compensated", context } : undefined
    case "recover":
      return value === "started" ? { value: "inDoubt", context } : undefined
    case "tool.call.proposed":
      return undefined
  }
}

/** The same step through XState (the reference `reduceCall` is tested against). */
export function transitionCall(call: CallSnapshot, event: ToolCallMachineEvent): CallSnapshot | undefined {
  const snapshot = toolCallMachine.resolveState({ value: call.value, context: call.context })
  const machineEvent: MachineEvent = { type: event._tag, event }
  if (!snapshot.can(machineEvent)) return undefined
  const next = transition(toolCallMachine, snapshot, machineEvent)[0]
  return { value: next.value as ToolCallState, context: next.context }
}

/**
 * The spec/ToolCall.tla action a journaled event is, given the call's state
 * before it (trace validation): `tool.call.started` is Start from proposed,
 * Retry from failed; an outcome written for a call in
 * doubt is Reconcile or, with reason "unknown", CloseUnknown (the session
 * traces a closed lost attempt followed by its next start as one Rerun); a failure
 * before any start (attempt 0: bad input, unknown tool) is Reject.
 */
export function actionOf(prior: ToolCallState | undefined, event: ToolCallEvent): string {
  switch (event._tag) {
    case "tool.call.authorized":
      return "Authorize"
    case "tool.call.denied":
      return "Deny"
    case "tool.call.awaitingApproval":
      return "RequestApproval"
    case "tool.call.approved":
      return "Approve"
    case "tool.call.rejected":
      return "RejectApproval"
    case "tool.call.expired":
      return "Expire"
    case "tool.call.decisionIgnored":
      return "IgnoreDecision"
    case "tool.call.proposed":
      return "Propose"
    case "tool.call.started":
      return prior === "failed" ? "Retry" : "Start"
    case "tool.call.succeeded":
      return prior === "inDoubt" ? "Reconcile" : "Succeed"
    case "tool.call.failed":
      if (prior === "inDoubt") return event.reason === "unknown" ? "CloseUnknown" : "Reconcile"
      return prior === "proposed" || prior === "authorized" || prior === "approved" ? "Reject" : "Fail"
    case "tool.call.cancelled":
      return "Cancel"
    case "tool.call.timedOut":
      return "TimeOut"
    case "tool.call.compensated":
      return "Compensate"
  }
}
