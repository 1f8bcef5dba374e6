import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Agent from "../../src/agent/Agent.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import type { ModelRequest } from "../../src/model/Model.ts"
import { ModelContextTooLong, ModelRateLimited } from "../../src/model/ModelError.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { allowAll } from "../support/authority.ts"

/** Executions of the tools, to count what really ran. */
const ran: Array<string> = []

const add = Tool.make({
  name: "add",
  description: "adds two numbers",
  input: Schema.Struct({ a: Schema.Finite, b: Schema.Finite }),
  output: Schema.Struct({ sum: Schema.Finite }),
  semantics: "readOnly",
  timeoutMs: 1000,
  run: ({ a, b }, ctx) =>
    Effect.sync(() => {
      ran.push(ctx.idempotencyKey)
      return { sum: a + b }
    })
})

const deploy = Tool.make({
  name: "deploy",
  description: "deploys (unsafe)",
  input: Schema.Struct({ env: Schema.String }),
  output: Schema.String,
  semantics: "unsafe",
  timeoutMs: 1000,
  run: ({ env }, ctx) =>
    Effect.sync(() => {
      ran.push(ctx.idempotencyKey)
      return `deployed to ${env}`
    })
})

const tools = [add, deploy]

/** Lets real asynchronous work (WebCrypto: signatures, argument hashes) finish until `done()`, under the TestClock. */
const until = (what: string, done: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !done(); i++) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    assert.isTrue(done(), `timed out waiting until ${what}`)
  })
const lastMessage = (request: ModelRequest) => request.messages.at(-1)

