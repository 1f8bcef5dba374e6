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
  | { readonly kind: "denied"; readonly reason: string; readonly message: string }
  | { readonly kind: "rejected"; readonly by: string; readonly reason: string }
  | { readonly kind: "expired"; readonly deadline: number }

/** An approval request, from `tool.call.awaitingApproval` (and the decision that counted, once there is one). */
export interface ApprovalRequest {
  readonly argsHash: string
  readonly approvers: ReadonlyArray<string>
  readonly deadline: number
  readonly requestedAt: number
  /** Who decided, once a decision counted (approved or rejected). */
  readonly decidedBy?: string
}

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
  /** The capability that authorized the call (its id), once authorized. */
  readonly capability: string | undefined
  readonly approval: ApprovalRequest | undefined
}

interface Stored {
  readonly callId: string
  readonly entryId: number
  readonly tool: string
  readonly input: Schema.Json
  readonly atomic: boolean
  snapshot: CallSnapshot
  outcome: Outcome | undefined
  capability: string | undefined
  blocks?: ReadonlyArray<string>
  approval: ApprovalRequest | undefined
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
    readonly capability?: string
    readonly blocks?: ReadonlyArray<string>
    readonly approval?: ApprovalRequest
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
    case "tool.call.denied":
      return { kind: "denied", reason: event.reason, message: event.message }
    case "tool.call.rejected":
      return { kind: "rejected", by: event.by, reason: event.reason }
    case "tool.call.expired":
      return { kind: "expired", deadline: event.deadline }
    default:
      return undefined
  }
}

export class ToolCalls {
  private readonly calls = new Map<string, Stored>()
  private readonly byEntry = new Map<number, Array<string>>()
  /** Calls authorized per capability id (a capability's `uses` caveat counts these). */
  private readonly uses = new Map<string, number>()

  constructor(data?: ToolCallsData) {
    for (const c of data?.calls ?? []) {
      const snapshot: CallSnapshot = { value: c.value, context: c.context }
      if (c.blocks !== undefined) this.countUses(c.blocks)
      this.store({
        callId: c.callId,
        entryId: c.entryId,
        tool: c.tool,
        input: c.input,
        atomic: c.atomic,
        snapshot,
        outcome: c.outcome ?? undefined,
        capability: c.capability,
        ...(c.blocks === undefined ? {} : { blocks: c.blocks }),
        approval: c.approval
      })
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
        outcome: undefined,
        capability: undefined,
        approval: undefined
      })
      return
    }
    const call = this.calls.get(event.callId) as Stored
    call.snapshot = reduceCall(call.snapshot, event) as CallSnapshot
    call.outcome = outcomeOf(event) ?? (event._tag === "tool.call.started" ? undefined : call.outcome)
    if (event._tag === "tool.call.authorized") {
      call.capability = event.capability
      call.blocks = event.blocks
      this.countUses(event.blocks)
    }
    if (event._tag === "tool.call.awaitingApproval") {
      call.approval = { argsHash: event.argsHash, approvers: event.approvers, deadline: event.deadline, requestedAt: event.time }
    }
    if ((event._tag === "tool.call.approved" || event._tag === "tool.call.rejected") && call.approval !== undefined) {
      call.approval = { ...call.approval, decidedBy: event.by }
    }
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

  /** Calls authorized so far through block `id` (of any token containing it). */
  usesOf(id: string): number {
    return this.uses.get(id) ?? 0
  }

  private countUses(blocks: ReadonlyArray<string>): void {
    for (const b of blocks) this.uses.set(b, (this.uses.get(b) ?? 0) + 1)
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
        outcome: c.outcome ?? null,
        ...(c.capability === undefined ? {} : { capability: c.capability }),
        ...(c.blocks === undefined ? {} : { blocks: c.blocks }),
        ...(c.approval === undefined ? {} : { approval: c.approval })
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
    outcome: call.outcome,
    capability: call.capability,
    approval: call.approval
  }
}
