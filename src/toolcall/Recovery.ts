/**
 * Recovery of tool calls on resume, before the next model turn (design §3):
 * every call without an outcome gets one, so no branch is ever handed to a
 * model with a call lacking a result (Session.context asserts it).
 *
 * In order: calls in doubt are resolved (re-run with the same key when
 * idempotent or read-only; reconciled or closed "outcome unknown" when not);
 * calls proposed but never started run (through the authority check), and
 * calls authorized or approved but not started start; atomic groups are
 * driven to their end (finished, or compensated). Calls awaiting approval
 * are left to their deadline (the journal's): `Executor.continueApproval`
 * waits for them, or `Approvals` decides them.
 */
import { Effect } from "effect"
import type { Session } from "../session/Session.ts"
import { type ExecutorError, type Registry, type RunOptions, resolveInDoubt, runCall, startApproved } from "./Executor.ts"
import { type CompensationFailed, continueSaga } from "./Saga.ts"
import type { Call } from "./ToolCalls.ts"

export const recover = (session: Session, tools: Registry, options: RunOptions = {}): Effect.Effect<ReadonlyArray<Call>, ExecutorError | CompensationFailed> =>
  Effect.gen(function* () {
    const concurrency = options.concurrency ?? 8
    const unresolved = session.calls().unresolved()
    yield* Effect.forEach(
      unresolved.filter((c) => c.state === "inDoubt"),
      (c) => resolveInDoubt(session, tools, c.callId),
      { concurrency }
    )
    yield* Effect.forEach(
      unresolved.filter((c) => c.state === "proposed" && !c.atomic),
      (c) => runCall(session, tools, c.callId),
      { concurrency }
    )
    // Authorized or approved before the crash, not started: they start now (their authority was checked and journaled).
    yield* Effect.forEach(
      unresolved.filter((c) => c.state === "authorized" || c.state === "approved"),
      (c) => startApproved(session, tools, c.callId),
      { concurrency }
    )
    const groups = new Set(
      session
        .calls()
        .all()
        .flatMap((c) => (c.atomic ? [c.entryId] : []))
    )
    yield* Effect.forEach(groups, (entryId) => continueSaga(session, tools, entryId), { concurrency: 1 })
    return unresolved.map((c) => session.calls().get(c.callId) ?? c)
  })
