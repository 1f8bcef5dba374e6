/**
 * The Agent lifecycle of one run (design §3), pure:
 *   idle → thinking                 (StartRun: a user entry and its run, one batch)
 *   thinking → acting               (RecordTurn: the model's turn and its calls, one batch, before any call starts)
 *   acting → thinking               (SettleCall of the turn's last pending call: the model is asked again)
 *   acting → waiting → acting       (Wait / Answer: a person is asked about a call; durable)
 *   waiting → thinking | acting     (SettleCall of the call asked about: e.g. rejected on cancel)
 *   acting → done                   (Finish: a turn with no calls, journaled with it)
 *   thinking | acting → cancelled | failed | timedOut   (Cancel, Fail, TimeOut: only once no call is pending)
 * Event types are the journal's tags (src/Event.ts), named after the actions of
 * spec/Agent.tla, plus `agent.call.settled`, which the session derives from the
 * ToolCall machine: a call of the run reached an outcome no retry will follow.
 * Every run ends in exactly one of the four final states (OneTerminalInv).
 */
import { assign, type SnapshotFrom, setup, transition } from "xstate"
import type { AgentEvent } from "../Event.ts"

export type AgentMachineEvent = AgentEvent | { readonly _tag: "agent.call.settled"; readonly callId: string }
type MachineEvent = { readonly type: AgentMachineEvent["_tag"]; readonly event: AgentMachineEvent }

export type RunState = "idle" | "thinking" | "acting" | "waiting" | "done" | "cancelled" | "failed" | "timedOut"

export interface RunContext {
  /** Turns recorded so far. */
  readonly turns: number
  readonly turnsMax: number
  /** Calls of the last turn without a settled outcome, in proposal order. */
  readonly pending: ReadonlyArray<string>
  /** Calls the last turn proposed (0: the model answered). */
  readonly lastTurnCalls: number
  /** The call a person is asked about while waiting ("" otherwise). */
  readonly awaiting: string
}

export interface RunSnapshot {
  readonly value: RunState
  readonly context: RunContext
}

export const finalStates: ReadonlySet<RunState> = new Set(["done", "cancelled", "failed", "timedOut"])

export const initialRun: RunSnapshot = { value: "idle", context: { turns: 0, turnsMax: 0, pending: [], lastTurnCalls: 0, awaiting: "" } }

const pendingWithout = (context: RunContext, callId: string) => context.pending.filter((c) => c !== callId)
const settledCall = (e: AgentMachineEvent) => (e._tag === "agent.call.settled" ? e.callId : "")
const isPending = (context: RunContext, e: AgentMachineEvent) => context.pending.includes(settledCall(e))
const forCall = (e: AgentMachineEvent) => (e._tag === "agent.run.waiting" || e._tag === "agent.run.answered" ? e.forCall : "")

export const agentMachine = setup({
  types: {
    context: {} as RunContext,
    events: {} as MachineEvent
  },
  guards: {
    // NoReaskInv: turns are numbered 1, 2, … once each; BudgetInv: never more than turnsMax.
    nextTurn: ({ context, event }) => event.event._tag === "agent.turn.recorded" && event.event.turn === context.turns + 1 && context.turns < context.turnsMax,
    lastPending: ({ context, event }) => isPending(context, event.event) && context.pending.length === 1,
    otherPending: ({ context, event }) => isPending(context, event.event) && context.pending.length > 1,
    pendingCall: ({ context, event }) => context.pending.includes(forCall(event.event)),
    awaitedCall: ({ context, event }) => forCall(event.event) === context.awaiting,
    awaitedSettledLast: ({ context, event }) =>
      isPending(context, event.event) && settledCall(event.event) === context.awaiting && context.pending.length === 1,
    awaitedSettled: ({ context, event }) => isPending(context, event.event) && settledCall(event.event) === context.awaiting && context.pending.length > 1,
    otherSettled: ({ context, event }) => isPending(context, event.event) && settledCall(event.event) !== context.awaiting,
    answered: ({ context }) => context.pending.length === 0 && context.lastTurnCalls === 0 && context.turns > 0,
    nothingPending: ({ context }) => context.pending.length === 0
  },
  actions: {
    start: assign(({ event }) => ({ turnsMax: event.event._tag === "agent.run.started" ? event.event.budget.turnsMax : 0 })),
    recordTurn: assign(({ context, event }) => {
      const calls = event.event._tag === "agent.turn.recorded" ? event.event.callIds : []
      return { turns: context.turns + 1, pending: [...calls], lastTurnCalls: calls.length }
    }),
    settle: assign(({ context, event }) => ({ pending: pendingWithout(context, settledCall(event.event)) })),
    await: assign(({ event }) => ({ awaiting: forCall(event.event) })),
    answer: assign({ awaiting: "" }),
    settleAwaited: assign(({ context, event }) => ({ pending: pendingWithout(context, settledCall(event.event)), awaiting: "" }))
  }
}).createMachine({
  id: "agent",
  // A constant context: XState's `transition` re-evaluates it for every step.
  context: initialRun.context,
  initial: "idle",
  states: {
    idle: {
      on: { "agent.run.started": { target: "thinking", actions: "start" } }
    },
    thinking: {
      on: {
        "agent.turn.recorded": { target: "acting", guard: "nextTurn", actions: "recordTurn" },
        "agent.run.cancelled": { target: "cancelled" },
        "agent.run.failed": { target: "failed" },
        "agent.run.timedOut": { target: "timedOut" }
      }
    },
    acting: {
      on: {
        "agent.call.settled": [
          { target: "thinking", guard: "lastPending", actions: "settle" },
          { target: "acting", guard: "otherPending", actions: "settle" }
        ],
        "agent.run.waiting": { target: "waiting", guard: "pendingCall", actions: "await" },
        "agent.run.done": { target: "done", guard: "answered" },
        "agent.run.cancelled": { target: "cancelled", guard: "nothingPending" },
        "agent.run.failed": { target: "failed", guard: "nothingPending" },
        "agent.run.timedOut": { target: "timedOut", guard: "nothingPending" }
      }
    },
    waiting: {
      on: {
        "agent.run.answered": { target: "acting", guard: "awaitedCall", actions: "answer" },
        "agent.call.settled": [
          { target: "thinking", guard: "awaitedSettledLast", actions: "settleAwaited" },
          { target: "acting", guard: "awaitedSettled", actions: "settleAwaited" },
          { target: "waiting", guard: "otherSettled", actions: "settle" }
        ]
      }
    },
    done: { type: "final" },
    cancelled: { type: "final" },
    failed: { type: "final" },
    timedOut: { type: "final" }
  }
})

