// Trace validation of tool calls (design §6): real executor runs over memory and file sessions,
// traced with Trace.layerMemory / layerNdjson, must be accepted by test/trace/checker.ts (the
// model models/toolCall.ts consumes every step); traces with a step removed, duplicated,
// reordered or altered must be refused, so the checker can fail.
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { ActionName } from "../../models/toolCall.ts"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import * as Saga from "../../src/toolcall/Saga.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import * as Trace from "../../src/trace/Trace.ts"
import { allowAll } from "../support/authority.ts"
import { tempDir } from "../support/tmp.ts"
import { type CallKind, type CheckResult, callIdsOf, checkToolCallTrace, constantsFor, explain } from "./checker.ts"

/** The outside world: every execution of an effect, by idempotency key and attempt. */
class Ledger {
  readonly runs: Array<{ key: string; attempt: number }> = []
  count(key: string): number {
    return this.runs.filter((r) => r.key === key).length
  }
}

const input = Schema.Struct({ n: Schema.Finite })
const output = Schema.Struct({ doubled: Schema.Finite })
/** What an attempt does: "ok" (effect, then success), "fail" / "retryable" (no effect), "hang" (never returns). */
type Script = ReadonlyArray<"ok" | "fail" | "retryable" | "effect-fail" | "hang">

/** Rerunnable tools all allow this many attempts (the model's MaxAttempts is one bound for all calls). */
const ATTEMPTS = 3

function scripted(
  ledger: Ledger,
  name: string,
  semantics: Tool.Semantics,
  script: Script = [],
  extra: Partial<Tool.ToolSpec<typeof input, typeof output>> = {}
) {
  return Tool.make({
    name,
    description: "doubles n",
    input,
    output,
    semantics,
    timeoutMs: 1000,
    retry: semantics === "readOnly" || semantics === "idempotent" ? { attemptsMax: ATTEMPTS, baseMs: 10, capMs: 40 } : {},
    compensate: () => Effect.void,
    run: ({ n }, ctx) =>
      Effect.suspend(() => {
        const step = script[ctx.attempt - 1] ?? "ok"
        if (step === "fail") return Effect.fail(new Tool.ToolFailure({ message: "no", retryable: false }))
        if (step === "retryable") return Effect.fail(new Tool.ToolFailure({ message: "rate limited", retryable: true }))
        if (step === "hang") return Effect.never
        ledger.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
        if (step === "effect-fail") return Effect.fail(new Tool.ToolFailure({ message: "half done", retryable: false }))
        return Effect.succeed({ doubled: n * 2 })
      }),
    ...extra
  })
}

/** A tool whose attempt signals `entered`, optionally performs its effect, then waits for `release` forever. */
function blocking(ledger: Ledger, name: string, semantics: Tool.Semantics, entered: Deferred.Deferred<void>, effectFirst: boolean, reconcile = false) {
  return Tool.make({
    name,
    description: "blocks",
    input,
    output,
    semantics,
    timeoutMs: 1000,
    retry: semantics === "readOnly" || semantics === "idempotent" ? { attemptsMax: ATTEMPTS, baseMs: 10, capMs: 40 } : {},
    compensate: () => Effect.void,
    ...(reconcile
      ? {
          reconcile: ({ n }: { n: number }, ctx: Tool.ToolContext) =>
            Effect.sync(() => (ledger.count(ctx.idempotencyKey) > 0 ? { executed: true as const, output: { doubled: n * 2 } } : { executed: false as const }))
        }
      : {}),
    run: ({ n }, ctx) =>
      Effect.gen(function* () {
        if (ctx.attempt > 1) {
          ledger.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
          return { doubled: n * 2 }
        }
        if (effectFirst) ledger.runs.push({ key: ctx.idempotencyKey, attempt: ctx.attempt })
        yield* Deferred.succeed(entered, undefined)
        return yield* Effect.never
      })
  })
}

const kindOf =
  (tools: ReadonlyArray<Tool.AnyTool>, toolOfCall: Readonly<Record<string, string>>) =>
  (callId: string): CallKind => {
    const tool = tools.find((t) => t.name === toolOfCall[callId])
    // An unknown tool (rejected before any attempt): any semantics will do.
    return { callId, semantics: tool?.semantics ?? "unsafe", reconcile: tool?.reconcile !== undefined }
  }

