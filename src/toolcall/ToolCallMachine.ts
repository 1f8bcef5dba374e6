/**
 * The ToolCall lifecycle (design §3), pure:
 *   proposed → started → succeeded | failed | cancelled | timedOut
 *   failed (retryable) → started   (Retry: same key, next attempt)
 *   succeeded → compensated        (saga undo)
 *   started → inDoubt              (found without an outcome after a crash: `recover`)
 *   inDoubt → started              (Rerun: readOnly/idempotent, same key)
 *   inDoubt → succeeded | failed   (Reconcile, or CloseUnknown: failed, reason "unknown")
 *   proposed → failed              (Reject: attempt 0, nothing ran — bad input, unknown tool)
 * Event types are the journal's tags (src/Event.ts), named after the
 * actions of spec/ToolCall.tla; `recover` is not journaled: it is what
 * opening a journal means for a call still `started`.
 * `Start` is the one transition from proposed into started: the authority
 * check (capabilities, approvals) will sit on it.
 */
import { assign, initialTransition, type SnapshotFrom, setup, transition } from "xstate"
import type { ToolCallEvent } from "../Event.ts"

export type ToolCallMachineEvent = ToolCallEvent | { readonly _tag: "recover" }
type MachineEvent = { readonly type: ToolCallMachineEvent["_tag"]; readonly event: ToolCallMachineEvent }

export interface ToolCallContext {
  readonly callId: string
  readonly key: string
  readonly attempt: number
  readonly retryable: boolean
}

const attemptOf = (e: ToolCallMachineEvent): number => ("attempt" in e ? e.attempt : -1)
const keyOf = (e: ToolCallMachineEvent): string => ("key" in e ? e.key : "")

export const toolCallMachine = setup({
  types: {
    context: {} as ToolCallContext,
    events: {} as MachineEvent,
    input: {} as { readonly callId: string }
  },
  guards: {
    firstAttempt: ({ event }) => attemptOf(event.event) === 1,
    // KeyStableInv: every attempt of a call carries the key of its first attempt.
    nextAttemptSameKey: ({ context, event }) => attemptOf(event.event) === context.attempt + 1 && keyOf(event.event) === context.key,
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
  context: ({ input }) => ({ callId: input.callId, key: "", attempt: 0, retryable: false }),
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
        "tool.call.started": { target: "started", guard: "nextAttemptSameKey", actions: "recordStart" },
        "tool.call.succeeded": { target: "succeeded", guard: "currentAttempt" },
        "tool.call.failed": { target: "failed", guard: "currentAttempt" }
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

/** States in which the model can be shown a result. */
export const terminalStates: ReadonlySet<ToolCallState> = new Set(["succeeded", "failed", "cancelled", "timedOut", "compensated"])

export const initialCall = (callId: string): ToolCallSnapshot => initialTransition(toolCallMachine, { callId })[0]

/** Folds one event; undefined when the machine refuses it in the call's state. */
export function stepCall(snapshot: ToolCallSnapshot, event: ToolCallMachineEvent): ToolCallSnapshot | undefined {
  const machineEvent: MachineEvent = { type: event._tag, event }
  if (!snapshot.can(machineEvent)) return undefined
  return transition(toolCallMachine, snapshot, machineEvent)[0]
}

export const callStateOf = (snapshot: ToolCallSnapshot): ToolCallState => snapshot.value as ToolCallState

/**
 * The spec/ToolCall.tla action a journaled event is, given the call's state
 * before it (trace validation): `tool.call.started` is Start from proposed,
 * Retry from failed and Rerun from inDoubt; an outcome written for a call in
 * doubt is Reconcile or, with reason "unknown", CloseUnknown; a failure
 * before any start (attempt 0: bad input, unknown tool) is Reject.
 */
export function actionOf(prior: ToolCallState | undefined, event: ToolCallEvent): string {
  switch (event._tag) {
    case "tool.call.proposed":
      return "Propose"
    case "tool.call.started":
      return prior === "failed" ? "Retry" : prior === "inDoubt" ? "Rerun" : "Start"
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
