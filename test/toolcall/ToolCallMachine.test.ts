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

const states: ReadonlyArray<ToolCallState> = ["proposed", "started", "inDoubt", "succeeded", "failed", "cancelled", "timedOut", "compensated"]
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
  return out
}

/** Every state with every context in range. */
function snapshots(): Array<CallSnapshot> {
  const out: Array<CallSnapshot> = []
  for (const value of states)
    for (const key of ["", ...keys])
      for (const attempt of attempts) for (const retryable of [false, true]) out.push({ value, context: { key, attempt, retryable } })
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

  it("has the lifecycle of the design", () => {
    const started = reduceCall(initialCall, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 1, time: 0 })
    assert.strictEqual(started?.value, "started")
    const failed = started && reduceCall(started, { _tag: "tool.call.failed", callId: "c", attempt: 1, reason: "error", message: "", retryable: true, time: 0 })
    const retried = failed && reduceCall(failed, { _tag: "tool.call.started", callId: "c", key: "k", attempt: 2, time: 0 })
    assert.deepStrictEqual(retried, { value: "started", context: { key: "k", attempt: 2, retryable: false } })
    // A retry must keep the key (KeyStableInv) and may not follow a non-retryable failure.
    assert.isUndefined(failed && reduceCall(failed, { _tag: "tool.call.started", callId: "c", key: "new", attempt: 2, time: 0 }))
    const inDoubt = retried && reduceCall(retried, { _tag: "recover" })
    assert.strictEqual(inDoubt?.value, "inDoubt")
  })
})