/** Checks a trace with constants built from the tools of the run (calls in order of first appearance). */
function check(
  steps: ReadonlyArray<Trace.Step>,
  tools: ReadonlyArray<Tool.AnyTool>,
  toolOfCall: Readonly<Record<string, string>>,
  maxCrashes = 4
): CheckResult {
  const kinds = callIdsOf(steps).map(kindOf(tools, toolOfCall))
  return checkToolCallTrace(steps, constantsFor(kinds, { maxAttempts: ATTEMPTS, maxCrashes }))
}

function expectAccepted(result: CheckResult): void {
  assert.isTrue(result.ok, explain(result))
}

function expectRefused(result: CheckResult, at: number, reason: RegExp): void {
  assert.isFalse(result.ok, `expected a refusal, got ${explain(result)}`)
  if (result.ok) return
  assert.strictEqual(result.at, at, explain(result))
  assert.match(result.reason, reason, explain(result))
}

/** `Action(call,attempt[,retryable])` per ToolCall step: readable and comparable. */
const actions = (steps: ReadonlyArray<Trace.Step>): Array<string> =>
  steps
    .filter((s) => s.spec === "ToolCall")
    .map((s) =>
      s.action === "Recover"
        ? `Recover[${(s.args.inDoubt as Array<string>).join(",")}]`
        : `${s.action}(${[s.args.call, s.args.attempt, s.args.retryable].filter((x) => x !== undefined).join(",")})`
    )

/** Runs `check` once the traced run is done (the assertions on its whole trace). */
const afterwards = (check: () => void) => Effect.andThen(Effect.sync(check))
/** The same, given the run's result. */
const checkResult =
  <A>(check: (a: A) => void) =>
  <E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.tap(self, (a) => Effect.sync(() => check(a)))

/** Steps grouped by call (in first-appearance order), for runs whose calls interleave. */
const perCall = (steps: ReadonlyArray<string>): Record<string, Array<string>> => {
  const out: Record<string, Array<string>> = {}
  for (const s of steps) {
    const call = /\(([^,)]*)/.exec(s)?.[1] ?? ""
    const list = out[call] ?? []
    list.push(s)
    out[call] = list
  }
  return out
}

/**
 * Advances the TestClock until `fiber` is done: with a file session the attempts wait for real
 * writes, so a backoff sleep may start only after a single `adjust` has already passed.
 */
const joinAdvancing = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    while (fiber.pollUnsafe() === undefined) {
      yield* TestClock.adjust("50 millis")
      yield* TestClock.withLive(Effect.sleep("1 millis"))
    }
    return yield* Fiber.join(fiber)
  })

const propose = (s: Session.Session, calls: ReadonlyArray<{ callId: string; tool: string; input: Schema.Json }>, atomic = false) =>
  Effect.map(s.propose("assistant", { text: "calling" }, calls, { atomic }), (r) => ({ entryId: r.entry.id, ids: r.calls.map((c) => c.callId) }))

/**
 * A writer process over a file session that can die: the journal is opened in a scope of its own
 * and the session over it, with no finalizer that suspends; `crash` closes the journal's store
 * (nothing more reaches the file) and leaves whatever fiber still runs blocked forever.
 */
const openProcess = (dir: string, owner: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const journal = yield* Journal.openFile(dir, { owner }).pipe(Scope.provide(scope))
    const session = yield* Session.open(journal, { owner })
    return { session, crash: Scope.close(scope, Exit.void) }
  })

// The steps of every traced run below are collected here by the test that runs it.
const withTrace = <A, E, R>(steps: Array<Trace.Step>, effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(Trace.layerMemory(steps)))

