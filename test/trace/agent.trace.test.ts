// Trace validation of the agent loop (design §6): real runs of Agent.make over file sessions,
// traced with Trace.layerMemory / layerNdjson, must be accepted by test/trace/agent.checker.ts
// (models/agent.ts takes every step, with Flush, StartCall and Crash placed by the checker's rule);
// forged traces must be refused, so the checker can fail.
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { AgentConstants } from "../../models/agent.ts"
import * as Agent from "../../src/agent/Agent.ts"
import type { Authority } from "../../src/authority/Authority.ts"
import * as Authorities from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { ModelContextTooLong } from "../../src/model/ModelError.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import * as Trace from "../../src/trace/Trace.ts"
import { allowAll } from "../support/authority.ts"
import { tempDir } from "../support/tmp.ts"
import { type AgentCheckResult, checkAgentTrace, explainAgent, takenNames } from "./agent.checker.ts"

const input = Schema.Struct({ n: Schema.Finite })
const output = Schema.Struct({ n: Schema.Finite })

/** Tools that act at once: `add` (read-only), `deploy` (unsafe: its capability demands a person's yes, `approving`). */
const instant = (name: string, semantics: Tool.Semantics, attemptsMax = 1) =>
  Tool.make({ name, description: name, input, output, semantics, timeoutMs: 60_000, retry: { attemptsMax }, run: ({ n }) => Effect.succeed({ n: n + 1 }) })
const add = instant("add", "readOnly")
const deploy = instant("deploy", "unsafe")

/** A tool that says it entered, then waits for `release` (never, if it is never released). */
const blocking = (name: string, semantics: Tool.Semantics, entered: Deferred.Deferred<void>, release: Deferred.Deferred<void>) =>
  Tool.make({
    name,
    description: name,
    input,
    output,
    semantics,
    timeoutMs: 60_000,
    retry: semantics === "idempotent" ? { attemptsMax: 2 } : {},
    run: ({ n }) => Deferred.succeed(entered, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as({ n }))
  })

const call = (name: string, n = 1) => ({ name, input: { n } })

/** How long a person has to decide on a deploy (then the call expires). */
const APPROVAL_TIMEOUT_MS = 60_000
/** The capability of the runs that deploy: every tool, and a yes from "tester" before a deploy runs. */
const approving = (): Effect.Effect<Authority> =>
  Authorities.issue([Caveat.needsApproval(["tester"], { tools: ["deploy"] })], { approvalTimeoutMs: APPROVAL_TIMEOUT_MS }).pipe(
    Effect.map(({ authority }) => authority),
    Effect.orDie
  )

/** Lets real asynchronous work (WebCrypto: signatures, argument hashes) finish until `done()`, under the TestClock. */
const until = (what: string, done: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !done(); i++) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    assert.isTrue(done(), `timed out waiting until ${what}`)
  })

/** The constants of a check: one run unless said, the budget's turns, the calls of the widest turn, the re-opens. */
const constants = (turnsMax: number, maxCallsPerTurn: number, maxCrashes = 0, runs = 1): AgentConstants => ({
  runs: Array.from({ length: runs }, (_, i) => `r${i + 1}`),
  turnsMax,
  maxCallsPerTurn,
  maxCrashes
})

/** The steps a check took, without the inserted flushes (the checker flushes wherever it may). */
const withoutFlush = (taken: Parameters<typeof takenNames>[0]) => takenNames(taken).filter((t) => t !== "*Flush")

function expectAccepted(result: AgentCheckResult): void {
  assert.isTrue(result.ok, explainAgent(result))
}

function expectRefused(result: AgentCheckResult, at: number, reason: RegExp): void {
  assert.isFalse(result.ok, `expected a refusal, got ${explainAgent(result)}`)
  if (result.ok) return
  assert.strictEqual(result.at, at, explainAgent(result))
  assert.match(result.reason, reason, explainAgent(result))
}

/** `Action(args)` per Agent step and per ToolCall Start / Execute / Recover: readable and comparable. */
const actions = (steps: ReadonlyArray<Trace.Step>): Array<string> =>
  steps
    .filter((s) => s.spec === "Agent" || (s.spec === "ToolCall" && ["Start", "Rerun", "Execute", "Recover"].includes(s.action)))
    .map((s) => {
      const a = s.args
      if (s.action === "Recover") return `ToolCall.Recover[${(a.inDoubt as Array<string>).join(",")}]`
      const what = s.action === "RecordTurn" ? `${a.run},${a.turn},[${(a.calls as Array<string>).join(",")}]` : String(a.call ?? a.run)
      return `${s.spec === "ToolCall" ? "ToolCall." : ""}${s.action}(${what})`
    })