export type AgentSnapshot = SnapshotFrom<typeof agentMachine>

/**
 * The machine's transition function written out, for the session's fold
 * (XState's `transition` builds an actor per step). test/agent/AgentMachine.test.ts
 * checks it equals `transitionRun` for every state, context and event.
 * Undefined: the machine refuses the event.
 */
export function reduceRun(run: RunSnapshot, event: AgentMachineEvent): RunSnapshot | undefined {
  const { value, context } = run
  const to = (state: RunState, patch: Partial<RunContext> = {}): RunSnapshot => ({ value: state, context: { ...context, ...patch } })
  switch (event._tag) {
    case "agent.run.started":
      return value === "idle" ? to("thinking", { turnsMax: event.budget.turnsMax }) : undefined
    case "agent.turn.recorded":
      return value === "thinking" && event.turn === context.turns + 1 && context.turns < context.turnsMax
        ? to("acting", { turns: context.turns + 1, pending: [...event.callIds], lastTurnCalls: event.callIds.length })
        : undefined
    case "agent.call.settled": {
      if (!context.pending.includes(event.callId)) return undefined
      const pending = pendingWithout(context, event.callId)
      if (value === "acting") return to(pending.length === 0 ? "thinking" : "acting", { pending })
      if (value === "waiting") {
        if (event.callId !== context.awaiting) return to("waiting", { pending })
        return to(pending.length === 0 ? "thinking" : "acting", { pending, awaiting: "" })
      }
      return undefined
    }
    case "agent.run.waiting":
      return value === "acting" && context.pending.includes(event.forCall) ? to("waiting", { awaiting: event.forCall }) : undefined
    case "agent.run.answered":
      return value === "waiting" && event.forCall === context.awaiting ? to("acting", { awaiting: "" }) : undefined
    case "agent.run.done":
      return value === "acting" && context.pending.length === 0 && context.lastTurnCalls === 0 && context.turns > 0 ? to("done") : undefined
    case "agent.run.cancelled":
    case "agent.run.failed":
    case "agent.run.timedOut": {
      const target: RunState = event._tag === "agent.run.cancelled" ? "cancelled" : event._tag === "agent.run.failed" ? "failed" : "timedOut"
      if (value === "thinking") return to(target)
      return value === "acting" && context.pending.length === 0 ? to(target) : undefined
    }
  }
}

/** The same step through XState (the reference `reduceRun` is tested against). */
export function transitionRun(run: RunSnapshot, event: AgentMachineEvent): RunSnapshot | undefined {
  const snapshot = agentMachine.resolveState({ value: run.value, context: run.context })
  const machineEvent: MachineEvent = { type: event._tag, event }
  if (!snapshot.can(machineEvent)) return undefined
  const next = transition(agentMachine, snapshot, machineEvent)[0]
  return { value: next.value as RunState, context: next.context }
}

/** The spec/Agent.tla action a journaled (or derived) event is (trace validation). */
export function actionOf(event: AgentMachineEvent): string {
  switch (event._tag) {
    case "agent.run.started":
      return "StartRun"
    case "agent.turn.recorded":
      return "RecordTurn"
    case "agent.call.settled":
      return "SettleCall"
    case "agent.run.waiting":
      return "Wait"
    case "agent.run.answered":
      return "Answer"
    case "agent.run.done":
      return "Finish"
    case "agent.run.cancelled":
      return "Cancel"
    case "agent.run.failed":
      return "Fail"
    case "agent.run.timedOut":
      return "TimeOut"
  }
}
