/**
 * The ToolCall lifecycle (design §3), pure:
 *   proposed → started → succeeded | failed | cancelled | timedOut
 *   failed (retryable) → started   (Retry: same key, next attempt)
 *   succeeded → compensated        (saga undo)
 *   started → inDoubt              (found without an outcome after a crash: `recover`)
 *   inDoubt → failed → started     (Rerun: readOnly/idempotent, the lost attempt closed
 *                                   as failed "unknown" retryable, then the next attempt, same key)
 *   inDoubt → succeeded | failed   (Reconcile, or CloseUnknown: failed, reason "unknown")
 *   proposed → failed              (Reject: attempt 0, nothing ran — bad input, unknown tool)
 * Event types are the journal's tags (src/Event.ts), named after the
 * actions of spec/ToolCall.tla; `recover` is not journaled: it is what
 * opening a journal means for a call still `started`.
 * `Start` is the one transition from proposed into started: the authority
 * check (capabilities, approvals) will sit on it.
 */
import { assign, type SnapshotFrom, setup, transition } from "xstate"
import type { ToolCallEvent } from "../Event.ts"

export type ToolCallMachineEvent = ToolCallEvent | { readonly _tag: "recover" }
type MachineEvent = { readonly type: ToolCallMachineEvent["_tag"]; readonly event: ToolCallMachineEvent }

export interface ToolCallContext {
  readonly key: string
  readonly attempt: number
  readonly retryable: boolean
}

const attemptOf = (e: ToolCallMachineEvent): number => ("attempt" in e ? e.attempt : -1)
const keyOf = (e: ToolCallMachineEvent): string => ("key" in e ? e.key : "")

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
    rejectedBeforeStart: ({ event }) => attemptOf(event.event) === 0
  },
  actions: {
    recordStart: assign(({ event }) => ({ key: keyOf(event.event), attempt: attemptOf(event.event), retryable: false })),
    recordFailure: assign(({ event }) => ({ retryable: event.event._tag === "tool.call.failed" && event.event.retryable }))
  }
}).createMachine({
  id: "toolCall",
  // A constant context: XState's `transition` re-evaluates it for every step, so it must be cheap and need no input.
  context: { key: "", attempt: 0, retryable: false },
  initial: "proposed",
  states: {
    proposed: {
      on: {
        "tool.call.started": { target: "started", guard: "firstAttempt", actions: "recordStart" },
        "tool.call.failed": { target: "failed", guard: "rejectedBeforeStart" }
      }
    },
    started: {
      on: {
        "tool.call.succeeded": { target: "succeeded", guard: "currentAttempt" },
        "tool.call.failed": { target: "failed", guard: "currentAttempt", actions: "recordFailure" },
        "tool.call.cancelled": { target: "cancelled", guard: "currentAttempt" },
        "tool.call.timedOut": { target: "timedOut", guard: "currentAttempt" },
        recover: { target: "inDoubt" }
      }
    },
    inDoubt: {
      on: {
        "tool.call.succeeded": { target: "succeeded", guard: "currentAttempt" },
        // Reconcile / CloseUnknown (not retryable), or the first half of Rerun (retryable: the lost attempt closed).
        "tool.call.failed": { target: "failed", guard: "currentAttempt", actions: "recordFailure" }
      }
    },
    succeeded: {
      on: { "tool.call.compensated": { target: "compensated" } }
    },
    failed: {
      on: { "tool.call.started": { target: "started", guard: "retryableNextAttempt", actions: "recordStart" } }
    },
    cancelled: {},
    timedOut: {},
    compensated: {}
  }
})

export type ToolCallSnapshot = SnapshotFrom<typeof toolCallMachine>
export type ToolCallState = "proposed" | "started" | "inDoubt" | "succeeded" | "failed" | "cancelled" | "timedOut" | "compensated"

/** A call's state as plain data: the machine's state value and context. */
export interface CallSnapshot {
  readonly value: ToolCallState
  readonly context: ToolCallContext
}

/** States in which the model can be shown a result. */
export const terminalStates: ReadonlySet<ToolCallState> = new Set(["succeeded", "failed", "cancelled", "timedOut", "compensated"])

export const initialCall: CallSnapshot = { value: "proposed", context: { key: "", attempt: 0, retryable: false } }

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
  const start = (): CallSnapshot => ({ value: "started", context: { key: keyOf(event), attempt, retryable: false } })
  switch (event._tag) {
    case "tool.call.started":
      if (value === "proposed" && attempt === 1) return start()
      if (value === "failed" && context.retryable && sameKeyNext) return start()
      return undefined
    case "tool.call.succeeded":
      return (value === "started" || value === "inDoubt") && current ? { value: "succeeded", context } : undefined
    case "tool.call.failed":
      if (value === "proposed" && attempt === 0) return { value: "failed", context }
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
    case "tool.call.proposed":
      return "Propose"
    case "tool.call.started":
      return prior === "failed" ? "Retry" : "Start"
    case "tool.call.succeeded":
      return prior === "inDoubt" ? "Reconcile" : "Succeed"
    case "tool.call.failed":
      if (prior === "inDoubt") return event.reason === "unknown" ? "CloseUnknown" : "Reconcile"
      return prior === "proposed" ? "Reject" : "Fail"
    case "tool.call.cancelled":
      return "Cancel"
    case "tool.call.timedOut":
      return "TimeOut"
    case "tool.call.compensated":
      return "Compensate"
  }
}
