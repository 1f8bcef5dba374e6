/**
 * Refinement: the real executor, authority (capability tokens) and approval gate over a real file
 * session refine spec/Authority.tla (models/authority.ts).
 *
 * fast-check drives random command sequences against the model and the implementation side by
 * side (authority.harness.ts); after every command the refinement mapping of the implementation
 * (the journal read back from disk, the tokens, the revocation list, the clock) must equal the model
 * state, the live session's calls must be in the model's states, and the invariants must hold. A
 * command's model steps are computed from the model alone:
 * - Present(c, k) (call c presents node k to `Executor.runCall`): `Authorize(c, k)` when k covers c,
 *   else `Deny(c)`. The executor journals an authorization together with what follows it in one
 *   batch, so the command is `Authorize; Start` (no approval demanded) or `Authorize;
 *   RequestApproval` (skipped when the request's deadline would pass MaxTime: a bound of the model).
 * - Decide(c, p, h, yes|no) (`Approvals.approve` naming the arguments of call h, or `reject`):
 *   `Approve(c, p)` / `RejectApproval(c, p)` when the decision counts (`counts(c, p, hashOf(h))`),
 *   else `IgnoreDecision(c, p, hashOf(h))`, which changes nothing; the caller must get
 *   `ApprovalIgnored` with the reason the model gives, and the audit record is checked.
 * - then what the runtime does by itself while up (`closure`): an approved call is started by the
 *   executor waiting for its decision (`Start`), and a call awaiting approval whose deadline has come
 *   is expired by its timer (`Expire`), so Tick, Restart and Approve are followed by those steps.
 * - Withdraw(c) (`Approvals.withdraw`), Attenuate (a child token with caveats the test picks; the
 *   model step is the node its blocks grant together, which must be the claim the test meant),
 *   Revoke(k), Tick, Crash, Restart.
 * A command the model disables is sent where the implementation can receive it, and must change
 * nothing (a Present of a call that is not proposed: the executor refuses with a defect; a second
 * writer while one is up: SessionLocked; a second revocation; a Withdraw of a call not awaiting;
 * a decision about an unknown call: ApprovalUnknownCall), or else skipped with its reason counted.
 * At the end of each run, the runtime's trace (and the harness's Tick / Attenuate / Revoke steps)
 * must be accepted by the trace checker, in a state equal to the model's.
 *
 * Edge coverage: the abstract edges (action, the call's state before -> after) the runs took, out of
 * those of the model (the lifecycle spec/README.md lists, IgnoreDecision and the actions about no
 * call in every state). Those in `authorized` and `approved` are not the implementation's to take
 * but for the steps that leave them: it journals an authorization with its start or request, and an
 * approval is started by the waiting executor before anything else happens.
 *
 * Reproduce a failure: `SEED=<seed> FC_PATH=<path> REPLAY_PATH=<replayPath> vitest run
 * test/refinement/authority.refinement.test.ts` (fast-check prints them); RUNS=<n> changes the
 * number of runs.
 */
import { Cause, Exit } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type ActionName,
  type AuthorityState,
  actionNames,
  apply,
  type Call,
  type CallStatus,
  type Capability as CapName,
  callStatus,
  canonical,
  counts,
  covers,
  demands,
  finalStatuses,
  hashOf,
  Init,
  invariants,
  request
} from "../../models/authority.ts"
import { ApprovalIgnored, ApprovalUnknownCall } from "../../src/authority/Approvals.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import { InvariantViolation } from "../../src/internal/assert.ts"
import { SessionLocked } from "../../src/journal/JournalError.ts"
import { checkAuthorityTrace, constantsFromToken, explainAuthority } from "../trace/authority.checker.ts"
import { APPROVERS, AuthorityImpl, CALLS, K, loadMaterial, TICK_MS } from "./authority.harness.ts"

