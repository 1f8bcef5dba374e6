// Trace validation of authority (design §6): real runs of the executor with real capability tokens
// and the approval gate, over memory and file sessions with Trace.layerMemory, must be accepted by
// test/trace/authority.checker.ts (models/authority.ts takes every Authority step), with constants
// read from the run's root token; the journal of each run must map to a state the trace can lead to.
// Forged traces (a start without an authorization, an approval after the expiry, …) must be refused,
// so the checker can fail.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, type Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type AuthorityConstants, type Call, canonical } from "../../models/authority.ts"
import * as Approvals from "../../src/authority/Approvals.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Capability from "../../src/authority/Capability.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import type { Event } from "../../src/Event.ts"
import * as Journal from "../../src/journal/Journal.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import type { ToolCallState } from "../../src/toolcall/ToolCallMachine.ts"
import * as Trace from "../../src/trace/Trace.ts"
import { modelLog, TOOLS } from "../refinement/authority.harness.ts"
import { type AuthorityCheckResult, authoritySteps, type CallSpec, checkAuthorityTrace, constantsFromToken, explainAuthority } from "./authority.checker.ts"

const TICK = 1000
/** An approval request's deadline: two ticks after it. */
const TIMEOUT = 2 * TICK
const APPROVERS = ["alice", "bob"]
const PRINCIPALS = ["alice", "bob", "mallory"]

const read = (p: string, n = 1): CallSpec => ({ tool: "read", input: { path: p, n } })
const deploy = (n = 1): CallSpec => ({ tool: "deploy", input: { path: "work/ops/app", n } })

/** Reads under work, deploys with an approval by alice or bob, until tick 6, three uses. */
const ROOT = [
  Caveat.tools(["deploy", "read"]),
  Caveat.pathUnder("path", "work"),
  Caveat.needsApproval(APPROVERS, { tools: ["deploy"] }),
  Caveat.expires(6 * TICK),
  Caveat.uses(3)
]

/** One traced run: its tokens, authority, session and the steps it collects (the runtime's and the environment's). */
interface Run {
  readonly steps: Array<Trace.Step>
  readonly keyring: Capability.Keyring
  readonly root: string
  readonly revoked: Set<string>
  readonly store: MemoryStore
  readonly calls: Readonly<Record<Call, CallSpec>>
  readonly registry: (token: string) => Executor.Registry
}

const makeRun = (calls: Readonly<Record<Call, CallSpec>>, caveats: ReadonlyArray<Caveat.Caveat> = ROOT) =>
  Effect.gen(function* () {
    const key = yield* Capability.generateRootKey("trace")
    const keyring = new Map([[key.keyId, key.publicKey]])
    const root = yield* Capability.issue(key, caveats)
    const revoked = new Set<string>()
    const registry = (token: string) =>
      Executor.registry(TOOLS, Authority.fromCapability(token, { keyring, revoked: () => revoked, approvalTimeoutMs: TIMEOUT }))
    const run: Run = { steps: [], keyring, root, revoked, store: new MemoryStore(), calls, registry }
    return run
  })

/** The session of a run (memory), its calls proposed in one entry: the calls that `propose` lists (phantom calls stand for other arguments). */
const openSession = (run: Run, propose: ReadonlyArray<Call>) =>
  Effect.gen(function* () {
    const s = yield* Session.openMemory(run.store)
    yield* s.propose(
      "assistant",
      { text: "calls" },
      propose.map((callId) => ({ callId, tool: (run.calls[callId] as CallSpec).tool, input: (run.calls[callId] as CallSpec).input as Schema.Json }))
    )
    return s
  })

/** Lets the other fibers reach where they wait (an executor's deadline timer must be set before the clock moves). */
const quiet = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
  yield* TestClock.withLive(Effect.sleep("1 millis"))
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Time passes by one tick: the step first (an expiry it causes follows it), then the clock. */
const tick = (run: Run, n = 1) =>
  Effect.gen(function* () {
    for (let i = 0; i < n; i++) {
      yield* quiet
      run.steps.push({ spec: "Authority", action: "Tick", args: {} })
      yield* TestClock.adjust(TICK)
    }
  })