describe("Agent loop", () => {
  it.effect("a text answer ends the run done, in one batch with its turn", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, { authority: allowAll, model: ScriptedModel.make([{ text: "Hello!" }]), tools })
      const outcome = yield* agent.run("hi")
      assert.strictEqual(outcome.state, "done")
      assert.strictEqual(outcome.text, "Hello!")
      assert.strictEqual(outcome.turns, 1)
      const entries = yield* session.path()
      assert.deepStrictEqual(
        entries.map((e) => e.type),
        ["user", "assistant"]
      )
      assert.strictEqual(session.runs().active(), undefined)
      assert.strictEqual(agent.status().state, "done")
    })
  )

  it.effect("tool calls run after their turn is journaled, and the model sees their results", () =>
    Effect.gen(function* () {
      ran.length = 0
      const seen: Array<ModelRequest> = []
      const model = ScriptedModel.make((request, index) => {
        seen.push(request)
        if (index === 0) return { text: "Adding.", toolCalls: [{ name: "add", input: { a: 2, b: 3 } }] }
        const last = lastMessage(request)
        return { text: `It is ${last?.role === "tool" ? last.results[0]?.content : "?"}` }
      })
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools })
      const updates: Array<string> = []
      agent.subscribe((u) => updates.push(u._tag))
      const outcome = yield* agent.run("what is 2+3?")
      assert.strictEqual(outcome.state, "done")
      assert.strictEqual(outcome.text, 'It is {"sum":5}')
      assert.strictEqual(outcome.turns, 2)
      assert.deepStrictEqual(ran, [`keel:${session.id}:run1_t1_c1`])
      assert.deepStrictEqual(
        seen[1]?.messages.map((m) => m.role),
        ["user", "assistant", "tool"]
      )
      for (const tag of ["runStarted", "turnStarted", "turnRecorded", "toolCallStarted", "toolCallFinished", "runEnded"]) assert.include(updates, tag)
      // The turn record precedes the call's start in the journal.
      const call = session.calls().get("run1_t1_c1")
      assert.strictEqual(call?.state, "succeeded")
    })
  )

  it.effect("a malformed tool call and an unknown tool become error results the model sees; the run goes on", () =>
    Effect.gen(function* () {
      let shown = ""
      const model = ScriptedModel.make((request, index) => {
        if (index === 0)
          return {
            toolCalls: [
              { name: "add", malformed: '{"a": 1, "b":' },
              { name: "nope", input: {} }
            ]
          }
        const last = lastMessage(request)
        shown = last?.role === "tool" ? last.results.map((r) => `${r.isError}:${r.content}`).join(" | ") : ""
        return { text: "sorry" }
      })
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools })
      const outcome = yield* agent.run("go")
      assert.strictEqual(outcome.state, "done")
      assert.match(shown, /^true:invalidInput: the arguments are not a JSON object/)
      assert.match(shown, /true:unknownTool: there is no tool named "nope"/)
    })
  )

  it.effect("a call whose capability demands approval waits for a person: silence expires it; an approver's yes runs it once", () =>
    Effect.gen(function* () {
      ran.length = 0
      const script = () => [{ toolCalls: [{ name: "deploy", input: { env: "prod" } }] }, { text: "ok" }]
      const { authority } = yield* Authority.issue([Caveat.needsApproval(["tester"], { tools: ["deploy"] })], { approvalTimeoutMs: 60_000 })
      const s1 = yield* Session.openMemory()
      const a1 = yield* Agent.make(s1, { authority, model: ScriptedModel.make(script()), tools })
      const f1 = yield* Effect.forkChild(a1.run("ship it"))
      yield* until("the call awaits approval", () => s1.calls().get("run1_t1_c1")?.state === "awaitingApproval")
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(s1.calls().get("run1_t1_c1")?.state, "awaitingApproval")
      yield* TestClock.adjust("2 seconds")
      yield* until(
        `the first run ends (call ${s1.calls().get("run1_t1_c1")?.state}, run ${s1.runs().get("run1")?.state})`,
        () => s1.runs().get("run1")?.state === "done"
      )
      assert.strictEqual((yield* Fiber.join(f1)).state, "done")
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(s1.calls().get("run1_t1_c1")?.state, "expired")

      const s2 = yield* Session.openMemory()
      const asked: Array<string> = []
      const a2 = yield* Agent.make(s2, {
        authority,
        model: ScriptedModel.make(script()),
        tools,
        ask: (q) =>
          Effect.sync(() => {
            asked.push(`${q.tool} by ${q.approvers.join()}`)
            return { approve: true, by: "tester" }
          })
      })
      assert.strictEqual((yield* a2.run("ship it")).state, "done")
      assert.deepStrictEqual(asked, ["deploy by tester"])
      assert.deepStrictEqual(ran, [`keel:${s2.id}:run1_t1_c1`])
      assert.strictEqual(s2.calls().get("run1_t1_c1")?.approval?.decidedBy, "tester")

      // A yes from someone who may not approve does not count: journaled, ignored, and the call expires.
      const s3 = yield* Session.openMemory()
      const a3 = yield* Agent.make(s3, { authority, model: ScriptedModel.make(script()), tools, ask: () => Effect.succeed({ approve: true, by: "mallory" }) })
      const f3 = yield* Effect.forkChild(a3.run("ship it"))
      yield* until("mallory's answer is ignored", () => s3.calls().all().length > 0 && s3.runs().get("run1")?.state === "acting")
      yield* TestClock.adjust("61 seconds")
      yield* until(`the third run ends (call ${s3.calls().get("run1_t1_c1")?.state})`, () => s3.runs().get("run1")?.state === "done")
      assert.strictEqual((yield* Fiber.join(f3)).state, "done")
      assert.strictEqual(s3.calls().get("run1_t1_c1")?.state, "expired")
      assert.strictEqual(ran.length, 1)
    })
  )

  it.effect("a call no capability covers is denied before anything runs; the model sees the missing authority", () =>
    Effect.gen(function* () {
      ran.length = 0
      let shown = ""
      const model = ScriptedModel.make((request, index): ScriptedModel.ScriptedTurn => {
        if (index === 0)
          return {
            toolCalls: [
              { name: "deploy", input: { env: "prod" } },
              { name: "add", input: { a: 1, b: 500 } }
            ]
          }
        const last = lastMessage(request)
        shown = last?.role === "tool" ? last.results.map((r) => r.content).join(" | ") : ""
        return { text: "ok" }
      })
      const { authority } = yield* Authority.issue([Caveat.tools(["add"]), Caveat.range("b", { max: 100 })])
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, { authority, model, tools })
      assert.strictEqual((yield* agent.run("go")).state, "done")
      assert.deepStrictEqual(ran, [])
      assert.strictEqual(session.calls().get("run1_t1_c1")?.state, "denied")
      assert.strictEqual(session.calls().get("run1_t1_c2")?.state, "denied")
      assert.match(shown, /^denied: no capability covers this call: .*deploy/)
      assert.match(shown, /\| denied: no capability covers this call: .*b/)
    })
  )

  it.effect("resume goes on from the journal and never asks the model for a turn it holds", () =>
    Effect.gen(function* () {
      ran.length = 0
      const store = new MemoryStore()
      // First process: the turn is journaled, then the process "dies" before running the call.
      yield* Effect.gen(function* () {
        const session = yield* Session.openMemory(store)
        yield* session.append("user", { text: "what is 1+1?" }, { run: { runId: "run1", budget: Agent.defaultBudget } })
        yield* session.propose("assistant", { text: "Adding." }, [{ callId: "run1_t1_c1", tool: "add", input: { a: 1, b: 1 } }], {
          turn: { runId: "run1", turn: 1, inputTokens: 1, outputTokens: 1, final: false }
        })
      })
      const asked: Array<number> = []
      const model = ScriptedModel.make((request, index) => {
        asked.push(request.messages.length)
        return index === 0 ? { text: "2" } : { text: "never" }
      })
      // The second process takes the lease over (the first one died holding it).
      const session = yield* Session.openMemory(store, { takeover: true })
      assert.strictEqual(session.runs().active()?.state, "acting")
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools })
      const busy = yield* Effect.flip(agent.run("another"))
      assert.strictEqual(busy._tag, "AgentBusy")
      const outcome = yield* agent.resume
      assert.strictEqual(outcome?.state, "done")
      assert.strictEqual(outcome?.turns, 2)
      // One model call, for turn 2, with the call's result in its context.
      assert.deepStrictEqual(asked, [3])
      assert.strictEqual(ran.length, 1)
      assert.strictEqual(yield* agent.resume, undefined)
    })
  )

  it.effect("a restart while asking about the second of two calls asks about that one, and not again about the first", () =>
    Effect.gen(function* () {
      ran.length = 0
      const store = new MemoryStore()
      const { authority } = yield* Authority.issue([Caveat.needsApproval(["me"], { tools: ["deploy"] })])
      // First process: the first call approved, the second asked about, then it "dies".
      yield* Effect.gen(function* () {
        const s = yield* Session.openMemory(store)
        const a = yield* Agent.make(s, {
          authority,
          model: ScriptedModel.make([
            {
              text: "Deploying.",
              toolCalls: [
                { name: "deploy", input: { env: "a" } },
                { name: "deploy", input: { env: "b" } }
              ]
            }
          ]),
          tools: [{ ...deploy, run: () => Effect.never }],
          concurrency: 2,
          ask: (q) => (q.callId.endsWith("c1") ? Effect.succeed({ approve: true, by: "me" }) : Effect.never)
        })
        const fiber = yield* Effect.forkChild(a.run("ship both"))
        yield* until("the second call is asked about", () => s.runs().get("run1")?.awaiting === "run1_t1_c2")
        assert.strictEqual(s.runs().get("run1")?.state, "waiting")
        assert.strictEqual(s.runs().get("run1")?.awaiting, "run1_t1_c2")
        void fiber // abandoned: the process "dies" here (its fiber never resumes)
      })
      const session = yield* Session.openMemory(store, { takeover: true })
      const asked: Array<string> = []
      const agent = yield* Agent.make(session, {
        authority,
        model: ScriptedModel.make([{ text: "done" }]),
        tools,
        ask: (q) =>
          Effect.sync(() => {
            asked.push(q.callId)
            return { approve: true, by: "me" }
          })
      })
      const outcome = yield* agent.resume
      assert.strictEqual(outcome?.state, "done")
      assert.deepStrictEqual(asked, ["run1_t1_c2"])
      assert.strictEqual(ran.length, 1)
      // c1 had started in the first process (in doubt: an unsafe call is closed, never re-run); c2 ran here.
      assert.strictEqual(session.calls().get("run1_t1_c1")?.outcome?.kind, "failed")
    })
  )

  it.effect("the context is cut at a user entry once the branch exceeds its budget; the run's own prompt is always shown", () =>
    Effect.gen(function* () {
      const seen: Array<ModelRequest> = []
      const model = ScriptedModel.make((request) => {
        seen.push(request)
        return { text: "x".repeat(100) }
      })
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools, contextCharsMax: 500 })
      for (let i = 0; i < 10; i++) yield* agent.run(`question ${i} ${"q".repeat(50)}`)
      const last = seen.at(-1)
      assert.isDefined(last)
      const first = last?.messages[0]
      assert.strictEqual(first?.role, "user")
      assert.match(first?.role === "user" ? first.text : "", /^\(The \d+ earlier entries of this conversation are not shown/)
      assert.isBelow(last?.messages.length ?? 99, 20)
      const lastUser = last?.messages.at(-1)
      assert.match(lastUser?.role === "user" ? lastUser.text : "", /question 9/)
      // A prompt larger than the whole budget is still shown (the model may then say the context is too long).
      yield* agent.run("z".repeat(2000))
      const big = seen.at(-1)?.messages
      assert.strictEqual(big?.length, 1)
    })
  )

  it.effect("a stalled model call ends the run timedOut (modelStalled)", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      const agent = yield* Agent.make(session, {
        authority: allowAll,
        model: ScriptedModel.make([{ stallMs: 60_000, text: "late" }]),
        tools,
        modelStallMs: 5_000
      })
      const fiber = yield* Effect.forkChild(agent.run("hello?"))
      yield* TestClock.adjust("6 seconds")
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome.state, "timedOut")
      assert.strictEqual(outcome.reason, "modelStalled")
    })
  )

  it.effect("the wall-clock budget bounds a run, across model calls", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      const model = ScriptedModel.make([{ stallMs: 50_000, text: "slow" }])
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools, modelStallMs: 100_000, budget: { wallClockMsMax: 10_000 } })
      const fiber = yield* Effect.forkChild(agent.run("hello?"))
      yield* TestClock.adjust("11 seconds")
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome.state, "timedOut")
      assert.strictEqual(outcome.reason, "wallClock")
    })
  )

  it.effect("turns and tokens are budgets: a model that never answers ends failed", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      const model = ScriptedModel.make(() => ({ toolCalls: [{ name: "add", input: { a: 1, b: 1 } }] }))
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools, budget: { turnsMax: 3 } })
      const outcome = yield* agent.run("loop forever")
      assert.strictEqual(outcome.state, "failed")
      assert.strictEqual(outcome.reason, "turnsExhausted")
      assert.strictEqual(outcome.turns, 3)

      const s2 = yield* Session.openMemory()
      const greedy = ScriptedModel.make(() => ({ toolCalls: [{ name: "add", input: { a: 1, b: 1 } }], usage: { inputTokens: 600, outputTokens: 0 } }))
      const a2 = yield* Agent.make(s2, { authority: allowAll, model: greedy, tools, budget: { tokensMax: 1000 } })
      const o2 = yield* a2.run("spend")
      assert.strictEqual(o2.reason, "tokensExhausted")
      assert.strictEqual(o2.turns, 2)
    })
  )

  it.effect("model errors: retryable ones are retried, a context too long fails the run with its reason", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      const model = ScriptedModel.make([{ error: new ModelRateLimited({ message: "slow down", retryAfterMs: 2000 }) }, { text: "fine" }])
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools })
      const fiber = yield* Effect.forkChild(agent.run("hi"))
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).text, "fine")

      const s2 = yield* Session.openMemory()
      const a2 = yield* Agent.make(s2, {
        authority: allowAll,
        model: ScriptedModel.make([{ error: new ModelContextTooLong({ message: "prompt is too long" }) }]),
        tools
      })
      const o2 = yield* a2.run("a very long story")
      assert.strictEqual(o2.state, "failed")
      assert.strictEqual(o2.reason, "contextTooLong")
    })
  )

  it.effect("interruption journals cancelled, settles the turn's calls, and the next run works", () =>
    Effect.gen(function* () {
      const session = yield* Session.openMemory()
      let index = 0
      const model = ScriptedModel.make(() => (index++ === 0 ? { stallMs: 1_000_000, text: "never" } : { text: "back" }))
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools, modelStallMs: 2_000_000 })
      const fiber = yield* Effect.forkChild(agent.run("think hard"))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      const run = session.runs().get("run1")
      assert.strictEqual(run?.state, "cancelled")
      const next = yield* agent.run("again")
      assert.strictEqual(next.state, "done")
      assert.strictEqual(next.text, "back")
    })
  )

  it.effect("interrupted while a person is asked: the call is rejected and the run cancelled", () =>
    Effect.gen(function* () {
      ran.length = 0
      const session = yield* Session.openMemory()
      const model = ScriptedModel.make([{ toolCalls: [{ name: "deploy", input: { env: "prod" } }] }])
      const { authority } = yield* Authority.issue([Caveat.needsApproval(["me"], { tools: ["deploy"] })])
      const agent = yield* Agent.make(session, { authority, model, tools, ask: () => Effect.never })
      const fiber = yield* Effect.forkChild(agent.run("ship"))
      yield* until("the run waits", () => agent.status().state === "waiting")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(session.runs().get("run1")?.state, "cancelled")
      assert.strictEqual(session.calls().get("run1_t1_c1")?.state, "rejected")
      assert.deepStrictEqual(ran, [])
    })
  )
})