const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31)
const replayPath = process.env.REPLAY_PATH
const numRuns = Number(process.env.RUNS ?? 500)
const hasWithdraw = (actionNames as ReadonlyArray<string>).includes("Withdraw")

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/** A caveat the child may carry, with the calls it admits (undefined: all) and those it puts under approval, by hand. */
interface Item {
  readonly label: string
  readonly caveat: Caveat.Caveat
  readonly admits?: ReadonlyArray<Call>
  readonly approval?: ReadonlyArray<Call>
  /** Capability.attenuate must refuse it (it grants more than the root) */
  readonly widens?: true
}

const ALL: ReadonlyArray<Call> = K.calls
const MENU: ReadonlyArray<Item> = [
  { label: "tools{read}", caveat: Caveat.tools(["read"]), admits: ["c1", "c3"] },
  { label: "tools{deploy}", caveat: Caveat.tools(["deploy"]), admits: ["c2"] },
  { label: "tools{}", caveat: Caveat.tools([]), admits: [] },
  { label: "tools{read,wipe}", caveat: Caveat.tools(["read", "wipe"]), widens: true },
  { label: "n in {1}", caveat: Caveat.oneOf("n", [1]), admits: ["c1"] },
  { label: "n in {2,3}", caveat: Caveat.oneOf("n", [2, 3]), admits: ["c2", "c3"] },
  { label: "n <= 2", caveat: Caveat.range("n", { max: 2 }), admits: ["c1", "c2"] },
  { label: "path under work/ops", caveat: Caveat.pathUnder("path", "work/ops"), admits: ["c2"] },
  { label: "path under etc", caveat: Caveat.pathUnder("path", "etc"), widens: true },
  { label: "n in [1,2] (predicate)", caveat: Caveat.predicate({ op: "in", left: { arg: "n" }, values: [1, 2] }), admits: ["c1", "c2"] },
  {
    label: "not path prefix work/ops (predicate)",
    caveat: Caveat.predicate({ op: "not", expr: { op: "prefix", left: { arg: "path" }, right: { lit: "work/ops" } } }),
    admits: ["c1", "c3"]
  },
  { label: "approval for read", caveat: Caveat.needsApproval([...APPROVERS], { tools: ["read"] }), approval: ["c1", "c3"] },
  { label: "approval for all", caveat: Caveat.needsApproval([...APPROVERS]), approval: ALL },
  { label: "approval by mallory too", caveat: Caveat.needsApproval([...APPROVERS, "mallory"], { tools: ["deploy"] }), widens: true }
]

/** A decision's or withdrawal's call: the first call awaiting approval in the model (c2 if none); a decision's arguments: the call's own. */
const AWAITING = "*awaiting"
const OWN = "*own"

type Cmd =
  | { readonly kind: "present"; readonly c: Call; readonly k: CapName }
  | { readonly kind: "decide"; readonly c: Call; readonly p: string; readonly h: Call; readonly yes: boolean }
  | { readonly kind: "unknown"; readonly p: string }
  | { readonly kind: "withdraw"; readonly c: Call }
  | { readonly kind: "attenuate"; readonly items: ReadonlyArray<number>; readonly u: number }
  | { readonly kind: "revoke"; readonly k: CapName }
  | { readonly kind: "tick" }
  | { readonly kind: "crash" }
  | { readonly kind: "restart" }

const show = (cmd: Cmd): string => {
  switch (cmd.kind) {
    case "present":
      return `Present(${cmd.c},${cmd.k})`
    case "decide":
      return `${cmd.yes ? "Approve" : "Reject"}(${cmd.c},${cmd.p}${cmd.h === cmd.c || cmd.h === OWN ? "" : `,args of ${cmd.h}`})`
    case "unknown":
      return `Approve(unknown call,${cmd.p})`
    case "withdraw":
      return `Withdraw(${cmd.c})`
    case "attenuate":
      return `Attenuate(${cmd.items.map((i) => (MENU[i] as Item).label).join("; ")}; uses ${cmd.u})`
    case "revoke":
      return `Revoke(${cmd.k})`
    default:
      return cmd.kind[0]?.toUpperCase() + cmd.kind.slice(1)
  }
}