/** `expected` occurs in `seen` in this order (other steps may come between). */
function assertSubsequence(seen: ReadonlyArray<string>, expected: ReadonlyArray<string>): void {
  let at = 0
  for (const s of seen) if (s === expected[at]) at++
  assert.strictEqual(at, expected.length, `expected, in order: ${expected.join(" ")}\n  seen: ${seen.join(" ")}`)
}

/** A session in `dir` with an agent over it, everything traced into `steps`. */
const withAgent = <A, E>(
  steps: Array<Trace.Step>,
  options: Omit<Agent.AgentOptions, "tools"> & { readonly tools?: ReadonlyArray<Tool.AnyTool> },
  body: (agent: Agent.Agent, session: Session.Session) => Effect.Effect<A, E>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const session = yield* Session.openFile(dir, { owner: "w" })
      const agent = yield* Agent.make(session, { tools: [add, deploy], ...options })
      return yield* body(agent, session)
    })
  ).pipe(Effect.provide(Trace.layerMemory(steps)))

/**
 * A process that can die: the journal in a scope of its own, the session over it (no suspend on
 * the way out), its own trace sink. `crash` closes the journal: nothing more reaches the file, and
 * whatever its fibers still do is not traced (a dead process traces nothing).
 */
const openProcess = (dir: string, owner: string, options: Agent.AgentOptions) =>
  Effect.gen(function* () {
    const steps: Array<Trace.Step> = []
    const traced = <A, E>(effect: Effect.Effect<A, E>) => effect.pipe(Effect.provide(Trace.layerMemory(steps)))
    const scope = yield* Scope.make()
    const journal = yield* Journal.openFile(dir, { owner, takeover: true }).pipe(Scope.provide(scope))
    const session = yield* traced(Session.open(journal, { owner, takeover: true }))
    const agent = yield* Agent.make(session, options)
    let dead = false
    return {
      session,
      agent,
      traced,
      /** the steps it traced while alive */
      trace: () => (dead ? [] : [...steps]),
      crash: Effect.suspend(() => {
        const kept = [...steps]
        dead = true
        steps.length = 0
        steps.push(...kept)
        return Scope.close(scope, Exit.void).pipe(Effect.as(kept))
      })
    }
  })

