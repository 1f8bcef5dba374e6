/**
 * The agent runs of a session, folded from its journal through the Agent
 * machine: each run's state, budget, turns, token counts and end.
 *
 * The fold also derives `agent.call.settled` from the tool-call records: when
 * a call of the current turn reaches an outcome that no retry will follow, the
 * run's machine is told (spec/Agent.tla: SettleCall). So the run's state is a
 * function of the journal alone, and a resumed run knows whether the model is
 * to be asked again (thinking) or calls are still open (acting).
 */
import type { AgentEvent, RunBudget } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { terminalStates } from "../toolcall/ToolCallMachine.ts"
import type { Call } from "../toolcall/ToolCalls.ts"
import { type AgentMachineEvent, finalStates, initialRun, type RunSnapshot, type RunState, reduceRun } from "./AgentMachine.ts"

/** How a finished run ended, as journaled. */
export interface RunEnd {
  readonly state: "done" | "cancelled" | "failed" | "timedOut"
  readonly reason: string
  readonly message: string
  readonly at: number
}

export interface Run {
  readonly runId: string
  /** The user entry the run answers. */
  readonly entryId: number
  readonly branch: string
  readonly budget: RunBudget
  readonly startedAt: number
  readonly state: RunState
  readonly turns: number
  /** Calls of the last turn still without a settled outcome. */
  readonly pending: ReadonlyArray<string>
  /** The call a person is being asked about ("" unless waiting). */
  readonly awaiting: string
  readonly question: string
  /** The answers people gave about calls of the run ("yes" | "no"), by call id: a restart does not ask twice. */
  readonly answers: { readonly [callId: string]: string }
  /** The entry of the last recorded turn (0: none yet). */
  readonly lastTurnEntryId: number
  readonly toolCalls: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly end: RunEnd | undefined
}

type Stored = { -readonly [K in keyof Run]: Run[K] } & { snapshot: RunSnapshot }

export interface AgentRunsData {
  readonly runs: ReadonlyArray<Omit<Run, "state" | "pending" | "awaiting" | "end"> & { readonly snapshot: RunSnapshot; readonly end: RunEnd | null }>
}

/** A call that reached an outcome no retry follows: the run may go on. */
export const isSettled = (call: Call): boolean =>
  terminalStates.has(call.state) && !(call.state === "failed" && call.outcome?.kind === "failed" && call.outcome.retryable)

export class AgentRuns {
  private readonly runs = new Map<string, Stored>()
  private readonly runOfCall = new Map<string, string>()
  /** The run that is not final, if any (SingleRunInv: at most one). */
  private activeId: string | undefined

  constructor(data?: AgentRunsData) {
    for (const r of data?.runs ?? []) {
      const stored: Stored = {
        ...r,
        end: r.end ?? undefined,
        state: r.snapshot.value,
        pending: r.snapshot.context.pending,
        awaiting: r.snapshot.context.awaiting
      }
      this.runs.set(r.runId, stored)
      if (!finalStates.has(stored.state)) this.activeId = r.runId
      for (const c of stored.pending) this.runOfCall.set(c, r.runId)
    }
  }

  /** Why `events` cannot be folded in order now, or undefined. */
  refusalOfBatch(events: ReadonlyArray<AgentEvent>): { readonly runId: string; readonly reason: string } | undefined {
    const after = new Map<string, RunSnapshot>()
    let active = this.activeId
    for (const event of events) {
      if (event._tag === "agent.run.started") {
        if (this.runs.has(event.runId) || after.has(event.runId)) return { runId: event.runId, reason: `run ${event.runId} was already started` }
        if (active !== undefined) return { runId: event.runId, reason: `run ${active} is still ${this.get(active)?.state ?? "active"}: resume or end it first` }
        active = event.runId
      }
      const snapshot = after.get(event.runId) ?? this.runs.get(event.runId)?.snapshot ?? (event._tag === "agent.run.started" ? initialRun : undefined)
      if (snapshot === undefined) return { runId: event.runId, reason: `no run ${event.runId} was started` }
      const next = reduceRun(snapshot, event)
      if (next === undefined) return { runId: event.runId, reason: `${event._tag} is not allowed in state ${snapshot.value} (turn ${snapshot.context.turns})` }
      after.set(event.runId, next)
      if (finalStates.has(next.value)) active = undefined
    }
    return undefined
  }