// ---------------------------------------------------------------------------------------------
// The model side
// ---------------------------------------------------------------------------------------------

/** A model step the command takes: action, args (for edge labels) and the state after it. */
interface Taken {
  readonly action: string
  readonly c: Call | undefined
  readonly from: AuthorityState
  readonly to: AuthorityState
}

const must = (s: AuthorityState | null, what: string): AuthorityState => {
  if (s === null) throw new Error(`the model refuses ${what}`)
  return s
}

/** Takes `action` and records it. */
function take(taken: Array<Taken>, s: AuthorityState, action: string, args: object, c?: Call): AuthorityState {
  const to = must(apply(s, action as ActionName, args as never, K), `${action}${canonical(args)}`)
  taken.push({ action, c, from: s, to })
  return to
}

/** What the runtime does by itself while up: the waiting executor starts an approved call, a timer expires a request whose deadline came. */
function closure(s: AuthorityState, taken: Array<Taken>): AuthorityState {
  if (!s.up) return s
  let x = s
  for (let changed = true; changed; ) {
    changed = false
    for (const c of K.calls) {
      const status = callStatus(x, c)
      if (status === "approved") {
        x = take(taken, x, "Start", { c }, c)
        changed = true
      } else if (status === "awaitingApproval" && x.now >= (request(x, c)?.deadline ?? Number.POSITIVE_INFINITY)) {
        x = take(taken, x, "Expire", { c }, c)
        changed = true
      }
    }
  }
  return x
}

/** The reason `Approvals` must give a decision the model ignores, and whether it journals it. */
function ignoredReason(s: AuthorityState, c: Call, p: string, h: Call, yes: boolean): { readonly why: string; readonly journaled: boolean } {
  const status = callStatus(s, c)
  if (status === "proposed" || status === "authorized") return { why: "notRequested", journaled: false }
  if (status === "awaitingApproval") {
    const req = request(s, c)
    if (req === undefined || !req.approvers.includes(p)) return { why: "notAnApprover", journaled: true }
    if (yes && hashOf(h) !== req.hash) return { why: "argumentsChanged", journaled: true }
    return { why: "expired", journaled: true }
  }
  // A call decided before: the ToolCall machine keeps the audit record of every decision after a request, started or not.
  return { why: "alreadyDecided", journaled: status !== "denied" && request(s, c) !== undefined }
}

type Plan = { readonly kind: "skip"; readonly reason: string } | { readonly kind: "refused"; readonly what: string } | { readonly kind: "steps" }

const ran = new Map<string, number>()
const skipped = new Map<string, number>()
const refused = new Map<string, number>()
const edges = new Set<string>()
const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1)
let runs = 0
let commandsRun = 0

/** The model's view of the run: the state, and the ignored decisions it expects journaled per call. */
interface Model {
  state: AuthorityState
  ignored: Record<Call, number>
}

async function expectRefines(m: Model, impl: AuthorityImpl, after: string): Promise<void> {
  const { state, ignored } = await impl.abstract()
  const context = `after ${after} (commands: ${impl.log.join(" ")})`
  expect(canonical(state), `refinement mapping ${context}`).toBe(canonical(m.state))
  expect(ignored, `ignored decisions journaled ${context}`).toEqual(m.ignored)
  const live = impl.liveStatuses()
  if (live !== undefined) expect(live, `live call states ${context}`).toEqual(Object.fromEntries(K.calls.map((c) => [c, callStatus(m.state, c)])))
  for (const [name, inv] of Object.entries(invariants)) expect(inv(m.state, K), `${name} ${context}`).toBe(true)
  impl.accept(state)
}

const statuses = (s: AuthorityState): Record<Call, CallStatus> => Object.fromEntries(K.calls.map((c) => [c, callStatus(s, c)]))