/** Yields until call `id` is in `state`. */
const until = (s: Session.Session, id: string, state: ToolCallState | ReadonlyArray<ToolCallState>) =>
  Effect.gen(function* () {
    const wanted = typeof state === "string" ? [state] : state
    for (let i = 0; i < 20_000; i++) {
      const now = s.calls().get(id)?.state
      if (now !== undefined && wanted.includes(now)) return
      // Real asynchronous work (WebCrypto hashes, file writes) needs real time now and then.
      yield* i % 50 === 49 ? TestClock.withLive(Effect.sleep("1 millis")) : Effect.yieldNow
    }
    assert.fail(`call ${id} is ${s.calls().get(id)?.state}, not ${wanted.join(" or ")}`)
  })

/** The model constants of a run, read from its root token. */
const constantsOf = (run: Run, options: { readonly maxTime?: number; readonly maxCrashes?: number; readonly capabilities?: ReadonlyArray<string> } = {}) =>
  Effect.promise(() =>
    constantsFromToken(run.root, {
      calls: run.calls,
      keyring: run.keyring,
      tickMs: TICK,
      approvalTimeoutMs: TIMEOUT,
      principals: PRINCIPALS,
      capabilities: options.capabilities ?? ["root"],
      maxTime: options.maxTime ?? 8,
      maxCrashes: options.maxCrashes ?? 0
    })
  )

function expectAccepted(result: AuthorityCheckResult): asserts result is Extract<AuthorityCheckResult, { ok: true }> {
  assert.isTrue(result.ok, explainAuthority(result))
}

function expectRefused(result: AuthorityCheckResult, at: number, reason: RegExp): void {
  assert.isFalse(result.ok, `expected a refusal, got ${explainAuthority(result)}`)
  if (result.ok) return
  assert.strictEqual(result.at, at, explainAuthority(result))
  assert.match(result.reason, reason, explainAuthority(result))
}

/** The block ids of each node of a run (root, and the child when there is one). */
const blocksOf = (run: Run, tokens: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const out: Array<[string, ReadonlyArray<string>]> = []
    for (const [k, token] of Object.entries(tokens)) {
      const v = yield* Capability.verify(token, { keyring: run.keyring, revoked: new Set(), cache: false }).pipe(Effect.provide(TestClock.layer()))
      out.push([k, v.blockIds])
    }
    return out
  })

/**
 * Checks the run's trace with constants `K` and that the journal (`events`) maps to the log of a
 * state the trace can lead to; returns the checker's result.
 */
const checkRun = (run: Run, K: AuthorityConstants, events: ReadonlyArray<Event>, tokens: Readonly<Record<string, string>> = { root: run.root }) =>
  Effect.gen(function* () {
    const result = checkAuthorityTrace(run.steps, K)
    expectAccepted(result)
    const nodes = yield* blocksOf(run, tokens)
    const capOf = (blocks: ReadonlyArray<string>) => nodes.find(([, ids]) => ids.join() === blocks.join())?.[0] ?? "unknown"
    const hashes: Record<Call, string> = {}
    for (const [c, spec] of Object.entries(run.calls)) hashes[c] = yield* Effect.promise(() => Executor.hashArguments(spec.input))
    const { log } = modelLog(events, K.calls, capOf, hashes)
    // A call the run never proposed (it stands for other arguments) is proposed in the model's Init, and nothing more.
    for (const c of K.calls) if (log[c]?.length === 0) log[c] = [{ type: "proposed" }]
    assert.isTrue(
      result.states.some((s) => canonical(s.log) === canonical(log)),
      `the journal ${canonical(log)} is the log of no state the trace leads to: ${result.states.map((s) => canonical(s.log)).join(" | ")}`
    )
    return result
  })

/** The `why` of the ApprovalIgnored a decision failed with (undefined: it did not). */
const ignoredWhy = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
  return error instanceof Approvals.ApprovalIgnored ? error.why : undefined
}

