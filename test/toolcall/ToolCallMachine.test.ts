import { assert, describe, it } from "@effect/vitest"
import type { ToolCallEvent } from "../../src/Event.ts"
import {
  type CallSnapshot,
  initialCall,
  reduceCall,
  type ToolCallMachineEvent,
  type ToolCallState,
  toolCallMachine,
  transitionCall
} from "../../src/toolcall/ToolCallMachine.ts"

const states: ReadonlyArray<ToolCallState> = [
  "proposed",
  "authorized",
  "denied",
  "awaitingApproval",
  "approved",
  "rejected",
  "expired",
  "started",
  "inDoubt",
  "succeeded",
  "failed",
  "cancelled",
  "timedOut",
  "compensated"
]
const keys = ["k", "other"]
const attempts = [0, 1, 2, 3]

/** Every event shape, over small ranges of attempt, key and flags. */
function events(): Array<ToolCallMachineEvent> {
  const out: Array<ToolCallMachineEvent> = [{ _tag: "recover" }, { _tag: "tool.call.compensated", callId: "c", time: 0 }]
  out.push({ _tag: "tool.call.proposed", callId: "c", entryId: 1, tool: "t", input: null, atomic: false, time: 0 })
  for (const attempt of attempts) {
    for (const key of keys) out.push({ _tag: "tool.call.started", callId: "c", key, attempt, time: 0 } as ToolCallEvent)
    out.push({ _tag: "tool.call.succeeded", callId: "c", attempt, output: null, reconciled: false, time: 0 } as ToolCallEvent)
    for (const retryable of [false, true]) {
      out.push({ _tag: "tool.call.failed", callId: "c", attempt, reason: "error", message: "", retryable, time: 0 } as ToolCallEvent)
    }
    out.push({ _tag: "tool.call.cancelled", callId: "c", attempt, time: 0 } as ToolCallEvent)
    out.push({ _tag: "tool.call.timedOut", callId: "c", attempt, time: 0 } as ToolCallEvent)
  }
  for (const approvalRequired of [false, true])
    out.push({ _tag: "tool.call.authorized", callId: "c", capability: "k1", blocks: ["k1"], approvalRequired, time: 0 })
  out.push({ _tag: "tool.call.denied", callId: "c", reason: "denied", message: "no", time: 0 })
  for (const time of [5, 10, 15]) {
    out.push({ _tag: "tool.call.awaitingApproval", callId: "c", argsHash: "h", approvers: ["a"], deadline: time, time: 0 })
    out.push({ _tag: "tool.call.rejected", callId: "c", by: "a", reason: "no", time })
    out.push({ _tag: "tool.call.expired", callId: "c", deadline: 10, time })
    out.push({ _tag: "tool.call.decisionIgnored", callId: "c", by: "a", decision: "approve", why: "late", time })
    for (const argsHash of ["h", "x"]) out.push({ _tag: "tool.call.approved", callId: "c", by: "a", argsHash, time })
  }
  return out
}

/** Every state with every context in range. */
function snapshots(): Array<CallSnapshot> {
  const out: Array<CallSnapshot> = []
  for (const value of states)
    for (const key of ["", ...keys])
      for (const attempt of attempts)
        for (const retryable of [false, true])
          for (const [argsHash, deadline] of [
            ["", 0],
            ["h", 10]
          ] as const)
            for (const approvalRequired of [false, true]) out.push({ value, context: { key, attempt, retryable, argsHash, deadline, approvalRequired } })
  return out
}