describe("Agent traces of real runs are accepted by the model", () => {
  it.effect("the model answers at once", () => {
    const steps: Array<Trace.Step> = []
    return withAgent(steps, { authority: allowAll, model: ScriptedModel.make([{ text: "hi" }]) }, (agent) => agent.run("hello")).pipe(
      Effect.tap((outcome) =>
        Effect.sync(() => {
          assert.strictEqual(outcome.state, "done")
          assert.deepStrictEqual(actions(steps), ["ToolCall.Recover[]", "StartRun(run1)", "AskModel(run1)", "RecordTurn(run1,1,[])", "Finish(run1)"])
          const result = checkAgentTrace(steps, constants(50, 0))
          expectAccepted(result)
          if (result.ok) assert.deepStrictEqual(withoutFlush(result.taken), ["StartRun(r1)", "AskModel(r1)", "RecordTurn(r1,0)", "Finish(r1)"])
        })
      )
    )
  })

  it.effect("tool calls over two turns, two of them in parallel, then the answer; a second run after it", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("add", 1), call("add", 2)] }, { toolCalls: [call("add", 3)] }, { text: "4 and 5" }, { text: "again" }])
    return withAgent(steps, { authority: allowAll, model, budget: { turnsMax: 3 } }, (agent) => Effect.zip(agent.run("add"), agent.run("more"))).pipe(
      Effect.tap(([first, second]) =>
        Effect.sync(() => {
          assert.strictEqual(first.state, "done")
          assert.strictEqual(first.turns, 3)
          assert.strictEqual(second.state, "done")
          const seen = actions(steps)
          for (const s of [
            "ToolCall.Start(run1_t1_c1)",
            "ToolCall.Start(run1_t1_c2)",
            "SettleCall(run1_t1_c2)",
            "RecordTurn(run1,2,[run1_t2_c1])",
            "StartRun(run2)"
          ])
            assert.include(seen, s)
          const result = checkAgentTrace(steps, constants(3, 2, 0, 2))
          expectAccepted(result)
          if (result.ok) {
            // StartCall is taken at the flush of each call's started record (inserted, marked *).
            assert.includeMembers(takenNames(result.taken), ["*StartCall(r1.1.1)", "*StartCall(r1.1.2)", "*StartCall(r1.2.1)", "Finish(r2)"])
          }
        })
      )
    )
  })

  it.effect("a person asked twice: yes runs the first call, no rejects the second (Wait, Answer, SettleCall)", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("deploy", 1), call("deploy", 2)] }, { text: "one deployed" }])
    let asked = 0
    const ask = () => Effect.sync((): Agent.Answer => ({ approve: asked++ === 0, by: "tester" }))
    return Effect.gen(function* () {
      const authority = yield* approving()
      const outcome = yield* withAgent(steps, { authority, model, ask }, (agent) => agent.run("ship both"))
      assert.strictEqual(outcome.state, "done")
      const seen = actions(steps)
      const at = (s: string) => seen.indexOf(s)
      // One question at a time; the calls of a turn run concurrently, so the first may start before the second is asked about.
      assert.isBelow(at("Answer(run1_t1_c1)"), at("Wait(run1_t1_c2)"))
      assert.isBelow(at("Answer(run1_t1_c1)"), at("ToolCall.Start(run1_t1_c1)"))
      assert.isBelow(at("Answer(run1_t1_c2)"), at("SettleCall(run1_t1_c2)"))
      assert.notInclude(seen, "ToolCall.Start(run1_t1_c2)")
      expectAccepted(checkAgentTrace(steps, constants(50, 2)))
    })
  })

  it.effect("nobody to ask: the question is journaled, nobody answers, and the call expires at its deadline (a rejection)", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("deploy")] }, { text: "not deployed" }])
    return Effect.gen(function* () {
      const authority = yield* approving()
      yield* withAgent(steps, { authority, model }, (agent, session) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.run("ship"))
          yield* until("the run waits", () => session.runs().get("run1")?.state === "waiting")
          yield* TestClock.adjust(APPROVAL_TIMEOUT_MS + 1_000)
          assert.strictEqual((yield* Fiber.join(fiber)).state, "done")
          assert.strictEqual(session.calls().get("run1_t1_c1")?.state, "expired")
        })
      )
      const seen = actions(steps)
      assertSubsequence(seen, ["Wait(run1_t1_c1)", "SettleCall(run1_t1_c1)", "AskModel(run1)"])
      assert.notInclude(seen, "Answer(run1_t1_c1)")
      expectAccepted(checkAgentTrace(steps, constants(50, 1)))
    })
  })

  it.effect("cancel mid-turn: a running call is cancelled, an unstarted one rejected, then the run (interruption)", () => {
    const steps: Array<Trace.Step> = []
    return Effect.gen(function* () {
      const entered = yield* Deferred.make<void>()
      const never = yield* Deferred.make<void>()
      const slow = blocking("slow", "idempotent", entered, never)
      const model = ScriptedModel.make([{ toolCalls: [call("slow"), call("deploy")] }])
      const ask = () => Effect.succeed<Agent.Answer>({ approve: true, by: "tester" })
      const authority = yield* approving()
      yield* withAgent(steps, { authority, model, ask, tools: [slow, deploy], concurrency: 1 }, (agent, session) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.run("go"))
          yield* Deferred.await(entered)
          yield* Fiber.interrupt(fiber)
          assert.strictEqual(session.runs().get("run1")?.state, "cancelled")
        })
      )
      const seen = actions(steps)
      assertSubsequence(seen, ["ToolCall.Execute(run1_t1_c1)", "SettleCall(run1_t1_c1)", "SettleCall(run1_t1_c2)", "Cancel(run1)"])
      expectAccepted(checkAgentTrace(steps, constants(50, 2)))
    })
  })

  it.effect("cancel while a person is asked: the request is withdrawn (the call settled), then the run; the other call ran meanwhile", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("add"), call("deploy")] }])
    return Effect.gen(function* () {
      const authority = yield* approving()
      yield* withAgent(steps, { authority, model, ask: () => Effect.never }, (agent, session) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.run("go"))
          yield* until("the run waits", () => session.runs().get("run1")?.state === "waiting")
          assert.strictEqual(agent.status().state, "waiting")
          yield* Fiber.interrupt(fiber)
          assert.strictEqual(session.calls().get("run1_t1_c2")?.state, "rejected")
        })
      )
      const seen = actions(steps)
      // The calls of a turn run concurrently: add ran while deploy awaited its approval.
      assertSubsequence(seen, ["ToolCall.Start(run1_t1_c1)", "SettleCall(run1_t1_c1)", "Cancel(run1)"])
      assertSubsequence(seen, ["Wait(run1_t1_c2)", "SettleCall(run1_t1_c2)", "Cancel(run1)"])
      assert.notInclude(seen, "ToolCall.Start(run1_t1_c2)")
      expectAccepted(checkAgentTrace(steps, constants(50, 2)))
    })
  })

  it.effect("a model error fails the run (Fail with a request in flight)", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("add")] }, { error: new ModelContextTooLong({ message: "too long" }) }])
    return withAgent(steps, { authority: allowAll, model }, (agent) => agent.run("go")).pipe(
      Effect.tap((outcome) =>
        Effect.sync(() => {
          assert.strictEqual(outcome.reason, "contextTooLong")
          assert.deepStrictEqual(actions(steps).slice(-2), ["AskModel(run1)", "Fail(run1)"])
          expectAccepted(checkAgentTrace(steps, constants(50, 1)))
        })
      )
    )
  })

  it.effect("a stalled model times the run out (TimeOut with a request in flight)", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ stallMs: 60_000, text: "late" }])
    return withAgent(steps, { authority: allowAll, model, modelStallMs: 5_000 }, (agent) =>
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(agent.run("hello?"))
        yield* TestClock.adjust("6 seconds")
        return yield* Fiber.join(fiber)
      })
    ).pipe(
      Effect.tap((outcome) =>
        Effect.sync(() => {
          assert.strictEqual(outcome.reason, "modelStalled")
          assert.deepStrictEqual(actions(steps).slice(-2), ["AskModel(run1)", "TimeOut(run1)"])
          expectAccepted(checkAgentTrace(steps, constants(50, 0)))
        })
      )
    )
  })

  it.effect("the wall clock runs out during a model call (TimeOut, the deadline seen by the call's timeout)", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ stallMs: 50_000, text: "slow" }])
    return withAgent(steps, { authority: allowAll, model, modelStallMs: 100_000, budget: { wallClockMsMax: 10_000 } }, (agent) =>
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(agent.run("hello?"))
        yield* TestClock.adjust("11 seconds")
        return yield* Fiber.join(fiber)
      })
    ).pipe(
      Effect.tap((outcome) =>
        Effect.sync(() => {
          assert.strictEqual(outcome.reason, "wallClock")
          expectAccepted(checkAgentTrace(steps, constants(50, 0)))
        })
      )
    )
  })

  it.effect("the wall clock runs out while a call runs: the call finishes, nothing more starts, the run times out (Exhaust, TimeOut)", () => {
    const steps: Array<Trace.Step> = []
    return Effect.gen(function* () {
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const slow = blocking("slow", "idempotent", entered, release)
      const model = ScriptedModel.make([{ toolCalls: [call("slow")] }, { text: "never asked" }])
      const outcome = yield* withAgent(steps, { authority: allowAll, model, tools: [slow], budget: { wallClockMsMax: 10_000 } }, (agent) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.run("go"))
          yield* Deferred.await(entered)
          yield* TestClock.adjust("11 seconds")
          yield* Deferred.succeed(release, undefined)
          return yield* Fiber.join(fiber)
        })
      )
      assert.strictEqual(outcome.state, "timedOut")
      assert.deepStrictEqual(actions(steps).slice(-3), ["SettleCall(run1_t1_c1)", "Exhaust(run1)", "TimeOut(run1)"])
      expectAccepted(checkAgentTrace(steps, constants(50, 1)))
    })
  })

  it.effect("the deadline passes while a person is asked about the first of two calls: its request is withdrawn, and nobody is asked about the second", () => {
    const steps: Array<Trace.Step> = []
    const model = ScriptedModel.make([{ toolCalls: [call("deploy", 1), call("deploy", 2)] }])
    return Effect.gen(function* () {
      const authority = yield* approving()
      const outcome = yield* withAgent(steps, { authority, model, ask: () => Effect.never, budget: { wallClockMsMax: 10_000 } }, (agent, session) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(agent.run("ship"))
          yield* until(
            "the run waits and both calls await approval",
            () => session.runs().get("run1")?.state === "waiting" && session.calls().get("run1_t1_c2")?.state === "awaitingApproval"
          )
          yield* TestClock.adjust("11 seconds")
          return yield* Fiber.join(fiber)
        })
      )
      assert.strictEqual(outcome.state, "timedOut")
      // Until the fix in act (issue 4), the loop went on to ask about run1_t1_c2 after the deadline: Wait over budget. And
      // until askAbout watched the run's deadline again (issue 5's merge), the run waited past it for the approval's deadline.
      assert.deepStrictEqual(actions(steps).slice(-5), [
        "Wait(run1_t1_c1)",
        "Exhaust(run1)",
        "SettleCall(run1_t1_c1)",
        "SettleCall(run1_t1_c2)",
        "TimeOut(run1)"
      ])
      expectAccepted(checkAgentTrace(steps, constants(50, 2)))
    })
  })

  it.effect("turns and tokens run out: Fail (turns spent), Exhaust + Fail (tokens)", () => {
    const turns: Array<Trace.Step> = []
    const tokens: Array<Trace.Step> = []
    const loop = () => ScriptedModel.make(() => ({ toolCalls: [call("add")], usage: { inputTokens: 600, outputTokens: 0 } }))
    return Effect.gen(function* () {
      const a = yield* withAgent(turns, { authority: allowAll, model: loop(), budget: { turnsMax: 2 } }, (agent) => agent.run("loop"))
      const b = yield* withAgent(tokens, { authority: allowAll, model: loop(), budget: { tokensMax: 1000 } }, (agent) => agent.run("spend"))
      assert.strictEqual(a.reason, "turnsExhausted")
      assert.strictEqual(b.reason, "tokensExhausted")
      assert.strictEqual(actions(turns).at(-1), "Fail(run1)")
      // The second turn's tokens spend the budget: its call is not run but rejected (act), then the run fails (think).
      assert.deepStrictEqual(actions(tokens).slice(-4), ["RecordTurn(run1,2,[run1_t2_c1])", "Exhaust(run1)", "SettleCall(run1_t2_c1)", "Fail(run1)"])
      expectAccepted(checkAgentTrace(turns, constants(2, 1)))
      expectAccepted(checkAgentTrace(tokens, constants(50, 1)))
    })
  })

  it.effect("crash while a call runs, then re-open and resume: the call in doubt is re-run (Recover = Restart after a Crash)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const entered = yield* Deferred.make<void>()
        const never = yield* Deferred.make<void>()
        const model = () => ScriptedModel.make((_, i) => (i === 0 ? { toolCalls: [call("slow")] } : { text: "done" }))
        const first = yield* openProcess(dir, "first", { authority: allowAll, model: model(), tools: [blocking("slow", "idempotent", entered, never)] })
        yield* first.traced(Effect.forkDetach(first.agent.run("go")))
        yield* Deferred.await(entered)
        const before = yield* first.crash // the run's fiber stays blocked in its tool, never resumed
        const second = yield* openProcess(dir, "second", {
          authority: allowAll,
          model: ScriptedModel.make([{ text: "done" }]),
          tools: [instant("slow", "idempotent", 2)]
        })
        const outcome = yield* second.traced(second.agent.resume)
        assert.strictEqual(outcome?.state, "done")
        const steps = [...before, ...second.trace()]
        assertSubsequence(actions(steps), [
          "ToolCall.Execute(run1_t1_c1)",
          "ToolCall.Recover[run1_t1_c1]",
          "ToolCall.Rerun(run1_t1_c1)",
          "SettleCall(run1_t1_c1)",
          "AskModel(run1)",
          "Finish(run1)"
        ])
        const result = checkAgentTrace(steps, constants(50, 1, 1))
        expectAccepted(result)
        if (result.ok) assertSubsequence(takenNames(result.taken), ["*StartCall(r1.1.1)", "*Crash", "Restart", "SettleCall(r1.1.1)", "Finish(r1)"])
        yield* second.crash
      })
    )
  )

  it.effect("crash while a person is asked, then resume: asked again (no second question journaled), yes, the call runs", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const asking = yield* Deferred.make<void>()
        const authority = yield* approving()
        const first = yield* openProcess(dir, "first", {
          authority,
          model: ScriptedModel.make([{ toolCalls: [call("deploy")] }]),
          tools: [deploy],
          ask: () => Deferred.succeed(asking, undefined).pipe(Effect.andThen(Effect.never))
        })
        yield* first.traced(Effect.forkDetach(first.agent.run("ship")))
        yield* Deferred.await(asking)
        const before = yield* first.crash
        const second = yield* openProcess(dir, "second", {
          authority,
          model: ScriptedModel.make([{ text: "shipped" }]),
          tools: [deploy],
          ask: () => Effect.succeed<Agent.Answer>({ approve: true, by: "tester" })
        })
        const outcome = yield* second.traced(second.agent.resume)
        assert.strictEqual(outcome?.state, "done")
        const steps = [...before, ...second.trace()]
        const seen = actions(steps)
        assert.strictEqual(seen.filter((s) => s === "Wait(run1_t1_c1)").length, 1)
        assertSubsequence(seen, ["Wait(run1_t1_c1)", "ToolCall.Recover[]", "Answer(run1_t1_c1)", "ToolCall.Start(run1_t1_c1)", "Finish(run1)"])
        expectAccepted(checkAgentTrace(steps, constants(50, 1, 1)))
        yield* second.crash
      })
    )
  )

  it.effect("an NDJSON trace file of a run with a call, read back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const file = path.join(dir, "trace.ndjson")
        yield* Effect.gen(function* () {
          const session = yield* Session.openFile(path.join(dir, "session"), { owner: "w" })
          const agent = yield* Agent.make(session, {
            authority: allowAll,
            model: ScriptedModel.make([{ toolCalls: [call("add")] }, { text: "2" }]),
            tools: [add]
          })
          assert.strictEqual((yield* agent.run("1+1")).state, "done")
        }).pipe(Effect.scoped, Effect.provide(Trace.layerNdjson(file)))
        assert.isTrue(fs.existsSync(file))
        const steps = Trace.readNdjson(file)
        assert.include(actions(steps), "SettleCall(run1_t1_c1)")
        expectAccepted(checkAgentTrace(steps, constants(50, 1)))
      })
    )
  )
})