const eventsOf = (store: MemoryStore) =>
  Effect.map(
    Effect.flatMap(Journal.openMemory(store), (j) => j.read(1)),
    (cs) => cs.map((c) => c.event)
  )

/** A traced scenario over a memory session: `body` runs with the trace on; then its trace is checked. */
const scenario = (
  calls: Readonly<Record<Call, CallSpec>>,
  body: (run: Run) => Effect.Effect<void, unknown>,
  check: (run: Run, events: ReadonlyArray<Event>) => Effect.Effect<void, unknown>,
  caveats: ReadonlyArray<Caveat.Caveat> = ROOT
) =>
  Effect.gen(function* () {
    const run = yield* makeRun(calls, caveats)
    yield* body(run).pipe(Effect.provide(Trace.layerMemory(run.steps)))
    yield* check(run, yield* eventsOf(run.store))
  })

describe("Authority traces of real runs are accepted by the model", () => {
  it.effect("authorized and started", () =>
    scenario(
      { a: read("work/a.txt") },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["a"])
          const done = yield* Executor.runCall(s, run.registry(run.root), "a")
          assert.strictEqual(done.state, "succeeded")
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(a)", "Start(a)"])
          const result = yield* checkRun(run, yield* constantsOf(run), events)
          assert.deepStrictEqual(result.taken, ["Authorize(a)", "Start(a)"])
        })
    )
  )

  it.effect("denied: a tool not granted, an argument caveat that fails", () =>
    scenario(
      { w: { tool: "wipe", input: { path: "work/x", n: 1 } }, e: read("etc/passwd") },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["w", "e"])
          const w = yield* Executor.runCall(s, run.registry(run.root), "w")
          const e = yield* Executor.runCall(s, run.registry(run.root), "e")
          assert.deepStrictEqual([w.state, e.state], ["denied", "denied"])
          assert.match(w.outcome?.kind === "denied" ? w.outcome.message : "", /tool wipe is not granted/)
          assert.match(e.outcome?.kind === "denied" ? e.outcome.message : "", /not under work/)
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps), ["Deny(w)", "Deny(e)"])
          const K = yield* constantsOf(run)
          assert.deepStrictEqual(K.rootGrants, [], "the root covers neither call")
          yield* checkRun(run, K, events)
        })
    )
  )

  it.effect("denied: a revoked token, and a child derived from it afterwards", () =>
    Effect.gen(function* () {
      const run = yield* makeRun({ a: read("work/a.txt"), r: read("work/r.txt"), c: read("work/c.txt") })
      let child = ""
      yield* Effect.gen(function* () {
        const s = yield* openSession(run, ["a", "r", "c"])
        assert.strictEqual((yield* Executor.runCall(s, run.registry(run.root), "a")).state, "succeeded")
        // The operator revokes the token: the next call is denied (the check is at Authorize).
        const id = (yield* Capability.verify(run.root, { keyring: run.keyring, revoked: new Set(), cache: false })).id
        run.revoked.add(id)
        run.steps.push({ spec: "Authority", action: "Revoke", args: { k: "root" } })
        const r = yield* Executor.runCall(s, run.registry(run.root), "r")
        assert.match(r.outcome?.kind === "denied" ? r.outcome.reason : "", /CapabilityRevoked/)
        // A child derived after the revocation contains the revoked block: denied too.
        child = yield* Capability.attenuate(run.root, [Caveat.tools(["read"]), Caveat.uses(1)])
        run.steps.push({ spec: "Authority", action: "Attenuate", args: { k: "root", ch: "child", g: ["a", "c", "r"], a: [], u: 1 } })
        const c = yield* Executor.runCall(s, run.registry(child), "c")
        assert.match(c.outcome?.kind === "denied" ? c.outcome.reason : "", /CapabilityRevoked/)
      }).pipe(Effect.provide(Trace.layerMemory(run.steps)))
      assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(a)", "Start(a)", "Revoke()", "Deny(r)", "Attenuate()", "Deny(c)"])
      yield* checkRun(run, yield* constantsOf(run, { capabilities: ["child", "root"] }), yield* eventsOf(run.store), { root: run.root, child })
    })
  )

  it.effect("denied: an expired token (a run of its own)", () =>
    scenario(
      { a: read("work/a.txt") },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["a"])
          yield* tick(run, 6)
          const a = yield* Executor.runCall(s, run.registry(run.root), "a")
          assert.match(a.outcome?.kind === "denied" ? a.outcome.reason : "", /CapabilityExpired/)
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.strictEqual(authoritySteps(run.steps).at(-1), "Deny(a)")
          const K = yield* constantsOf(run)
          assert.strictEqual(K.rootExpiry, 6)
          yield* checkRun(run, K, events)
        })
    )
  )

  it.effect("denied: uses exhausted (the root's, and a one-use child's, which counts against the root too)", () =>
    Effect.gen(function* () {
      const run = yield* makeRun({ a: read("work/a.txt"), b: read("work/b.txt"), c: read("work/c.txt"), d: read("work/d.txt") }, [
        Caveat.tools(["read"]),
        Caveat.expires(6 * TICK),
        Caveat.uses(2)
      ])
      const child = yield* Capability.attenuate(run.root, [Caveat.uses(1)])
      yield* Effect.gen(function* () {
        const s = yield* openSession(run, ["a", "b", "c", "d"])
        run.steps.push({ spec: "Authority", action: "Attenuate", args: { k: "root", ch: "child", g: ["a", "b", "c", "d"], a: [], u: 1 } })
        assert.strictEqual((yield* Executor.runCall(s, run.registry(child), "a")).state, "succeeded")
        const b = yield* Executor.runCall(s, run.registry(child), "b")
        assert.match(b.outcome?.kind === "denied" ? b.outcome.reason : "", /exhausted/)
        assert.strictEqual((yield* Executor.runCall(s, run.registry(run.root), "c")).state, "succeeded")
        const d = yield* Executor.runCall(s, run.registry(run.root), "d")
        assert.match(d.outcome?.kind === "denied" ? d.outcome.message : "", /2 of 2 calls used/)
      }).pipe(Effect.provide(Trace.layerMemory(run.steps)))
      assert.deepStrictEqual(authoritySteps(run.steps), ["Attenuate()", "Authorize(a)", "Start(a)", "Deny(b)", "Authorize(c)", "Start(c)", "Deny(d)"])
      const K = yield* constantsOf(run, { capabilities: ["child", "root"] })
      assert.strictEqual(K.rootUses, 2)
      yield* checkRun(run, K, yield* eventsOf(run.store), { root: run.root, child })
    })
  )

  it.effect("an approval approved, one rejected, one expired", () =>
    scenario(
      { y: deploy(1), n: deploy(2), x: deploy(3) },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["y", "n", "x"])
          const registry = run.registry(run.root)
          const fibers = yield* Effect.forEach(["y", "n", "x"], (id) => Effect.forkChild(Executor.runCall(s, registry, id)))
          for (const id of ["y", "n", "x"]) yield* until(s, id, "awaitingApproval")
          yield* Approvals.approve(s, "y", "alice", { argsHash: s.calls().get("y")?.approval?.argsHash ?? "" })
          yield* Approvals.reject(s, "n", "bob", "not today")
          yield* tick(run, 2)
          const done = yield* Effect.forEach(fibers, Fiber.join)
          assert.deepStrictEqual(
            done.map((c) => c.state),
            ["succeeded", "rejected", "expired"]
          )
        }),
      (run, events) =>
        Effect.gen(function* () {
          const steps = authoritySteps(run.steps)
          assert.deepStrictEqual(
            steps.filter((x) => /\((y|n|x)/.test(x) && !/Authorize|RequestApproval/.test(x)),
            ["Approve(y,alice)", "Start(y)", "RejectApproval(n,bob)", "Expire(x)"]
          )
          yield* checkRun(run, yield* constantsOf(run), events)
        })
    )
  )

  it.effect("a late approval (after the expiry) is ignored", () =>
    scenario(
      { d: deploy() },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["d"])
          const fiber = yield* Effect.forkChild(Executor.runCall(s, run.registry(run.root), "d"))
          yield* until(s, "d", "awaitingApproval")
          yield* tick(run, 2)
          assert.strictEqual((yield* Fiber.join(fiber)).state, "expired")
          const late = yield* Effect.exit(Approvals.approve(s, "d", "alice"))
          assert.strictEqual(ignoredWhy(late), "alreadyDecided")
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps).slice(-4), ["Tick()", "Tick()", "Expire(d)", "IgnoreDecision(d,alice)"])
          yield* checkRun(run, yield* constantsOf(run), events)
        })
    )
  )

  it.effect("an approval by someone not allowed is ignored; then an approver's counts", () =>
    scenario(
      { d: deploy() },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["d"])
          const fiber = yield* Effect.forkChild(Executor.runCall(s, run.registry(run.root), "d"))
          yield* until(s, "d", "awaitingApproval")
          const mallory = yield* Effect.exit(Approvals.approve(s, "d", "mallory"))
          assert.strictEqual(ignoredWhy(mallory), "notAnApprover")
          yield* Approvals.approve(s, "d", "bob")
          assert.strictEqual((yield* Fiber.join(fiber)).state, "succeeded")
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(d)", "RequestApproval(d)", "IgnoreDecision(d,mallory)", "Approve(d,bob)", "Start(d)"])
          yield* checkRun(run, yield* constantsOf(run), events)
        })
    )
  )

  it.effect("an approval for changed arguments is ignored (another call's hash)", () =>
    scenario(
      // `changed` is never proposed: it stands for the arguments the approver was shown.
      { d: deploy(1), changed: deploy(99) },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["d"])
          const fiber = yield* Effect.forkChild(Executor.runCall(s, run.registry(run.root), "d"))
          yield* until(s, "d", "awaitingApproval")
          const shown = yield* Effect.promise(() => Executor.hashArguments(deploy(99).input))
          const changed = yield* Effect.exit(Approvals.approve(s, "d", "alice", { argsHash: shown }))
          assert.strictEqual(ignoredWhy(changed), "argumentsChanged")
          yield* tick(run, 2)
          assert.strictEqual((yield* Fiber.join(fiber)).state, "expired")
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(d)", "RequestApproval(d)", "IgnoreDecision(d,alice)", "Tick()", "Tick()", "Expire(d)"])
          yield* checkRun(run, yield* constantsOf(run), events)
          // With one call only, the model has no other hash: alice's decision would count, and the trace is refused.
          const single = { ...(yield* constantsOf(run)), calls: ["d"], rootGrants: ["d"], rootApproval: ["d"] }
          expectRefused(
            checkAuthorityTrace(run.steps, single),
            run.steps.findIndex((x) => x.action === "IgnoreDecision"),
            /IgnoreDecision\(d, alice\) is not enabled/
          )
        })
    )
  )

  it.effect("a withdrawal (the run was cancelled) is the model's Withdraw", () =>
    scenario(
      { d: deploy() },
      (run) =>
        Effect.gen(function* () {
          const s = yield* openSession(run, ["d"])
          const fiber = yield* Effect.forkChild(Executor.runCall(s, run.registry(run.root), "d"))
          yield* until(s, "d", "awaitingApproval")
          yield* Approvals.withdraw(s, "d", "the run was cancelled")
          assert.strictEqual((yield* Fiber.join(fiber)).state, "rejected")
        }),
      (run, events) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(d)", "RequestApproval(d)", "RejectApproval(d,runtime)"])
          const result = yield* checkRun(run, yield* constantsOf(run), events)
          assert.strictEqual(result.taken.at(-1), "Withdraw(d)")
        })
    )
  )

  it.effect("a crash while awaiting approval, and a restart: the remaining time is honoured (file session)", () =>
    Effect.gen(function* () {
      const run = yield* makeRun({ d: deploy() })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "keel-authority-trace-"))
      const open = (owner: string) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const journal = yield* Journal.openFile(dir, { owner, takeover: true }).pipe(Scope.provide(scope))
          const session = yield* Session.open(journal, { owner })
          return { session, scope }
        })
      const expiredAt = yield* Effect.gen(function* () {
        const first = yield* open("first")
        yield* first.session.propose("assistant", {}, [{ callId: "d", tool: "deploy", input: deploy().input as Schema.Json }])
        const waiting = yield* Effect.forkChild(Executor.runCall(first.session, run.registry(run.root), "d"))
        yield* until(first.session, "d", "awaitingApproval")
        const deadline = first.session.calls().get("d")?.approval?.deadline
        assert.strictEqual(deadline, TIMEOUT)
        // The process dies: its store is closed and its fiber does nothing more.
        yield* Fiber.interrupt(waiting)
        yield* Scope.close(first.scope, Exit.void)
        yield* tick(run) // one tick passes while down
        const second = yield* open("second")
        const resumed = yield* Effect.forkChild(Executor.continueApproval(second.session, run.registry(run.root), "d"))
        for (let i = 0; i < 100; i++) yield* i % 20 === 19 ? TestClock.withLive(Effect.sleep("1 millis")) : Effect.yieldNow
        assert.strictEqual(second.session.calls().get("d")?.state, "awaitingApproval", "one tick is left: not expired at the restart")
        yield* tick(run)
        assert.strictEqual((yield* Fiber.join(resumed)).state, "expired")
        const events = yield* Effect.scoped(Effect.flatMap(Journal.openFile(dir, { writer: false }), (j) => j.read(1)))
        yield* Scope.close(second.scope, Exit.void)
        const expired = events.map((c) => c.event).find((e) => e._tag === "tool.call.expired")
        return expired?._tag === "tool.call.expired" ? { time: expired.time, deadline: expired.deadline, events: events.map((c) => c.event) } : undefined
      }).pipe(Effect.provide(Trace.layerMemory(run.steps)), Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
      assert.deepStrictEqual([expiredAt?.time, expiredAt?.deadline], [TIMEOUT, TIMEOUT], "expired at the journaled deadline, not earlier or later")
      assert.deepStrictEqual(authoritySteps(run.steps), ["Authorize(d)", "RequestApproval(d)", "Tick()", "Tick()", "Expire(d)"])
      const result = yield* checkRun(run, yield* constantsOf(run, { maxCrashes: 1 }), expiredAt?.events ?? [])
      assert.deepStrictEqual(result.taken, ["Authorize(d)", "RequestApproval(d)", "Tick", "Crash", "Restart", "Tick", "Expire(d)"])
    })
  )
})