/** The child's claim the test means by `items` and `u` (undefined: a widening Capability.attenuate must refuse). */
function intendedClaim(items: ReadonlyArray<Item>, u: number, root: { calls: ReadonlyArray<Call>; approval: ReadonlyArray<Call>; uses: number }) {
  if (u > root.uses || items.some((i) => i.widens === true)) return undefined
  const g = root.calls.filter((c) => items.every((i) => i.admits === undefined || i.admits.includes(c)))
  const a = g.filter((c) => root.approval.includes(c) || items.some((i) => i.approval?.includes(c) === true))
  return { g, a, u }
}

class AuthCommand implements fc.AsyncCommand<Model, AuthorityImpl> {
  readonly cmd: Cmd
  private resolved: Cmd | undefined
  constructor(cmd: Cmd) {
    this.cmd = cmd
  }
  check(): boolean {
    return true
  }

  /** What the model says of the command in state s. */
  private plan(s: AuthorityState, cmd: Cmd): Plan {
    const down = { kind: "skip", reason: "no process is up to receive it" } as const
    switch (cmd.kind) {
      case "present": {
        if (!s.up) return down
        if (s.caps[cmd.k] === undefined) return { kind: "skip", reason: `no token for ${cmd.k} (not minted)` }
        if (callStatus(s, cmd.c) !== "proposed") return { kind: "refused", what: `Present of a ${callStatus(s, cmd.c)} call` }
        if (covers(s, cmd.k, cmd.c, K) && demands(s, cmd.k, cmd.c) && s.now + K.approvalTimeout > K.maxTime)
          return { kind: "skip", reason: "the request's deadline would pass MaxTime (a bound of the model)" }
        return { kind: "steps" }
      }
      case "decide":
      case "unknown":
        return s.up ? { kind: "steps" } : down
      case "withdraw":
        if (!hasWithdraw) return { kind: "skip", reason: "models/authority.ts has no Withdraw" }
        if (!s.up) return down
        return callStatus(s, cmd.c) === "awaitingApproval" ? { kind: "steps" } : { kind: "refused", what: `Withdraw of a ${callStatus(s, cmd.c)} call` }
      case "attenuate":
        return s.caps.child === undefined ? { kind: "steps" } : { kind: "skip", reason: "the child is minted (the model has one derived node)" }
      case "revoke":
        if (s.caps[cmd.k] === undefined) return { kind: "skip", reason: `no token for ${cmd.k} (not minted)` }
        return s.revoked.includes(cmd.k) ? { kind: "refused", what: "a second revocation" } : { kind: "steps" }
      case "tick":
        return s.now < K.maxTime ? { kind: "steps" } : { kind: "skip", reason: "the clock is at MaxTime (a bound of the model)" }
      case "crash":
        if (!s.up) return { kind: "skip", reason: "already down" }
        return s.crashes < K.maxCrashes ? { kind: "steps" } : { kind: "skip", reason: "no crash left (MaxCrashes, a bound of the model)" }
      case "restart":
        return s.up ? { kind: "refused", what: "a second writer while one is up" } : { kind: "steps" }
    }
  }

  /** The command with its call resolved in state s (see AWAITING, OWN). */
  private resolve(s: AuthorityState): Cmd {
    const cmd = this.cmd
    if (cmd.kind !== "decide" && cmd.kind !== "withdraw") return cmd
    const c = cmd.c === AWAITING ? (K.calls.find((x) => s.log[x] !== undefined && callStatus(s, x) === "awaitingApproval") ?? "c2") : cmd.c
    if (cmd.kind === "withdraw") return { ...cmd, c }
    return { ...cmd, c, h: cmd.h === OWN ? c : cmd.h }
  }