  /** Folds an agent event the caller has checked (a refused one here is a bug or a forged journal). */
  apply(event: AgentEvent): void {
    const why = this.refusalOfBatch([event])
    assert(why === undefined, "OneTerminalInv", why?.reason ?? "")
    if (event._tag === "agent.run.started") {
      this.runs.set(event.runId, {
        runId: event.runId,
        entryId: event.entryId,
        branch: event.branch,
        budget: event.budget,
        startedAt: event.time,
        snapshot: initialRun,
        state: "idle",
        turns: 0,
        pending: [],
        awaiting: "",
        question: "",
        answers: {},
        lastTurnEntryId: 0,
        toolCalls: 0,
        inputTokens: 0,
        outputTokens: 0,
        end: undefined
      })
      this.activeId = event.runId
    }
    const run = this.runs.get(event.runId) as Stored
    this.step(run, event)
    switch (event._tag) {
      case "agent.turn.recorded":
        run.lastTurnEntryId = event.entryId
        run.toolCalls += event.callIds.length
        run.inputTokens += event.inputTokens
        run.outputTokens += event.outputTokens
        for (const c of event.callIds) this.runOfCall.set(c, run.runId)
        break
      case "agent.run.waiting":
        run.question = event.question
        break
      case "agent.run.answered":
        run.question = ""
        run.answers = { ...run.answers, [event.forCall]: event.answer }
        break
      case "agent.run.done":
        run.end = { state: "done", reason: "answered", message: "the model answered", at: event.time }
        break
      case "agent.run.cancelled":
        run.end = { state: "cancelled", reason: "cancelled", message: event.reason, at: event.time }
        break
      case "agent.run.failed":
        run.end = { state: "failed", reason: event.reason, message: event.message, at: event.time }
        break
      case "agent.run.timedOut":
        run.end = { state: "timedOut", reason: event.reason, message: event.message, at: event.time }
        break
    }
  }

  /**
   * After a tool-call record is folded: if it settled a pending call of a run,
   * the run's machine takes `agent.call.settled`. Returns the settled call id
   * (for the trace), or undefined.
   */
  onCall(call: Call): string | undefined {
    const runId = this.runOfCall.get(call.callId)
    if (runId === undefined || !isSettled(call)) return undefined
    const run = this.runs.get(runId) as Stored
    if (!run.pending.includes(call.callId)) return undefined
    this.step(run, { _tag: "agent.call.settled", callId: call.callId })
    this.runOfCall.delete(call.callId)
    return call.callId
  }

  private step(run: Stored, event: AgentMachineEvent): void {
    const next = reduceRun(run.snapshot, event)
    assert(next !== undefined, "OneTerminalInv", `${event._tag} refused for run ${run.runId} in state ${run.snapshot.value}`)
    run.snapshot = next
    run.state = next.value
    run.turns = next.context.turns
    run.pending = next.context.pending
    run.awaiting = next.context.awaiting
    if (finalStates.has(next.value)) {
      assert(next.context.pending.length === 0, "TerminalSettledInv", `run ${run.runId} ended ${next.value} with calls pending`)
      if (this.activeId === run.runId) this.activeId = undefined
    }
  }

  get(runId: string): Run | undefined {
    return this.runs.get(runId)
  }

  /** The run that has not ended, if any. */
  active(): Run | undefined {
    return this.activeId === undefined ? undefined : this.runs.get(this.activeId)
  }

  /** Runs in start order. */
  all(): ReadonlyArray<Run> {
    return [...this.runs.values()]
  }

  get size(): number {
    return this.runs.size
  }

  toJSON(): AgentRunsData {
    return {
      runs: [...this.runs.values()].map(({ state: _s, pending: _p, awaiting: _a, end, ...rest }) => ({ ...rest, end: end ?? null }))
    }
  }
}