// ---------------------------------------------------------------------------------------------
// The checker can fail: forged traces are refused.
// ---------------------------------------------------------------------------------------------

const agent = (action: string, args: Trace.Step["args"]): Trace.Step => ({ spec: "Agent", action, args })
const toolCall = (action: string, args: Trace.Step["args"]): Trace.Step => ({ spec: "ToolCall", action, args })
const recover = (inDoubt: ReadonlyArray<string> = []) => toolCall("Recover", { inDoubt: [...inDoubt] })
const c1 = "run1_t1_c1"
/** A run whose one call runs, then the answer. */
const reference: ReadonlyArray<Trace.Step> = [
  recover(),
  agent("StartRun", { run: "run1" }),
  agent("AskModel", { run: "run1", turn: 1 }),
  agent("RecordTurn", { run: "run1", turn: 1, calls: [c1] }),
  toolCall("Start", { call: c1, attempt: 1 }),
  toolCall("Execute", { call: c1, attempt: 1 }),
  toolCall("Succeed", { call: c1, attempt: 1 }),
  agent("SettleCall", { call: c1 }),
  agent("AskModel", { run: "run1", turn: 2 }),
  agent("RecordTurn", { run: "run1", turn: 2, calls: [] }),
  agent("Finish", { run: "run1" })
]
const K = constants(3, 2, 2)