  async run(m: Model, impl: AuthorityImpl): Promise<void> {
    const s = m.state
    const cmd = this.resolve(s)
    this.resolved = cmd
    const plan = this.plan(s, cmd)
    const name = show(cmd)
    if (plan.kind === "skip") {
      count(skipped, `${cmd.kind}: ${plan.reason}`)
      return
    }
    commandsRun++
    if (plan.kind === "refused") {
      count(refused, plan.what)
      await this.refused(impl, s, cmd, name)
      await expectRefines(m, impl, name)
      return
    }
    const taken: Array<Taken> = []
    let next = s
    switch (cmd.kind) {
      case "present": {
        if (covers(s, cmd.k, cmd.c, K)) {
          next = take(taken, next, "Authorize", { c: cmd.c, k: cmd.k }, cmd.c)
          next = demands(s, cmd.k, cmd.c) ? take(taken, next, "RequestApproval", { c: cmd.c }, cmd.c) : take(taken, next, "Start", { c: cmd.c }, cmd.c)
        } else next = take(taken, next, "Deny", { c: cmd.c }, cmd.c)
        impl.present(cmd.c, cmd.k)
        break
      }
      case "decide": {
        const h = cmd.yes ? cmd.h : cmd.c // a "no" names no arguments (Approvals.reject takes none)
        const counted = counts(s, cmd.c, cmd.p, hashOf(h))
        const exit = await impl.decide(cmd.c, cmd.p, h, cmd.yes)
        if (counted) {
          next = take(taken, next, cmd.yes ? "Approve" : "RejectApproval", { c: cmd.c, p: cmd.p }, cmd.c)
          if (Exit.isFailure(exit)) throw new Error(`${name} counts in the model, the implementation says ${Cause.pretty(exit.cause)}`)
        } else {
          next = take(taken, next, "IgnoreDecision", { c: cmd.c, p: cmd.p, h: hashOf(h) }, cmd.c)
          const expected = ignoredReason(s, cmd.c, cmd.p, h, cmd.yes)
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
          if (!(error instanceof ApprovalIgnored))
            throw new Error(`${name} is ignored in the model, the implementation gives ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "success"}`)
          expect(error.why, `${name}: why it is ignored`).toBe(expected.why)
          if (expected.journaled) m.ignored = { ...m.ignored, [cmd.c]: (m.ignored[cmd.c] ?? 0) + 1 }
          count(ran, `IgnoreDecision(${expected.why}${expected.journaled ? ", journaled" : ""})`)
        }
        break
      }
      case "unknown": {
        const exit = await impl.decideUnknown(cmd.p)
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
        expect(error, `${name}: a typed error`).toBeInstanceOf(ApprovalUnknownCall)
        count(ran, "Approve(unknown call): ApprovalUnknownCall")
        break
      }
      case "withdraw": {
        next = take(taken, next, "Withdraw", { c: cmd.c }, cmd.c)
        const exit = await impl.withdraw(cmd.c)
        if (Exit.isFailure(exit)) throw new Error(`${name}: ${Cause.pretty(exit.cause)}`)
        break
      }
      case "attenuate": {
        const items = cmd.items.map((i) => MENU[i] as Item)
        const root = s.caps.root as NonNullable<AuthorityState["caps"]["root"]>
        const meant = intendedClaim(items, cmd.u, root)
        const exit = await impl.attenuate([...items.map((i) => i.caveat), Caveat.uses(cmd.u)], name)
        if (meant === undefined) {
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
          expect((error as { _tag?: string } | undefined)?._tag, `${name} widens: Capability.attenuate refuses it`).toBe("CapabilityWidened")
          count(refused, "a widening child (CapabilityWidened: no token, so no node)")
          break
        }
        if (Exit.isFailure(exit)) throw new Error(`${name}: ${Cause.pretty(exit.cause)}`)
        expect({ g: exit.value.calls, a: exit.value.approval, u: exit.value.uses }, `${name}: what the token grants`).toEqual(meant)
        next = take(taken, next, "Attenuate", { k: "root", ch: "child", ...meant })
        break
      }
      case "revoke":
        next = take(taken, next, "Revoke", { k: cmd.k })
        impl.revoke(cmd.k)
        break
      case "tick":
        next = take(taken, next, "Tick", {})
        await impl.tick()
        break
      case "crash":
        next = take(taken, next, "Crash", {})
        await impl.crash()
        break
      case "restart":
        next = take(taken, next, "Restart", {})
        await impl.restart()
        break
    }
    next = closure(next, taken)
    await impl.settle(name, statuses(next))
    for (const t of taken) {
      count(ran, t.action)
      for (const e of edgesOf(t)) edges.add(e)
    }
    m.state = next
    await expectRefines(m, impl, name)
  }