describe("ToolCall machine", () => {
  it("reduceCall agrees with XState's transition for every state, context and event", () => {
    let accepted = 0
    let compared = 0
    for (const snapshot of snapshots()) {
      for (const event of events()) {
        const fast = reduceCall(snapshot, event)
        const reference = transitionCall(snapshot, event)
        assert.deepStrictEqual(fast, reference, `${snapshot.value} ${JSON.stringify(snapshot.context)} + ${JSON.stringify(event)}`)
        compared++
        if (reference !== undefined) accepted++
      }
    }
    // Both refusals and transitions are exercised.
    assert.isAbove(accepted, 50)
    assert.isAbove(compared - accepted, 1000)
  })

  it("the initial snapshot is the machine's initial state", () => {
    const machineInitial = toolCallMachine.getInitialSnapshot({ self: undefined, system: undefined } as never)
    assert.deepStrictEqual(initialCall, { value: machineInitial.value, context: machineInitial.context })
  })

  it("has exactly one way into started: from authorized or approved (or a retry of a started attempt)", () => {
    const into: Array<string> = []
    for (const [name, node] of Object.entries(toolCallMachine.states)) {
      for (const transitions of Object.values(node.on ?? {})) {
        for (const t of transitions as ReadonlyArray<{ target?: ReadonlyArray<{ key: string }>; guard?: unknown }>) {
          // Into started from another state (started's own audit self-loop is not a way in).
          if (name !== "started" && t.target?.some((target) => target.key === "started"))
            into.push(`${name}:${typeof t.guard === "object" ? (t.guard as { type: string }).type : String(t.guard)}`)
        }
      }
    }
    into.sort()
    assert.deepStrictEqual(into, ["approved:firstAttempt", "authorized:firstAttemptUnapproved", "failed:retryableNextAttempt"])
    // And no call is started from proposed, whatever the event.
    for (const event of events()) assert.notStrictEqual(reduceCall(initialCall, event)?.value, "started")
    // A failure from which a retry may start exists only after a started attempt: a rejection before the start is never retryable.
    const rejected = reduceCall(initialCall, {
      _tag: "tool.call.failed",
      callId: "c",
      attempt: 0,
      reason: "invalidInput",
      message: "",
      retryable: true,
      time: 0
    })
    assert.isUndefined(rejected && reduceCall(rejected, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 0 }))
  })

  it("an approval counts for the requested arguments before the deadline; after it the call expires", () => {
    const authorized = reduceCall(initialCall, {
      _tag: "tool.call.authorized",
      callId: "c",
      capability: "k1",
      blocks: ["k1"],
      approvalRequired: false,
      time: 0
    })
    const waiting =
      authorized && reduceCall(authorized, { _tag: "tool.call.awaitingApproval", callId: "c", argsHash: "h", approvers: ["a"], deadline: 10, time: 0 })
    assert.strictEqual(waiting?.value, "awaitingApproval")
    const w = waiting as NonNullable<typeof waiting>
    assert.isUndefined(reduceCall(w, { _tag: "tool.call.approved", callId: "c", by: "a", argsHash: "other", time: 5 }))
    assert.isUndefined(reduceCall(w, { _tag: "tool.call.approved", callId: "c", by: "a", argsHash: "h", time: 10 }))
    assert.isUndefined(reduceCall(w, { _tag: "tool.call.expired", callId: "c", deadline: 10, time: 9 }))
    assert.strictEqual(reduceCall(w, { _tag: "tool.call.approved", callId: "c", by: "a", argsHash: "h", time: 9 })?.value, "approved")
    const expired = reduceCall(w, { _tag: "tool.call.expired", callId: "c", deadline: 10, time: 10 })
    assert.strictEqual(expired?.value, "expired")
    // A decision after the end is recorded and changes nothing.
    assert.deepStrictEqual(
      reduceCall(expired as NonNullable<typeof expired>, {
        _tag: "tool.call.decisionIgnored",
        callId: "c",
        by: "a",
        decision: "approve",
        why: "late",
        time: 11
      }),
      expired
    )
    assert.isUndefined(reduceCall(expired as NonNullable<typeof expired>, { _tag: "tool.call.approved", callId: "c", by: "a", argsHash: "h", time: 11 }))
  })

  it("a call whose capability demands an approval never starts from authorized; a late decision is kept for the audit", () => {
    const authorized = reduceCall(initialCall, { _tag: "tool.call.authorized", callId: "c", capability: "k1", blocks: ["k1"], approvalRequired: true, time: 0 })
    assert.isUndefined(authorized && reduceCall(authorized, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 0 }))
    const waiting =
      authorized && reduceCall(authorized, { _tag: "tool.call.awaitingApproval", callId: "c", argsHash: "h", approvers: ["a"], deadline: 10, time: 0 })
    const approved = waiting && reduceCall(waiting, { _tag: "tool.call.approved", callId: "c", by: "a", argsHash: "h", time: 1 })
    const started = approved && reduceCall(approved, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 2 })
    assert.strictEqual(started?.value, "started")
    const late = { _tag: "tool.call.decisionIgnored", callId: "c", by: "b", decision: "approve", why: "already decided", time: 3 } as const
    assert.deepStrictEqual(started && reduceCall(started, late), started)
    // Without a request there is no decision to ignore.
    const plain = reduceCall(initialCall, { _tag: "tool.call.authorized", callId: "c", capability: "k1", blocks: ["k1"], approvalRequired: false, time: 0 })
    const running = plain && reduceCall(plain, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 0 })
    assert.isUndefined(running && reduceCall(running, late))
  })

  it("has the lifecycle of the design", () => {
    const authorized = reduceCall(initialCall, {
      _tag: "tool.call.authorized",
      callId: "c",
      capability: "k1",
      blocks: ["k1"],
      approvalRequired: false,
      time: 0
    })
    const started = authorized && reduceCall(authorized, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 0 })
    assert.strictEqual(started?.value, "started")
    const failed = started && reduceCall(started, { _tag: "tool.call.failed", callId: "c", attempt: 1, reason: "error", message: "", retryable: true, time: 0 })
    const retried = failed && reduceCall(failed, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 2, time: 0 })
    assert.deepStrictEqual(retried, {
      value: "started",
      context: { key: "k", attempt: 2, retryable: false, argsHash: "", deadline: 0, approvalRequired: false }
    })
    // A retry must keep the key (KeyStableInv) and may not follow a non-retryable failure.
    assert.isUndefined(failed && reduceCall(failed, { _tag: "tool.call.started", callId: "c", key: "new", attempt: 2, time: 0 }))
    const inDoubt = retried && reduceCall(retried, { _tag: "recover" })
    assert.strictEqual(inDoubt?.value, "inDoubt")
  })
})