describe("the Agent checker refuses traces the model cannot take", () => {
  it("accepts the reference trace (so the refusals below are about the forgery)", () => {
    const result = checkAgentTrace(reference, K)
    expectAccepted(result)
    if (result.ok) {
      assert.deepStrictEqual(withoutFlush(result.taken), [
        "StartRun(r1)",
        "AskModel(r1)",
        "RecordTurn(r1,1)",
        "*StartCall(r1.1.1)",
        "SettleCall(r1.1.1)",
        "AskModel(r1)",
        "RecordTurn(r1,0)",
        "Finish(r1)"
      ])
    }
  })

  it("a call started before its turn is recorded (StartCall before RecordTurn)", () => {
    const forged = [...reference.slice(0, 3), reference[4], reference[5], reference[3], ...reference.slice(6)] as Array<Trace.Step>
    expectRefused(checkAgentTrace(forged, K), 4, /StartCall\(r1\.1\.1\) is not enabled: r1 thinking/)
  })

  it("a call started before its turn is durable: the turn is asked again after the crash that the start survived", () => {
    const forged = [...reference.slice(0, 6), recover([c1]), agent("AskModel", { run: "run1", turn: 1 })]
    // Either the turn was durable (then it is not asked again) or it was not (then the call cannot be in doubt).
    expectRefused(checkAgentTrace(forged, K), 7, /AskModel\(r1\) is not enabled|the model's next turn is 2/)
    const lost = [...reference.slice(0, 4), recover([]), agent("AskModel", { run: "run1", turn: 1 })]
    expectAccepted(checkAgentTrace(lost, K))
  })

  it("a turn asked again, in the same process and after it was recorded", () => {
    const forged = [...reference.slice(0, 4), agent("AskModel", { run: "run1", turn: 1 })]
    expectRefused(checkAgentTrace(forged, K), 4, /AskModel\(r1\) (is not enabled|asks for turn 1)/)
    const renumbered = [...reference.slice(0, 3), agent("RecordTurn", { run: "run1", turn: 2, calls: [] })]
    expectRefused(checkAgentTrace(renumbered, K), 3, /records turn 2, the model's next turn is 1/)
  })

  it("an answer without its question, a question after the deadline, a call started after the deadline", () => {
    expectRefused(checkAgentTrace([...reference.slice(0, 4), agent("Answer", { run: "run1", call: c1 })], K), 4, /Answer\(r1\.1\.1\) is not enabled/)
    const exhausted = [...reference.slice(0, 4), agent("Exhaust", { run: "run1" })]
    expectRefused(checkAgentTrace([...exhausted, agent("Wait", { run: "run1", call: c1 })], K), 5, /Wait\(r1\.1\.1\) is not enabled.*over budget/)
    expectRefused(checkAgentTrace([...exhausted, reference[4] as Trace.Step, reference[5] as Trace.Step], K), 6, /StartCall\(r1\.1\.1\) is not enabled/)
    // Once is enough: a later process traces Exhaust again for the same run (stuttering).
    expectAccepted(checkAgentTrace([...exhausted, agent("Exhaust", { run: "run1" }), agent("SettleCall", { call: c1 }), agent("TimeOut", { run: "run1" })], K))
  })

  it("an end with a call pending, two ends, a time-out with no request and no deadline", () => {
    expectRefused(checkAgentTrace([...reference.slice(0, 4), agent("Cancel", { run: "run1" })], K), 4, /Cancel\(r1\) is not enabled: r1 acting/)
    expectRefused(checkAgentTrace([...reference, agent("Cancel", { run: "run1" })], K), 11, /Cancel\(r1\) is not enabled: r1 done/)
    expectRefused(checkAgentTrace([...reference.slice(0, 2), agent("TimeOut", { run: "run1" })], K), 2, /TimeOut\(r1\) is not enabled/)
    expectAccepted(checkAgentTrace([...reference.slice(0, 3), agent("TimeOut", { run: "run1" })], K))
  })

  it("a second run while the first is unfinished, a call settled twice, an attempt's outcome for a call that never started", () => {
    expectRefused(
      checkAgentTrace([...reference.slice(0, 3), agent("StartRun", { run: "run2" })], K),
      3,
      /run run2 is run number 2|StartRun\(r2\) is not enabled/
    )
    expectRefused(
      checkAgentTrace([...reference.slice(0, 4), agent("StartRun", { run: "run2" })], { ...K, runs: ["r1", "r2"] }),
      4,
      /StartRun\(r2\) is not enabled/
    )
    expectRefused(checkAgentTrace([...reference.slice(0, 8), agent("SettleCall", { call: c1 })], K), 8, /SettleCall\(r1\.1\.1\) is not enabled/)
    expectRefused(checkAgentTrace([...reference.slice(0, 4), toolCall("Succeed", { call: c1, attempt: 1 })], K), 4, /never started/)
  })

  it("a Recover whose calls in doubt are not the model's open calls, and more re-opens than maxCrashes", () => {
    expectRefused(checkAgentTrace([...reference.slice(0, 6), recover([])], K), 6, /finds \[\] in doubt, the model's open calls are \[r1\.1\.1\]/)
    expectRefused(checkAgentTrace([recover(["x"])], K), 0, /the first open finds calls in doubt/)
    expectRefused(
      checkAgentTrace([...reference.slice(0, 2), recover(), recover()], { ...K, maxCrashes: 1 }),
      3,
      /Crash \(inserted before Recover\) is disabled/
    )
  })
})
