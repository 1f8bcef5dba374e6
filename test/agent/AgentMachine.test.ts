import { assert, describe, it } from "@effect/vitest"
import { type AgentMachineEvent, agentMachine, initialRun, type RunSnapshot, type RunState, reduceRun, transitionRun } from "../../src/agent/AgentMachine.ts"

const states: ReadonlyArray<RunState> = ["idle", "thinking", "acting", "waiting", "done", "cancelled", "failed", "timedOut"]
const budget = { turnsMax: 2, toolCallsPerTurnMax: 4, wallClockMsMax: 1000, tokensMax: 1000 }

/** Every event shape over small ranges of turn numbers and call ids. */
function events(): Array<AgentMachineEvent> {
  const out: Array<AgentMachineEvent> = [
    { _tag: "agent.run.started", runId: "r", entryId: 1, branch: "main", budget, time: 0 },
    { _tag: "agent.run.done", runId: "r", time: 0 },
    { _tag: "agent.run.cancelled", runId: "r", reason: "x", time: 0 },
    { _tag: "agent.run.failed", runId: "r", reason: "model", message: "x", time: 0 },
    { _tag: "agent.run.timedOut", runId: "r", reason: "wallClock", message: "x", time: 0 }
  ]
  for (const turn of [1, 2, 3])
    for (const callIds of [[], ["a"], ["a", "b"]])
      out.push({ _tag: "agent.turn.recorded", runId: "r", turn, entryId: 2, callIds, inputTokens: 1, outputTokens: 1, time: 0 })
  for (const c of ["a", "b", "z"]) {
    out.push({ _tag: "agent.call.settled", callId: c })
    out.push({ _tag: "agent.run.waiting", runId: "r", forCall: c, question: "?", time: 0 })
    out.push({ _tag: "agent.run.answered", runId: "r", forCall: c, answer: "yes", by: "t", time: 0 })
  }
  return out
}

function snapshots(): Array<RunSnapshot> {
  const out: Array<RunSnapshot> = []
  for (const value of states)
    for (const turns of [0, 1, 2])
      for (const pending of [[], ["a"], ["b"], ["a", "b"]])
        for (const lastTurnCalls of [0, 1, 2])
          for (const awaiting of ["", "a", "b"]) out.push({ value, context: { turns, turnsMax: 2, pending, lastTurnCalls, awaiting } })
  return out
}

describe("Agent machine", () => {
  it("reduceRun agrees with XState's transition for every state, context and event", () => {
    let accepted = 0
    let compared = 0
    for (const snapshot of snapshots()) {
      for (const event of events()) {
        const fast = reduceRun(snapshot, event)
        const reference = transitionRun(snapshot, event)
        assert.deepStrictEqual(fast, reference, `${snapshot.value} ${JSON.stringify(snapshot.context)} + ${JSON.stringify(event)}`)
        compared++
        if (reference !== undefined) accepted++
      }
    }
    assert.isAbove(accepted, 500)
    assert.isAbove(compared - accepted, 5000)
  })

  it("the initial snapshot is the machine's initial state and the final states are final", () => {
    assert.strictEqual(agentMachine.config.initial, initialRun.value)
    for (const s of ["done", "cancelled", "failed", "timedOut"] as const) assert.strictEqual(agentMachine.states[s]?.type, "final")
  })

  it("a run: thinking → acting → thinking → done, and nothing after the end", () => {
    const steps: Array<AgentMachineEvent> = [
      { _tag: "agent.run.started", runId: "r", entryId: 1, branch: "main", budget, time: 0 },
      { _tag: "agent.turn.recorded", runId: "r", turn: 1, entryId: 2, callIds: ["a"], inputTokens: 1, outputTokens: 1, time: 0 },
      { _tag: "agent.run.waiting", runId: "r", forCall: "a", question: "?", time: 0 },
      { _tag: "agent.run.answered", runId: "r", forCall: "a", answer: "yes", by: "t", time: 0 },
      { _tag: "agent.call.settled", callId: "a" },
      { _tag: "agent.turn.recorded", runId: "r", turn: 2, entryId: 4, callIds: [], inputTokens: 1, outputTokens: 1, time: 0 },
      { _tag: "agent.run.done", runId: "r", time: 0 }
    ]
    let run: RunSnapshot | undefined = initialRun
    const seen: Array<string> = []
    for (const e of steps) {
      run = run === undefined ? undefined : reduceRun(run, e)
      seen.push(run?.value ?? "refused")
    }
    assert.deepStrictEqual(seen, ["thinking", "acting", "waiting", "acting", "thinking", "acting", "done"])
    for (const e of events()) assert.isUndefined(reduceRun(run as RunSnapshot, e))
  })

  it("refuses a turn beyond turnsMax, a re-asked turn, and an end while a call is pending", () => {
    const thinking: RunSnapshot = { value: "thinking", context: { turns: 2, turnsMax: 2, pending: [], lastTurnCalls: 1, awaiting: "" } }
    assert.isUndefined(
      reduceRun(thinking, { _tag: "agent.turn.recorded", runId: "r", turn: 3, entryId: 9, callIds: [], inputTokens: 0, outputTokens: 0, time: 0 })
    )
    assert.isUndefined(
      reduceRun(thinking, { _tag: "agent.turn.recorded", runId: "r", turn: 2, entryId: 9, callIds: [], inputTokens: 0, outputTokens: 0, time: 0 })
    )
    const acting: RunSnapshot = { value: "acting", context: { turns: 1, turnsMax: 2, pending: ["a"], lastTurnCalls: 1, awaiting: "" } }
    assert.isUndefined(reduceRun(acting, { _tag: "agent.run.cancelled", runId: "r", reason: "x", time: 0 }))
    assert.isUndefined(reduceRun(acting, { _tag: "agent.run.done", runId: "r", time: 0 }))
  })
})
