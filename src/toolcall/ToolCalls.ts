/**
 * The tool calls of a session, folded from its journal through the ToolCall
 * machine: which entry proposed each call, its state, and its outcome.
 *
 * A call belongs to the assistant entry that proposed it, so every branch
 * whose path contains that entry shares the call and its one outcome (the
 * world saw the effect once, whatever branch you are on).
 */
import type { Schema } from "effect"
import type { ToolCallEvent } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import { type CallSnapshot, initialCall, reduceCall, type ToolCallMachineEvent, type ToolCallState, terminalStates } from "./ToolCallMachine.ts"

/** What the model is shown for a finished call. */
export type Outcome =
  | { readonly kind: "succeeded"; readonly output: Schema.Json; readonly reconciled: boolean }
  | { readonly kind: "failed"; readonly reason: string; readonly message: string; readonly retryable: boolean }
  | { readonly kind: "cancelled" }
  | { readonly kind: "timedOut" }

export interface Call {
  readonly callId: string
  readonly entryId: number
  readonly tool: string
  readonly input: Schema.Json
  readonly atomic: boolean
  readonly state: ToolCallState
  readonly attempt: number
  readonly key: string
  /** The last outcome (a compensated call keeps its success: the model saw it, and then it was undone). */
  readonly outcome: Outcome | undefined
}

interface Stored {
  readonly callId: string
  readonly entryId: number
  readonly tool: string
  readonly input: Schema.Json
  readonly atomic: boolean
  snapshot: CallSnapshot
  outcome: Outcome | undefined
}

export interface ToolCallsData {
  readonly calls: ReadonlyArray<{
    readonly callId: string
    readonly entryId: number
    readonly tool: string
    readonly input: Schema.Json
    readonly atomic: boolean
    readonly value: ToolCallState
    readonly context: CallSnapshot["context"]
    readonly outcome: Outcome | null
  }>
}

function outcomeOf(event: ToolCallEvent): Outcome | undefined {
  switch (event._tag) {
    case "tool.call.succeeded":
      return { kind: "succeeded", output: event.output, reconciled: event.reconciled }
    case "tool.call.failed":
      return { kind: "failed", reason: event.reason, message: event.message, retryable: event.retryable }
    case "tool.call.cancelled":
      return { kind: "cancelled" }
    case "tool.call.timedOut":
      return { kind: "timedOut" }
    default:
      return undefined
  }
}

export class ToolCalls {
  private readonly calls = new Map<string, Stored>()
  private readonly byEntry = new Map<number, Array<string>>()

  constructor(data?: ToolCallsData) {
    for (const c of data?.calls ?? []) {
      const snapshot: CallSnapshot = { value: c.value, context: c.context }
      this.store({ callId: c.callId, entryId: c.entryId, tool: c.tool, input: c.input, atomic: c.atomic, snapshot, outcome: c.outcome ?? undefined })
    }
  }

  private store(call: Stored): void {
    this.calls.set(call.callId, call)
    const list = this.byEntry.get(call.entryId) ?? []
    list.push(call.callId)
    this.byEntry.set(call.entryId, list)
  }

  /** Why `event` cannot be folded now (a duplicate call id, an outcome for a call never started, …), or undefined. */
  refusal(event: ToolCallMachineEvent & { readonly callId?: string }, isEntry: (id: number) => boolean): string | undefined {
    if (event._tag === "tool.call.proposed") {
      if (this.calls.has(event.callId)) return `call ${event.callId} was already proposed`
      return isEntry(event.entryId) ? undefined : `call ${event.callId} names entry ${event.entryId}, which does not exist`
    }
    if (event._tag === "recover") return undefined
    const call = event.callId === undefined ? undefined : this.calls.get(event.callId)
    if (call === undefined) return `no call ${event.callId} was proposed`
    if (reduceCall(call.snapshot, event) === undefined) {
      const attempt = "attempt" in event ? ` (attempt ${event.attempt})` : ""
      return `${event._tag}${attempt} is not allowed for call ${call.callId} in state ${call.snapshot.value} (attempt ${call.snapshot.context.attempt})`
    }
    return undefined
  }

  /** Why a batch of lifecycle events (not proposals) cannot be folded in order, or undefined. */
  refusalOfBatch(events: ReadonlyArray<ToolCallEvent>): { readonly callId: string; readonly reason: string } | undefined {
    const after = new Map<string, CallSnapshot>()
    for (const event of events) {
      if (event._tag === "tool.call.proposed") return { callId: event.callId, reason: "propose calls with their entry (propose)" }
      const stored = this.calls.get(event.callId)
      if (stored === undefined) return { callId: event.callId, reason: `no call ${event.callId} was proposed` }
      const snapshot = after.get(event.callId) ?? stored.snapshot
      const next = reduceCall(snapshot, event)
      if (next === undefined) {
        const attempt = "attempt" in event ? ` (attempt ${event.attempt})` : ""
        return {
          callId: event.callId,
          reason: `${event._tag}${attempt} is not allowed for call ${event.callId} in state ${snapshot.value} (attempt ${snapshot.context.attempt})`
        }
      }
      after.set(event.callId, next)
    }
    return undefined
  }

  /** Folds an event the caller has checked with `refusal` (PairingInv: a refused one here is a bug). */
  apply(event: ToolCallEvent, isEntry: (id: number) => boolean): void {
    const why = this.refusal(event, isEntry)
    assert(why === undefined, "PairingInv", why ?? "")
    if (event._tag === "tool.call.proposed") {
      this.store({
        callId: event.callId,
        entryId: event.entryId,
        tool: event.tool,
        input: event.input,
        atomic: event.atomic,
        snapshot: initialCall,
        outcome: undefined
      })
      return
    }
    const call = this.calls.get(event.callId) as Stored
    call.snapshot = reduceCall(call.snapshot, event) as CallSnapshot
    call.outcome = outcomeOf(event) ?? (event._tag === "tool.call.started" ? undefined : call.outcome)
  }

  /** After a crash: every call still `started` is in doubt (its effect may or may not have happened). */
  recover(): Array<string> {
    const inDoubt: Array<string> = []
    for (const call of this.calls.values()) {
      const next = reduceCall(call.snapshot, { _tag: "recover" })
      if (next !== undefined) {
        call.snapshot = next
        inDoubt.push(call.callId)
      }
    }
    return inDoubt
  }

  get(callId: string): Call | undefined {
    const call = this.calls.get(callId)
    return call === undefined ? undefined : view(call)
  }

  /** The calls an entry proposed, in order. */
  ofEntry(entryId: number): Array<Call> {
    return (this.byEntry.get(entryId) ?? []).map((id) => view(this.calls.get(id) as Stored))
  }

  all(): Array<Call> {
    return [...this.calls.values()].map(view)
  }

  /** Calls that the model cannot be shown yet (no outcome). */
  unresolved(): Array<Call> {
    return this.all().filter((c) => !terminalStates.has(c.state))
  }

  toJSON(): ToolCallsData {
    return {
      calls: [...this.calls.values()].map((c) => ({
        callId: c.callId,
        entryId: c.entryId,
        tool: c.tool,
        input: c.input,
        atomic: c.atomic,
        value: c.snapshot.value,
        context: c.snapshot.context,
        outcome: c.outcome ?? null
      }))
    }
  }
}

function view(call: Stored): Call {
  return {
    callId: call.callId,
    entryId: call.entryId,
    tool: call.tool,
    input: call.input,
    atomic: call.atomic,
    state: call.snapshot.value,
    attempt: call.snapshot.context.attempt,
    key: call.snapshot.context.key,
    outcome: call.outcome
  }
}