  /** A command the model disables: the implementation refuses it and nothing changes. */
  private async refused(impl: AuthorityImpl, s: AuthorityState, cmd: Cmd, name: string): Promise<void> {
    const head = impl.head()
    switch (cmd.kind) {
      case "present": {
        const exit = await impl.presentRefused(cmd.c, cmd.k)
        const defect = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Die")?.defect : undefined
        expect(defect, `${name}: the executor refuses a call that is not proposed`).toBeInstanceOf(InvariantViolation)
        break
      }
      case "withdraw": {
        const exit = await impl.withdraw(cmd.c)
        expect(Exit.isSuccess(exit), `${name}: a no-op`).toBe(true)
        break
      }
      case "revoke":
        impl.revoke(cmd.k)
        break
      case "restart": {
        const exit = await impl.secondWriter()
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
        expect(error, `${name}: SessionLocked`).toBeInstanceOf(SessionLocked)
        break
      }
      default:
        throw new Error(`${name} has no refusal`)
    }
    expect(impl.head(), `${name} wrote nothing`).toBe(head)
    await impl.settle(name, statuses(s))
  }

  toString(): string {
    return this.resolved === undefined ? show(this.cmd) : show(this.resolved)
  }

  /** A fresh copy per run, so that a printed counterexample names the calls of the run that failed. */
  [fc.cloneMethod](): AuthCommand {
    return new AuthCommand(this.cmd)
  }
}

// ---------------------------------------------------------------------------------------------
// Edges
// ---------------------------------------------------------------------------------------------

const ENVIRONMENT = ["Tick", "Attenuate", "Revoke", "Crash", "Restart"] as const
const STATUSES: ReadonlyArray<CallStatus> = ["proposed", "authorized", "denied", "awaitingApproval", "approved", "rejected", "expired", "started"]

/** The abstract edges of one model step: (action, the acting call's state before -> after); for an action about no call, one per call. */
function edgesOf(t: Taken): Array<string> {
  const calls = t.c === undefined ? K.calls : [t.c]
  return calls.map((c) => `${t.action} ${callStatus(t.from, c)} -> ${callStatus(t.to, c)}`)
}

/**
 * The model's abstract edges: the lifecycle steps (test/models/authority.model.test.ts checks that
 * these are exactly the steps that change a call's state), IgnoreDecision in every state, and the
 * actions about no call in every state.
 */
function modelEdges(): Set<string> {
  const out = new Set<string>([
    "Authorize proposed -> authorized",
    "Deny proposed -> denied",
    "RequestApproval authorized -> awaitingApproval",
    "Approve awaitingApproval -> approved",
    "RejectApproval awaitingApproval -> rejected",
    "Expire awaitingApproval -> expired",
    "Start authorized -> started",
    "Start approved -> started"
  ])
  if (hasWithdraw) out.add("Withdraw awaitingApproval -> rejected")
  for (const s of STATUSES) {
    out.add(`IgnoreDecision ${s} -> ${s}`)
    for (const a of ENVIRONMENT) out.add(`${a} ${s} -> ${s}`)
  }
  return out
}