describe("ToolCall traces of real runs are accepted by the model", () => {
  it.effect("success (memory session)", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const tool = scripted(ledger, "double", "readOnly")
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { ids } = yield* propose(s, [{ callId: "a", tool: "double", input: { n: 21 } }])
        const [done] = yield* Executor.runCalls(s, Executor.registry([tool], allowAll), ids)
        assert.strictEqual(done?.state, "succeeded")
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps), ["Recover[]", "Propose(a)", "Start(a,1)", "Execute(a,1)", "Succeed(a,1)"])
        expectAccepted(check(steps, [tool], { a: "double" }))
      })
    )
  })

  it.effect("parallel calls of every semantics, one failing after its effect (file session)", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const tools = [
      scripted(ledger, "ro", "readOnly"),
      scripted(ledger, "idem", "idempotent"),
      scripted(ledger, "comp", "compensatable", ["effect-fail"]),
      scripted(ledger, "uns", "unsafe", ["fail"])
    ]
    const toolOf = { r: "ro", i: "idem", k: "comp", u: "uns" }
    return Effect.scoped(
      withTrace(
        steps,
        Effect.gen(function* () {
          const dir = yield* tempDir()
          const s = yield* Session.openFile(dir, { owner: "w" })
          const { ids } = yield* propose(
            s,
            Object.entries(toolOf).map(([callId, tool]) => ({ callId, tool, input: { n: 1 } }))
          )
          const done = yield* Executor.runCalls(s, Executor.registry(tools, allowAll), ids)
          assert.deepStrictEqual(
            done.map((c) => c.state),
            ["succeeded", "succeeded", "failed", "failed"]
          )
        })
      )
    ).pipe(afterwards(() => expectAccepted(check(steps, tools, toolOf))))
  })

  it.effect("retries with backoff (TestClock), and retries running out", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const tools = [
      scripted(ledger, "flaky", "idempotent", ["retryable", "retryable"]),
      scripted(ledger, "down", "readOnly", ["retryable", "retryable", "retryable"])
    ]
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { ids } = yield* propose(s, [
          { callId: "f", tool: "flaky", input: { n: 1 } },
          { callId: "d", tool: "down", input: { n: 1 } }
        ])
        const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry(tools, allowAll), ids, { concurrency: 1 }))
        yield* TestClock.adjust("1 second")
        const done = yield* Fiber.join(fiber)
        assert.deepStrictEqual(
          done.map((c) => [c.state, c.attempt]),
          [
            ["succeeded", 3],
            ["failed", 3]
          ]
        )
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps).slice(3, 11), [
          "Start(f,1)",
          "Execute(f,1)",
          "Fail(f,1,true)",
          "Retry(f,2)",
          "Execute(f,2)",
          "Fail(f,2,true)",
          "Retry(f,3)",
          "Execute(f,3)"
        ])
        // The last allowed attempt's failure is journaled not retryable: no attempt follows it.
        assert.strictEqual(actions(steps).at(-1), "Fail(d,3,false)")
        expectAccepted(check(steps, tools, { f: "flaky", d: "down" }))
      })
    )
  })

  it.effect("a timeout", () => {
    const steps: Array<Trace.Step> = []
    const tools = [scripted(new Ledger(), "slow", "unsafe", ["hang"])]
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { ids } = yield* propose(s, [{ callId: "t", tool: "slow", input: { n: 1 } }])
        const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry(tools, allowAll), ids))
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* Fiber.join(fiber))[0]?.state, "timedOut")
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps).slice(-3), ["Start(t,1)", "Execute(t,1)", "TimeOut(t,1)"])
        expectAccepted(check(steps, tools, { t: "slow" }))
      })
    )
  })

  it.effect("a cancel (interrupting the run)", () => {
    const steps: Array<Trace.Step> = []
    const tools = [scripted(new Ledger(), "slow", "idempotent", ["hang"])]
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { ids } = yield* propose(s, [{ callId: "x", tool: "slow", input: { n: 1 } }])
        const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry(tools, allowAll), ids))
        yield* TestClock.adjust("10 millis")
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(s.calls().get("x")?.state, "cancelled")
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps).slice(-3), ["Start(x,1)", "Execute(x,1)", "Cancel(x,1)"])
        expectAccepted(check(steps, tools, { x: "slow" }))
      })
    )
  })

  it.effect("bad input and an unknown tool are rejected before any attempt (Reject)", () => {
    const steps: Array<Trace.Step> = []
    const tools = [scripted(new Ledger(), "double", "readOnly")]
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { ids } = yield* propose(s, [
          { callId: "bad", tool: "double", input: { n: "twelve" } },
          { callId: "nope", tool: "rm_rf", input: {} }
        ])
        const done = yield* Executor.runCalls(s, Executor.registry(tools, allowAll), ids)
        assert.deepStrictEqual(
          done.map((c) => (c.outcome?.kind === "failed" ? c.outcome.reason : "")),
          ["invalidInput", "unknownTool"]
        )
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps).slice(-2), ["Reject(bad,0,false)", "Reject(nope,0,false)"])
        expectAccepted(check(steps, tools, { bad: "double", nope: "rm_rf" }))
      })
    )
  })

  it.effect("a saga: the failed step's predecessors are compensated, the rest rejected (Compensate, Reject)", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const tools = [scripted(ledger, "book", "compensatable"), scripted(ledger, "charge", "compensatable", ["fail"]), scripted(ledger, "mail", "unsafe")]
    const toolOf = { b: "book", c: "charge", m: "mail" }
    return withTrace(
      steps,
      Effect.gen(function* () {
        const s = yield* Session.openMemory()
        const { entryId } = yield* propose(
          s,
          Object.entries(toolOf).map(([callId, tool]) => ({ callId, tool, input: { n: 1 } })),
          true
        )
        assert.isFalse(yield* Saga.runAtomic(s, Executor.registry(tools, allowAll), entryId))
      })
    ).pipe(
      afterwards(() => {
        assert.deepStrictEqual(actions(steps).slice(4), [
          "Start(b,1)",
          "Execute(b,1)",
          "Succeed(b,1)",
          "Start(c,1)",
          "Execute(c,1)",
          "Fail(c,1,false)",
          "Reject(m,0,false)",
          "Compensate(b)"
        ])
        expectAccepted(check(steps, tools, toolOf))
      })
    )
  })

  it.effect("a crash and recovery, all three resolutions (started journaled by hand, the effects recorded as Execute steps)", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const idem = scripted(ledger, "idem", "idempotent")
    const uns = scripted(ledger, "uns", "unsafe")
    const reconcile = (_: { n: number }, ctx: Tool.ToolContext) =>
      Effect.sync(() => (ledger.count(ctx.idempotencyKey) > 0 ? { executed: true as const, output: { doubled: 0 } } : { executed: false as const }))
    const pay = scripted(ledger, "pay", "unsafe", [], { reconcile })
    const book = scripted(ledger, "book", "compensatable", [], { reconcile })
    const tools = [idem, uns, pay, book]
    // i: idempotent, rerun; u: unsafe, closed unknown; p: reconciled, it ran; q: reconciled, it did not;
    // l: idempotent in doubt at its last attempt, closed unknown.
    const toolOf = { i: "idem", u: "uns", p: "pay", q: "book", l: "idem" }
    return Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        yield* withTrace(
          steps,
          Effect.gen(function* () {
            const first = yield* openProcess(dir, "first")
            const s = first.session
            yield* propose(
              s,
              Object.entries(toolOf).map(([callId, tool]) => ({ callId, tool, input: { n: 1 } }))
            )
            const started = (callId: string, attempt: number) =>
              s.recordCall((time) => [
                ...(attempt === 1
                  ? [
                      {
                        _tag: "tool.call.authorized" as const,
                        callId,
                        capability: "test-capability",
                        blocks: ["test-capability"],
                        approvalRequired: false,
                        time
                      }
                    ]
                  : []),
                { _tag: "tool.call.started", callId, key: Tool.idempotencyKey(s.id, callId), attempt, time }
              ])
            const failed = (callId: string, attempt: number) =>
              s.recordCall((time) => ({ _tag: "tool.call.failed", callId, attempt, reason: "error", message: "busy", retryable: true, time }))
            /** The effect happened in the world: what the tool would have traced as Execute. */
            const effect = (callId: string, attempt: number) => {
              ledger.runs.push({ key: Tool.idempotencyKey(s.id, callId), attempt })
              steps.push({ spec: "ToolCall", action: "Execute", args: { call: callId, attempt } })
            }
            for (const callId of ["i", "u", "p", "q"]) yield* started(callId, 1)
            for (const callId of ["i", "u", "p"]) effect(callId, 1)
            for (const attempt of [1, 2]) {
              yield* started("l", attempt)
              yield* failed("l", attempt)
            }
            yield* started("l", 3)
            yield* first.crash
          })
        )
        yield* withTrace(
          steps,
          Effect.gen(function* () {
            const second = yield* openProcess(dir, "second")
            yield* Recovery.recover(second.session, Executor.registry(tools, allowAll))
            const summary = second.session
              .calls()
              .all()
              .map((c) => `${c.callId} ${c.state}${c.outcome?.kind === "failed" ? ` ${c.outcome.reason}` : ""}`)
            assert.deepStrictEqual(summary, ["i succeeded", "u failed unknown", "p succeeded", "q failed error", "l failed unknown"])
            yield* second.crash
          })
        )
      })
    ).pipe(
      afterwards(() => {
        const recovery = actions(steps).slice(actions(steps).indexOf("Recover[i,u,p,q,l]") + 1)
        // Recovery resolves the calls concurrently: compare each call's steps.
        assert.deepStrictEqual(perCall(recovery), {
          i: ["Rerun(i,2)", "Execute(i,2)", "Succeed(i,2)"],
          u: ["CloseUnknown(u,1,false)"],
          p: ["Reconcile(p,1)"],
          q: ["Reconcile(q,1,false)"],
          l: ["CloseUnknown(l,3,false)"]
        })
        expectAccepted(check(steps, tools, toolOf))
      })
    )
  })

  it.effect("a crash of the real executor during attempts whose effects happened, then recovery", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    return Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const entered = [yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
        const idem = blocking(ledger, "idem", "idempotent", entered[0], true)
        const pay = blocking(ledger, "pay", "unsafe", entered[1], true, true)
        const tools = Executor.registry([idem, pay], allowAll)
        yield* withTrace(
          steps,
          Effect.gen(function* () {
            const first = yield* openProcess(dir, "first")
            const { ids } = yield* propose(first.session, [
              { callId: "i", tool: "idem", input: { n: 1 } },
              { callId: "p", tool: "pay", input: { n: 2 } }
            ])
            for (const id of ids) yield* Effect.forkDetach(Executor.runCall(first.session, tools, id))
            for (const d of entered) yield* Deferred.await(d)
            yield* first.crash // the two fibers stay blocked in their tools, never resumed
          })
        )
        yield* withTrace(
          steps,
          Effect.gen(function* () {
            const second = yield* openProcess(dir, "second")
            yield* Recovery.recover(second.session, tools)
            assert.deepStrictEqual(
              second.session
                .calls()
                .all()
                .map((c) => `${c.callId} ${c.state} ${c.attempt}`),
              ["i succeeded 2", "p succeeded 1"]
            )
            yield* second.crash
          })
        )
        expectAccepted(check(steps, [idem, pay], { i: "idem", p: "pay" }))
      })
    )
  })

  it.effect("an NDJSON trace file of a file session, read back", () => {
    const ledger = new Ledger()
    const tools = [scripted(ledger, "flaky", "idempotent", ["retryable"]), scripted(ledger, "book", "compensatable")]
    return Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const file = path.join(dir, "trace.ndjson")
        yield* Effect.gen(function* () {
          const s = yield* Session.openFile(path.join(dir, "session"), { owner: "w" })
          const { ids } = yield* propose(s, [
            { callId: "f", tool: "flaky", input: { n: 1 } },
            { callId: "b", tool: "book", input: { n: 1 } }
          ])
          const fiber = yield* Effect.forkChild(Executor.runCalls(s, Executor.registry(tools, allowAll), ids))
          yield* joinAdvancing(fiber)
        }).pipe(Effect.scoped, Effect.provide(Trace.layerNdjson(file)))
        const steps = Trace.readNdjson(file)
        assert.deepStrictEqual(fs.existsSync(file), true)
        assert.include(actions(steps), "Retry(f,2)")
        expectAccepted(check(steps, tools, { f: "flaky", b: "book" }))
      })
    )
  })
})