// ------------------------------------------------------------------------------------------------
// The checker can fail: forged traces are refused.
// ------------------------------------------------------------------------------------------------

const A = (action: string, args: Record<string, Schema.Json> = {}): Trace.Step => ({ spec: "Authority", action, args })
const opened: Trace.Step = { spec: "ToolCall", action: "Recover", args: { inDoubt: [] } }
const proposed = (call: string): Trace.Step => ({ spec: "ToolCall", action: "Propose", args: { call } })

/** Constants as a run of `deploy` and `read` calls under ROOT would read them: c1 is a read, c2 a deploy (approval). */
const FORGED: AuthorityConstants = {
  calls: ["c1", "c2"],
  capabilities: ["root"],
  root: "root",
  rootGrants: ["c1", "c2"],
  rootApproval: ["c2"],
  rootExpiry: 6,
  rootUses: 3,
  maxUses: 3,
  principals: PRINCIPALS,
  approvers: APPROVERS,
  approvalTimeout: 2,
  maxTime: 8,
  maxCrashes: 1
}

describe("the Authority checker refuses traces the model cannot take", () => {
  const reference = [
    opened,
    proposed("c1"),
    proposed("c2"),
    A("Authorize", { call: "c1" }),
    A("Start", { call: "c1" }),
    A("Authorize", { call: "c2" }),
    A("RequestApproval", { call: "c2" }),
    A("IgnoreDecision", { call: "c2", by: "mallory" }),
    A("Approve", { call: "c2", by: "alice" }),
    A("Start", { call: "c2" })
  ]

  it("accepts the reference trace (so the refusals below are about the alteration)", () => {
    expectAccepted(checkAuthorityTrace(reference, FORGED))
  })

  it("a Start without an Authorize", () => {
    const forged = [opened, proposed("c1"), A("Start", { call: "c1" })]
    expectRefused(checkAuthorityTrace(forged, FORGED), 2, /Start\(c1\) is not enabled: c1 is proposed/)
  })

  it("a Start of a call that demands an approval, straight after its Authorize", () => {
    const forged = [...reference.slice(0, 6), A("Start", { call: "c2" })]
    expectRefused(checkAuthorityTrace(forged, FORGED), 6, /Start\(c2\) is not enabled: c2 is authorized/)
  })

  it("an Approve after the Expire", () => {
    const forged = [...reference.slice(0, 7), A("Tick"), A("Tick"), A("Expire", { call: "c2" }), A("Approve", { call: "c2", by: "alice" })]
    expectAccepted(checkAuthorityTrace(forged.slice(0, -1), FORGED))
    expectRefused(checkAuthorityTrace(forged, FORGED), forged.length - 1, /Approve\(c2, alice\) is not enabled: c2 is expired/)
  })

  it("an Expire before the deadline, an Approve at the deadline", () => {
    expectRefused(
      checkAuthorityTrace([...reference.slice(0, 7), A("Tick"), A("Expire", { call: "c2" })], FORGED),
      8,
      /Expire\(c2\) is not enabled.*deadline is 2.*now = 1/
    )
    expectRefused(
      checkAuthorityTrace([...reference.slice(0, 7), A("Tick"), A("Tick"), A("Approve", { call: "c2", by: "alice" })], FORGED),
      9,
      /Approve\(c2, alice\) is not enabled.*now = 2/
    )
  })

  it("an Approve by someone not allowed, a second counted decision, a Withdraw of a decided call", () => {
    expectRefused(
      checkAuthorityTrace([...reference.slice(0, 7), A("Approve", { call: "c2", by: "mallory" })], FORGED),
      7,
      /Approve\(c2, mallory\) is not enabled/
    )
    expectRefused(checkAuthorityTrace([...reference, A("RejectApproval", { call: "c2", by: "bob" })], FORGED), reference.length, /c2 is started/)
    expectRefused(
      checkAuthorityTrace([...reference.slice(0, 9), A("RejectApproval", { call: "c2", by: "runtime" })], FORGED),
      9,
      /Withdraw\(c2\) is not enabled: c2 is approved/
    )
  })

  it("an Authorize after the revocation, after the expiry, past the uses; a Deny of a covered call", () => {
    expectRefused(
      checkAuthorityTrace([opened, proposed("c1"), A("Revoke", { k: "root" }), A("Authorize", { call: "c1" })], FORGED),
      3,
      /Authorize\(c1\) is not enabled/
    )
    const late = [opened, proposed("c1"), ...Array.from({ length: 6 }, () => A("Tick")), A("Authorize", { call: "c1" })]
    expectRefused(checkAuthorityTrace(late, FORGED), late.length - 1, /Authorize\(c1\) is not enabled.*now = 6/)
    const oneUse = { ...FORGED, rootUses: 1 }
    expectRefused(
      checkAuthorityTrace([opened, A("Authorize", { call: "c1" }), A("Start", { call: "c1" }), A("Authorize", { call: "c2" })], oneUse),
      3,
      /Authorize\(c2\) is not enabled/
    )
    expectRefused(checkAuthorityTrace([opened, A("Deny", { call: "c1" })], FORGED), 1, /Deny\(c1\) is not enabled/)
  })

  it("more opens than MaxCrashes, a call or a principal the constants do not have", () => {
    expectRefused(checkAuthorityTrace([opened, proposed("c1"), opened, opened], FORGED), 3, /MaxCrashes/)
    expectRefused(checkAuthorityTrace([opened, proposed("c9")], FORGED), 1, /not one of the constants' calls/)
    expectRefused(
      checkAuthorityTrace([...reference.slice(0, 7), A("IgnoreDecision", { call: "c2", by: "eve" })], FORGED),
      7,
      /eve is not one of the constants' principals/
    )
  })
})
