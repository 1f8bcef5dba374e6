import { assert, describe, it } from "@effect/vitest"
import { transition } from "xstate"
import type { Event } from "../../src/Event.ts"
import { initialSnapshot, type SessionSnapshot, sessionMachine, statusOf, step } from "../../src/session/SessionMachine.ts"

const events: ReadonlyArray<Event> = [
  { _tag: "lease.acquired", epoch: 3, owner: "o", time: 0 },
  { _tag: "entry.appended", branch: "main", parentId: 0, type: "m", time: 0, payload: null },
  { _tag: "branch.forked", branch: "b", from: 0, time: 0 },
  { _tag: "branch.switched", branch: "b", time: 0 },
  { _tag: "entry.labelled", entryId: 1, label: "l", time: 0 },
  { _tag: "session.suspended", time: 0 },
  { _tag: "session.closed", time: 0 }
]

const inState = (value: string): SessionSnapshot => sessionMachine.resolveState({ value, context: { epoch: 1 } })

describe("Session machine", () => {
  it("has the lifecycle of the design: open → active ⇄ suspended → closed", () => {
    let s = initialSnapshot()
    assert.strictEqual(statusOf(s), "open")
    s = step(s, events[0] as Event) as SessionSnapshot
    assert.deepStrictEqual([statusOf(s), s.context.epoch], ["active", 3])
    s = step(s, events[5] as Event) as SessionSnapshot
    assert.strictEqual(statusOf(s), "suspended")
    s = step(s, events[0] as Event) as SessionSnapshot
    assert.strictEqual(statusOf(s), "active")
    s = step(s, events[6] as Event) as SessionSnapshot
    assert.strictEqual(statusOf(s), "closed")
    assert.strictEqual(s.status, "done")
  })

  it("the cached step agrees with XState's transition for every state and event", () => {
    for (const value of ["open", "active", "suspended", "closed"]) {
      for (const event of events) {
        const snapshot = inState(value)
        const machineEvent = event._tag === "lease.acquired" ? { type: event._tag, epoch: event.epoch } : { type: event._tag }
        const expected = snapshot.can(machineEvent) ? transition(sessionMachine, snapshot, machineEvent)[0] : undefined
        // Twice: the first call fills the cache, the second uses it.
        for (let i = 0; i < 2; i++) {
          const actual = step(inState(value), event)
          assert.strictEqual(actual === undefined, expected === undefined, `${value} ${event._tag}`)
          if (actual !== undefined && expected !== undefined) {
            assert.deepStrictEqual([actual.value, actual.context], [expected.value, expected.context], `${value} ${event._tag}`)
          }
        }
      }
    }
  })

  it("content is accepted only while active", () => {
    for (const value of ["open", "suspended", "closed"]) {
      for (const event of events.slice(1, 5)) assert.isUndefined(step(inState(value), event), `${value} ${event._tag}`)
    }
    for (const event of events.slice(1, 5)) assert.isDefined(step(inState("active"), event))
  })
})