/** Steps in a state the implementation never rests in (authorized: journaled with its start or request; approved: started by the waiting executor). */
const transient = (edge: string): boolean => / (authorized|approved) -> (authorized|approved)$/.test(edge)

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const principal = fc.constantFrom("alice", "bob", "mallory")
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("present" as const),
      c: fc.constantFrom<Call>("c1", "c2", "c2", "c3"),
      k: fc.constantFrom<CapName>("root", "root", "child")
    })
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("decide" as const),
      c: fc.constantFrom<Call>(AWAITING, AWAITING, AWAITING, "c1", "c2", "c3"),
      p: fc.constantFrom("alice", "alice", "alice", "bob", "bob", "mallory"),
      h: fc.constantFrom<Call>(OWN, OWN, OWN, OWN, "c1", "c2", "c3"),
      yes: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unknown" as const), p: principal }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("withdraw" as const), c: fc.constantFrom<Call>(AWAITING, AWAITING, "c1", "c2") }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("attenuate" as const),
      items: fc.uniqueArray(fc.nat({ max: MENU.length - 1 }), { maxLength: 3 }),
      u: fc.constantFrom(1, 2, 2, 3)
    })
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("revoke" as const), k: fc.constantFrom<CapName>("root", "child", "child") }) },
  { weight: 4, arbitrary: fc.constant({ kind: "tick" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "crash" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "restart" as const }) }
)
const commands = [cmdArb.map((cmd) => new AuthCommand(cmd))]

const sorted = (m: Map<string, number>): string =>
  [...m]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ")

/**
 * Walks that take every takeable edge on their own (each call through each of its resting states,
 * with a decision, a tick, an attenuation, a revocation, a crash and a restart in it), so that the
 * coverage does not depend on the seed; the random runs add the interleavings.
 */
const item = (label: string): number => MENU.findIndex((i) => i.label === label)
const P = (c: Call, k: CapName = "root"): Cmd => ({ kind: "present", c, k })
const D = (c: Call, p: string, yes = true): Cmd => ({ kind: "decide", c, p, h: OWN, yes })
const everything = (c: Call, p: string): ReadonlyArray<Cmd> => [
  D(c, p),
  { kind: "attenuate", items: [item("n <= 2")], u: 1 },
  { kind: "revoke", k: "child" },
  { kind: "crash" },
  { kind: "tick" },
  { kind: "restart" }
]
const WALKS: ReadonlyArray<ReadonlyArray<Cmd>> = [
  // proposed (c1, c3) and awaiting (c2); then expired
  [P("c2"), D("c1", "alice"), ...everything("c2", "mallory")],
  [P("c2"), { kind: "tick" }, { kind: "tick" }, ...everything("c2", "alice")],
  // denied and started
  [P("c3"), P("c1"), ...everything("c3", "alice")],
  // approved and started; rejected by a person; withdrawn
  [P("c2"), D("c2", "alice"), ...everything("c2", "bob")],
  [P("c2"), D("c2", "bob", false), ...everything("c2", "alice")],
  [P("c2"), { kind: "withdraw", c: "c2" }, ...everything("c2", "alice")],
  // a restart that expires a call whose deadline passed while down
  [P("c2"), { kind: "crash" }, { kind: "tick" }, { kind: "tick" }, { kind: "restart" }, D("c2", "alice")]
]

async function runWalks(): Promise<number> {
  let steps = 0
  for (const walk of WALKS) {
    const impl = await AuthorityImpl.make()
    try {
      const model: Model = { state: Init(K), ignored: Object.fromEntries(K.calls.map((c) => [c, 0])) }
      await impl.settle("Init", statuses(model.state))
      await expectRefines(model, impl, "Init")
      for (const cmd of walk) await new AuthCommand(cmd).run(model, impl)
      steps += walk.length
      const checked = checkAuthorityTrace(impl.steps, K)
      if (!checked.ok) expect.fail(`the trace is refused: ${explainAuthority(checked)}\n  commands: ${impl.log.join(" ")}`)
    } finally {
      await impl.dispose()
    }
  }
  return steps
}