// ---------------------------------------------------------------------------------------------
// The checker can fail: altered traces are refused.
// ---------------------------------------------------------------------------------------------

const step = (action: ActionName, args: Trace.Step["args"]): Trace.Step => ({ spec: "ToolCall", action, args })
const recover = (inDoubt: ReadonlyArray<string> = []) => step("Recover", { inDoubt: [...inDoubt] })
const unsafeCall = constantsFor([{ callId: "u", semantics: "unsafe" }])
const idempotentCall = constantsFor([{ callId: "i", semantics: "idempotent" }], { maxAttempts: 2 })
const successful = [
  recover(),
  step("Propose", { call: "u" }),
  step("Start", { call: "u", attempt: 1 }),
  step("Execute", { call: "u", attempt: 1 }),
  step("Succeed", { call: "u", attempt: 1 })
]

describe("the checker refuses traces the model cannot take", () => {
  it("accepts the reference trace (so the refusals below are about the alteration)", () => {
    const result = checkToolCallTrace(successful, unsafeCall)
    expectAccepted(result)
    if (result.ok) {
      assert.deepStrictEqual(
        result.taken.map((t) => `${t.action}${t.inserted ? "*" : ""}`),
        ["Crash*", "Recover", "Propose", "Start", "Execute", "Succeed"]
      )
    }
  })

  it("a step removed: Start missing, so Execute runs nothing", () => {
    expectRefused(checkToolCallTrace(successful.toSpliced(2, 1), unsafeCall), 2, /Execute\(u = c1\) is not enabled: c1 is proposed/)
  })

  it("a step removed: Execute missing, so Succeed claims an output whose effect never happened", () => {
    expectRefused(checkToolCallTrace(successful.toSpliced(3, 1), unsafeCall), 3, /Succeed\(u = c1\) is not enabled/)
  })

  it("a step duplicated: Execute twice for an unsafe call", () => {
    expectRefused(checkToolCallTrace(successful.toSpliced(3, 0, successful[3] as Trace.Step), unsafeCall), 4, /Execute\(u = c1\) is not enabled/)
  })

  it("a step duplicated: two outcomes for one attempt, and a second proposal", () => {
    expectRefused(
      checkToolCallTrace([...successful, step("Cancel", { call: "u", attempt: 1 })], unsafeCall),
      5,
      /Cancel\(u = c1\) is not enabled: c1 is succeeded/
    )
    expectRefused(checkToolCallTrace(successful.toSpliced(1, 0, step("Propose", { call: "u" })), unsafeCall), 2, /Propose\(u = c1\) is not enabled/)
  })

  it("steps reordered: Succeed before Start", () => {
    const reordered = [successful[0], successful[1], successful[4], successful[2], successful[3]] as Array<Trace.Step>
    expectRefused(checkToolCallTrace(reordered, unsafeCall), 2, /Succeed\(u = c1\) is not enabled: c1 is proposed/)
  })

  it("an outcome for an attempt never started", () => {
    expectRefused(checkToolCallTrace(successful.with(4, step("Succeed", { call: "u", attempt: 2 })), unsafeCall), 4, /names attempt 2, the model's is 1/)
    const failedOnce = [
      recover(),
      step("Propose", { call: "i" }),
      step("Start", { call: "i", attempt: 1 }),
      step("Fail", { call: "i", attempt: 1, retryable: true })
    ]
    expectRefused(
      checkToolCallTrace([...failedOnce, step("TimeOut", { call: "i", attempt: 2 })], idempotentCall),
      4,
      /TimeOut\(i = c1\) is not enabled: c1 is failed/
    )
    expectRefused(checkToolCallTrace([...failedOnce, step("Retry", { call: "i", attempt: 3 })], idempotentCall), 4, /names attempt 3, the model's is 2/)
  })

  it("a retry of an unsafe call, a retry past the attempts, a rerun of an unsafe call", () => {
    const failed = [
      recover(),
      step("Propose", { call: "u" }),
      step("Start", { call: "u", attempt: 1 }),
      step("Fail", { call: "u", attempt: 1, retryable: true })
    ]
    expectRefused(checkToolCallTrace([...failed, step("Retry", { call: "u", attempt: 2 })], unsafeCall), 4, /Retry\(u = c1\) is not enabled/)
    const twice = [
      recover(),
      step("Propose", { call: "i" }),
      step("Start", { call: "i", attempt: 1 }),
      step("Fail", { call: "i", attempt: 1, retryable: true }),
      step("Retry", { call: "i", attempt: 2 }),
      step("Fail", { call: "i", attempt: 2, retryable: true }),
      step("Retry", { call: "i", attempt: 3 })
    ]
    expectRefused(checkToolCallTrace(twice, idempotentCall), 6, /Retry\(i = c1\) is not enabled/)
    const inDoubt = [recover(), step("Propose", { call: "u" }), step("Start", { call: "u", attempt: 1 }), recover(["u"])]
    expectRefused(checkToolCallTrace([...inDoubt, step("Rerun", { call: "u", attempt: 2 })], unsafeCall), 4, /Rerun\(u = c1\) is not enabled/)
    expectAccepted(checkToolCallTrace([...inDoubt, step("CloseUnknown", { call: "u", attempt: 1, retryable: false })], unsafeCall))
  })

  it("a Recover whose calls in doubt are not the model's", () => {
    const running = [recover(), step("Propose", { call: "u" }), step("Start", { call: "u", attempt: 1 })]
    expectRefused(checkToolCallTrace([...running, recover([])], unsafeCall), 3, /the implementation finds \[\] in doubt, the model \[c1\]/)
    expectRefused(checkToolCallTrace([...successful, recover(["u"])], unsafeCall), 5, /finds \[c1\] in doubt, the model \[\]/)
  })

  it("a Reconcile that contradicts the world, and more opens than maxCrashes", () => {
    const reconcilable = constantsFor([{ callId: "p", semantics: "unsafe", reconcile: true }])
    const inDoubt = [recover(), step("Propose", { call: "p" }), step("Start", { call: "p", attempt: 1 }), recover(["p"])]
    expectRefused(
      checkToolCallTrace([...inDoubt, step("Reconcile", { call: "p", attempt: 1 })], reconcilable),
      4,
      /journaled succeeded, but the model's world says failed/
    )
    const executed = inDoubt.toSpliced(3, 0, step("Execute", { call: "p", attempt: 1 }))
    expectRefused(
      checkToolCallTrace([...executed, step("Reconcile", { call: "p", attempt: 1, retryable: false })], reconcilable),
      5,
      /journaled failed, but the model's world says succeeded/
    )
    expectAccepted(checkToolCallTrace([...executed, step("Reconcile", { call: "p", attempt: 1 })], reconcilable))
    const constants = { ...reconcilable, maxCrashes: 1 }
    expectRefused(checkToolCallTrace(executed, constants), 4, /Crash \(inserted before Recover\) is disabled/)
  })

  it("a trace with more calls than the constants, or a Fail without retryable", () => {
    expectRefused(checkToolCallTrace([...successful, step("Propose", { call: "v" })], unsafeCall), 5, /call v is call number 2/)
    expectRefused(checkToolCallTrace(successful.with(4, step("Fail", { call: "u", attempt: 1 })), unsafeCall), 4, /no boolean retryable/)
  })
})

// ---------------------------------------------------------------------------------------------
// Where the implementation's trace and the model disagree (findings, kept as tests)
// ---------------------------------------------------------------------------------------------

describe("known disagreements between the executor's trace and spec/ToolCall.tla", () => {
  it.effect(
    "the executor traces Execute when the tool may act, not when it acts: a crash before the effect, then a reconcile that finds nothing, is refused",
    () => {
      const steps: Array<Trace.Step> = []
      const ledger = new Ledger()
      return Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* tempDir()
          const entered = yield* Deferred.make<void>()
          const pay = blocking(ledger, "pay", "unsafe", entered, false, true)
          const tools = Executor.registry([pay], allowAll)
          yield* withTrace(
            steps,
            Effect.gen(function* () {
              const first = yield* openProcess(dir, "first")
              const { ids } = yield* propose(first.session, [{ callId: "p", tool: "pay", input: { n: 2 } }])
              yield* Effect.forkDetach(Executor.runCall(first.session, tools, ids[0] as string))
              yield* Deferred.await(entered)
              yield* first.crash // the tool entered but did nothing
              const second = yield* openProcess(dir, "second")
              yield* Recovery.recover(second.session, tools)
              assert.strictEqual(second.session.calls().get("p")?.state, "failed")
              yield* second.crash
            })
          )
          assert.deepStrictEqual(actions(steps).slice(1), ["Propose(p)", "Start(p,1)", "Execute(p,1)", "Recover[p]", "Reconcile(p,1,false)"])
          // The model's Execute is the effect (executed[key] + 1), so its Reconcile must find it ran.
          expectRefused(
            check(steps, [pay], { p: "pay" }),
            steps.findLastIndex((s) => s.action === "Reconcile"),
            /Reconcile\(p = c1\) journaled failed, but the model's world says succeeded/
          )
          // Without the Execute step (the effect never happened) the same trace is accepted.
          expectAccepted(
            check(
              steps.toSpliced(
                steps.findIndex((s) => s.action === "Execute"),
                1
              ),
              [pay],
              { p: "pay" }
            )
          )
        })
      )
    }
  )

  /**
   * Runs recovery over calls journaled `started` by hand in a first process (their effects recorded
   * as Execute steps where `effects` says so), with `tools` in the second process.
   */
  const recoverWith = (
    steps: Array<Trace.Step>,
    calls: ReadonlyArray<{ readonly callId: string; readonly tool: string; readonly effect: boolean }>,
    tools: ReadonlyArray<Tool.AnyTool>,
    ledger: Ledger
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        return yield* withTrace(
          steps,
          Effect.gen(function* () {
            const first = yield* openProcess(dir, "first")
            const s = first.session
            yield* propose(
              s,
              calls.map(({ callId, tool }) => ({ callId, tool, input: { n: 1 } }))
            )
            for (const { callId, effect } of calls) {
              const key = Tool.idempotencyKey(s.id, callId)
              yield* s.recordCall((time) => [
                { _tag: "tool.call.authorized", callId: callId, capability: "test-capability", blocks: ["test-capability"], approvalRequired: false, time },
                { _tag: "tool.call.started", callId, key, attempt: 1, time }
              ])
              if (effect) {
                ledger.runs.push({ key, attempt: 1 })
                steps.push({ spec: "ToolCall", action: "Execute", args: { call: callId, attempt: 1 } })
              }
            }
            yield* first.crash
            const second = yield* openProcess(dir, "second")
            yield* Recovery.recover(second.session, Executor.registry(tools, allowAll))
            const outcomes = second.session
              .calls()
              .all()
              .map((c) => `${c.callId} ${c.state}${c.outcome?.kind === "failed" ? ` ${c.outcome.reason}` : ""}`)
            yield* second.crash
            return outcomes
          })
        )
      })
    )

  it.effect(
    "a reconcile that fails (or times out) closes the call unknown: CloseUnknown of a call whose tool reconciles, which the spec does not allow",
    () => {
      const steps: Array<Trace.Step> = []
      const ledger = new Ledger()
      const pay = scripted(ledger, "pay", "unsafe", [], {
        reconcile: () => Effect.fail(new Tool.ToolFailure({ message: "ledger unreachable", retryable: true }))
      })
      return recoverWith(steps, [{ callId: "p", tool: "pay", effect: true }], [pay], ledger).pipe(
        checkResult((outcomes: ReadonlyArray<string>) => {
          assert.deepStrictEqual(outcomes, ["p failed unknown"])
          assert.deepStrictEqual(actions(steps).slice(-1), ["CloseUnknown(p,1,false)"])
          expectRefused(check(steps, [pay], { p: "pay" }), steps.length - 1, /CloseUnknown\(p = c1\) is not enabled: c1 is inDoubt/)
        })
      )
    }
  )

  it.effect(
    "a rerunnable call whose tool is gone (or whose input no longer decodes) is closed unknown with attempts left: CloseUnknown where the spec has Rerun",
    () => {
      const steps: Array<Trace.Step> = []
      const ledger = new Ledger()
      const idem = scripted(ledger, "idem", "idempotent")
      return recoverWith(steps, [{ callId: "i", tool: "idem", effect: false }], [], ledger).pipe(
        checkResult((outcomes: ReadonlyArray<string>) => {
          assert.deepStrictEqual(outcomes, ["i failed unknown"])
          expectRefused(check(steps, [idem], { i: "idem" }), steps.length - 1, /CloseUnknown\(i = c1\) is not enabled: c1 is inDoubt at attempt 1/)
        })
      )
    }
  )

  it.effect("a reconcile that finds the effect but whose output no longer fits the Schema journals failed: Reconcile's outcome contradicts the world", () => {
    const steps: Array<Trace.Step> = []
    const ledger = new Ledger()
    const pay = scripted(ledger, "pay", "unsafe", [], {
      reconcile: () => Effect.succeed({ executed: true as const, output: { doubled: "lots" } as unknown as { doubled: number } })
    })
    return recoverWith(steps, [{ callId: "p", tool: "pay", effect: true }], [pay], ledger).pipe(
      checkResult((outcomes: ReadonlyArray<string>) => {
        assert.deepStrictEqual(outcomes, ["p failed invalidOutput"])
        expectRefused(check(steps, [pay], { p: "pay" }), steps.length - 1, /Reconcile\(p = c1\) journaled failed, but the model's world says succeeded/)
      })
    )
  })

  it.effect("a trace step is emitted when a batch is sequenced, before it is durable: a write the dead store refuses is still traced", () => {
    const steps: Array<Trace.Step> = []
    return Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir()
        yield* withTrace(
          steps,
          Effect.gen(function* () {
            const first = yield* openProcess(dir, "first")
            yield* propose(first.session, [{ callId: "u", tool: "uns", input: { n: 1 } }])
            yield* first.session.recordCall((time) => [
              { _tag: "tool.call.authorized", callId: "u", capability: "test-capability", blocks: ["test-capability"], approvalRequired: false, time },
              { _tag: "tool.call.started", callId: "u", key: Tool.idempotencyKey(first.session.id, "u"), attempt: 1, time }
            ])
            yield* first.crash
            // A fiber of the dead process finishes its attempt: the store refuses the write, the trace has it.
            const late = yield* Effect.exit(first.session.recordCall((time) => ({ _tag: "tool.call.cancelled", callId: "u", attempt: 1, time })))
            assert.isTrue(Exit.isFailure(late))
            const second = yield* openProcess(dir, "second")
            assert.strictEqual(second.session.calls().get("u")?.state, "inDoubt")
            yield* second.crash
          })
        )
        assert.deepStrictEqual(actions(steps).slice(1), ["Propose(u)", "Start(u,1)", "Cancel(u,1)", "Recover[u]"])
        expectRefused(
          check(steps, [scripted(new Ledger(), "uns", "unsafe")], { u: "uns" }),
          steps.findLastIndex((s) => s.action === "Recover"),
          /finds \[c1\] in doubt, the model \[\]/
        )
      })
    )
  })
})
