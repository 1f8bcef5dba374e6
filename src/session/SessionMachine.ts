/**
 * The Session lifecycle: open → active ⇄ suspended → closed (design §3).
 *
 * Pure (no I/O in actions): the live lifecycle of a session is the fold of
 * its journal through this machine with XState's `transition`, so recovery is
 * replay. Event types are the journal's event tags (src/Event.ts), each named
 * after its TLA+ action in spec/Session.tla:
 *   lease.acquired ↔ AcquireLease, session.suspended ↔ Suspend,
 *   session.closed ↔ Close, entry.appended ↔ Append, branch.forked ↔ Fork,
 *   branch.switched ↔ Switch, entry.labelled ↔ Label.
 * Tool-call and agent-run records are content too (their own machines fold them).
 * Tree content events are accepted only while `active` (a writer holds the lease);
 * they target `active` itself so that `can()` reports them as enabled.
 */
import { assign, initialTransition, type SnapshotFrom, setup, transition } from "xstate"
import type { Event } from "../Event.ts"
import { assert } from "../internal/assert.ts"

export type SessionMachineEvent = { readonly type: Event["_tag"]; readonly epoch?: number }

export const sessionMachine = setup({
  types: {
    context: {} as { readonly epoch: number },
    events: {} as SessionMachineEvent
  },
  actions: {
    // The lease epoch in force: every later content event must carry it (NoLostUpdateInv).
    recordEpoch: assign({ epoch: ({ event }) => event.epoch ?? 0 })
  }
}).createMachine({
  id: "session",
  context: { epoch: 0 },
  initial: "open",
  states: {
    open: {
      on: {
        "lease.acquired": { target: "active", actions: "recordEpoch" }
      }
    },
    active: {
      on: {
        "lease.acquired": { target: "active", actions: "recordEpoch" },
        "entry.appended": { target: "active" },
        "branch.forked": { target: "active" },
        "branch.switched": { target: "active" },
        "entry.labelled": { target: "active" },
        "tool.call.proposed": { target: "active" },
        "tool.call.started": { target: "active" },
        "tool.call.succeeded": { target: "active" },
        "tool.call.failed": { target: "active" },
        "tool.call.cancelled": { target: "active" },
        "tool.call.timedOut": { target: "active" },
        "tool.call.compensated": { target: "active" },
        "tool.call.authorized": { target: "active" },
        "tool.call.denied": { target: "active" },
        "tool.call.awaitingApproval": { target: "active" },
        "tool.call.approved": { target: "active" },
        "tool.call.rejected": { target: "active" },
        "tool.call.expired": { target: "active" },
        "tool.call.decisionIgnored": { target: "active" },
        "agent.run.started": { target: "active" },
        "agent.turn.recorded": { target: "active" },
        "agent.run.waiting": { target: "active" },
        "agent.run.answered": { target: "active" },
        "agent.run.done": { target: "active" },
        "agent.run.cancelled": { target: "active" },
        "agent.run.failed": { target: "active" },
        "agent.run.timedOut": { target: "active" },
        "session.suspended": { target: "suspended" },
        "session.closed": { target: "closed" }
      }
    },
    // Closing needs the lease: a suspended session is closed by re-acquiring it (→ active) first,
    // so the journal never holds `session.closed` right after `session.suspended` (LifecycleInv).
    suspended: {
      on: {
        "lease.acquired": { target: "active", actions: "recordEpoch" }
      }
    },
    closed: { type: "final" }
  }
})

export type SessionSnapshot = SnapshotFrom<typeof sessionMachine>
export type SessionStatus = "open" | "active" | "suspended" | "closed"

export const initialSnapshot = (): SessionSnapshot => initialTransition(sessionMachine)[0]

type Effect = "refused" | "unchanged" | "changed"
// What each event type does in each state, learnt from the machine itself the
// first time it is seen. Sound because the machine has no guards: whether a
// transition is taken depends only on the state and the event type.
const effects = new Map<string, Effect>()
assert(Object.keys(sessionMachine.implementations.guards).length === 0, "ReplayDeterminismInv", "the step cache assumes a guard-free machine")

/**
 * Folds one journal event into the lifecycle. Returns undefined when the
 * machine does not accept the event in its current state (the caller decides
 * whether that is a refused request or a corrupt journal).
 *
 * Events the machine accepts without changing state or context (tree content
 * while active) return the same snapshot: replaying 10^5 entries stays cheap.
 */
export function step(snapshot: SessionSnapshot, event: Event): SessionSnapshot | undefined {
  const machineEvent: SessionMachineEvent = event._tag === "lease.acquired" ? { type: event._tag, epoch: event.epoch } : { type: event._tag }
  const key = `${String(snapshot.value)}|${event._tag}`
  const known = effects.get(key)
  if (known === "refused") return undefined
  if (known === "unchanged") return snapshot
  const next = transition(sessionMachine, snapshot, machineEvent)[0]
  const effect: Effect = !snapshot.can(machineEvent) ? "refused" : next.value === snapshot.value && next.context === snapshot.context ? "unchanged" : "changed"
  effects.set(key, effect)
  return effect === "refused" ? undefined : next
}

export const statusOf = (snapshot: SessionSnapshot): SessionStatus => snapshot.value as SessionStatus