describe("the executor, capabilities and approvals refine spec/Authority.tla", () => {
  it("the refinement's constants are what the root token grants", async () => {
    const m = await loadMaterial()
    const read = await constantsFromToken(m.root, {
      calls: CALLS,
      keyring: m.keyring,
      tickMs: TICK_MS,
      approvalTimeoutMs: K.approvalTimeout * TICK_MS,
      principals: K.principals,
      capabilities: K.capabilities,
      maxTime: K.maxTime,
      maxCrashes: K.maxCrashes,
      maxUses: K.maxUses
    })
    expect(read).toEqual(K)
    expect(canonical(m.rootRecord)).toBe(canonical(Init(K).caps.root))
  })

  it("random command sequences: the mapping equals the model after every command", async () => {
    console.log(`SEED=${seed}${replayPath === undefined ? "" : ` REPLAY_PATH=${replayPath}`}`)
    const started = Date.now()
    const walked = await runWalks()
    const walkEdges = edges.size
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: "max", ...(replayPath === undefined ? {} : { replayPath }) }), async (cmds) => {
        const impl = await AuthorityImpl.make()
        try {
          const model: Model = { state: Init(K), ignored: Object.fromEntries(K.calls.map((c) => [c, 0])) }
          await impl.settle("Init", statuses(model.state))
          await expectRefines(model, impl, "Init")
          await fc.asyncModelRun(() => ({ model, real: impl }), cmds)
          // The runtime's trace of the whole run (and the harness's environment steps): accepted, and it can end where the model is.
          const checked = checkAuthorityTrace(impl.steps, K)
          if (!checked.ok) expect.fail(`the trace is refused: ${explainAuthority(checked)}\n  commands: ${impl.log.join(" ")}`)
          const key = canonical(model.state)
          expect(
            checked.states.some((x) => canonical(x) === key),
            `the trace can end in the model's state (commands: ${impl.log.join(" ")})`
          ).toBe(true)
          runs++
        } finally {
          await impl.dispose()
        }
      }),
      { seed, numRuns, ...(replayPath === undefined ? {} : { path: process.env.FC_PATH }) }
    )
    const all = modelEdges()
    const takeable = [...all].filter((e) => !transient(e))
    const missed = takeable.filter((e) => !edges.has(e))
    const outside = [...edges].filter((e) => !all.has(e))
    console.log(
      `authority refinement: ${WALKS.length} directed walks (${walked} commands, ${walkEdges} edges), ${runs} random runs, ${commandsRun} commands in all, in ${Date.now() - started} ms\n` +
        `  model steps: ${sorted(ran)}\n` +
        `  refused as the model says (nothing changed): ${sorted(refused)}\n` +
        `  skipped: ${sorted(skipped)}\n` +
        `  edges (action, call state before -> after): ${edges.size} taken of the model's ${all.size}; ${takeable.length} takeable, ${takeable.length - missed.length} taken` +
        `${missed.length === 0 ? "" : `; missed: ${missed.join("; ")}`}\n` +
        `  not takeable (states the implementation never rests in): ${[...all].filter(transient).join("; ")}`
    )
    expect(outside, "edges the model does not have").toEqual([])
    expect(missed, "takeable edges not taken").toEqual([])
    for (const action of [
      "Authorize",
      "Deny",
      "RequestApproval",
      "Approve",
      "RejectApproval",
      "Expire",
      "IgnoreDecision",
      "Start",
      "Attenuate",
      "Revoke",
      "Tick",
      "Crash",
      "Restart",
      ...(hasWithdraw ? ["Withdraw"] : [])
    ]) {
      expect(ran.get(action) ?? 0, action).toBeGreaterThan(0)
    }
    for (const s of finalStatuses)
      expect(
        [...edges].some((e) => e.endsWith(`-> ${s}`)),
        s
      ).toBe(true)
  }, 300_000)
})
