/**
 * Trace validation for spec/Authority.tla (design §6): a trace of `Trace.Step`s is accepted only if
 * models/authority.ts can take every Authority step of it, in order, from `Init`.
 *
 * What the runtime emits (`traceCalls` in src/session/Session.ts): one step per journaled authority
 * event, `{spec: "Authority", action, args: {call, by?}}` with action Authorize, Deny,
 * RequestApproval, Approve, RejectApproval, Expire, IgnoreDecision or Start; a ToolCall `Recover`
 * step at every writer open. The steps do not say everything the model needs, so:
 * - the capability an `Authorize` used and the hash an `IgnoreDecision` named are not in the
 *   trace: the checker keeps the SET of model states the trace can lead to (one per choice of the
 *   capability, as TLC's trace validation keeps every state a step with unknown variables allows)
 *   and refuses a step that no state of the set can take;
 * - what happens outside the runtime (time passing, a token minted, a revocation) is not the
 *   runtime's to emit: the test that drives the run pushes those steps into the same array,
 *   `{spec: "Authority", action: "Tick" | "Attenuate" | "Revoke", args}`, when it does them
 *   (before it moves the clock, so an expiry the tick causes follows it);
 * - a process that dies cannot emit `Crash`: every writer open after the first is `Restart`,
 *   preceded by `Crash` when the model is up (the first open, before any call, is the initial
 *   state);
 * - `RejectApproval` by `runtime` (the `by` of `Approvals.withdraw`) is the model's `Withdraw`;
 * - ToolCall steps other than `Recover` are skipped (`Propose` only checks the call is one of the
 *   constants'), as are other specs' steps.
 *
 * Calls keep their implementation ids as model call names (the constants list them); principals
 * keep their names. Build constants from the real capability with {@link capRecordOf}.
 *
 * @example
 *   const result = checkAuthorityTrace(steps, K)
 *   if (!result.ok) throw new Error(explainAuthority(result))
 */
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import {
  type ActionName,
  type AuthorityConstants,
  type AuthorityState,
  actionNames,
  apply,
  type Call,
  type CapRecord,
  callStatus,
  hashes,
  Init,
  request,
  stateKey
} from "../../models/authority.ts"
import * as Capability from "../../src/authority/Capability.ts"
import type { Event, ToolCallEvent } from "../../src/Event.ts"
import type * as Trace from "../../src/trace/Trace.ts"

/** The `by` of the runtime's withdrawal (`Approvals.withdraw`): the model's `Withdraw`. */
export const RUNTIME = "runtime"

type Args = { readonly [key: string]: unknown }

export type AuthorityCheckResult =
  | {
      readonly ok: true
      /** every model state the whole trace can lead to (at least one) */
      readonly states: ReadonlyArray<AuthorityState>
      /** the model steps taken, in order (`Action(args)`), with the Crash / Restart steps inserted */
      readonly taken: ReadonlyArray<string>
    }
  | {
      readonly ok: false
      /** index of the refused trace step */
      readonly at: number
      readonly step: Trace.Step
      readonly reason: string
      /** the model states the step was tried in */
      readonly states: ReadonlyArray<AuthorityState>
      readonly taken: ReadonlyArray<string>
    }

const has = (name: string): name is ActionName => (actionNames as ReadonlyArray<string>).includes(name)

/** Applies an action by name (one the model may not have, e.g. `Withdraw` before it existed: null). */
function step(s: AuthorityState, action: string, args: object, K: AuthorityConstants): AuthorityState | null {
  if (!has(action)) return null
  return apply(s, action, args as never, K)
}

const dedupe = (states: ReadonlyArray<AuthorityState>): Array<AuthorityState> => {
  const byKey = new Map<string, AuthorityState>()
  for (const s of states) byKey.set(stateKey(s), s)
  return [...byKey.values()]
}

/** Why call `c` cannot take `action` in `s` (for refusals): its status, the clock, the process. */
function why(s: AuthorityState, c: Call | undefined, action: string): string {
  const parts: Array<string> = []
  if (c !== undefined && s.log[c] !== undefined) {
    parts.push(`${c} is ${callStatus(s, c)}`)
    const req = request(s, c)
    if (req !== undefined) parts.push(`its deadline is ${req.deadline}, approvers ${req.approvers.join(", ")}`)
  }
  parts.push(`now = ${s.now}`, s.up ? "up" : "down", `minted ${Object.keys(s.caps).join(", ")}`)
  if (s.revoked.length > 0) parts.push(`revoked ${s.revoked.join(", ")}`)
  return `${action} is not enabled: ${parts.join(", ")}`
}

/** Accepts `steps` iff models/authority.ts (with constants `K`) can take every Authority step of them in order. */
export function checkAuthorityTrace(steps: ReadonlyArray<Trace.Step>, K: AuthorityConstants): AuthorityCheckResult {
  let states: Array<AuthorityState> = [Init(K)]
  const taken: Array<string> = []
  let begun = false
  const refuse = (at: number, reason: string): AuthorityCheckResult => ({ ok: false, at, step: steps[at] as Trace.Step, reason, states, taken })

  for (const [at, s] of steps.entries()) {
    const args = s.args as Args
    if (s.spec === "ToolCall") {
      if (s.action === "Recover") {
        if (!begun) {
          begun = true // the first open: the initial state
          continue
        }
        const crashed = states.flatMap((x) => (x.up ? [step(x, "Crash", {}, K)] : [x])).filter((x): x is AuthorityState => x !== null)
        if (crashed.length === 0) return refuse(at, `Crash (before the Restart of this open) is disabled: crashes = ${states[0]?.crashes} = MaxCrashes`)
        const restarted = crashed.map((x) => step(x, "Restart", {}, K)).filter((x): x is AuthorityState => x !== null)
        if (restarted.length === 0) return refuse(at, "Restart is disabled")
        if (states.some((x) => x.up)) taken.push("Crash")
        taken.push("Restart")
        states = dedupe(restarted)
        continue
      }
      begun = true
      if (s.action === "Propose") {
        const c = args.call
        if (typeof c !== "string" || !K.calls.includes(c))
          return refuse(at, `call ${JSON.stringify(c)} is not one of the constants' calls (${K.calls.join(", ")})`)
      }
      continue
    }
    if (s.spec !== "Authority") continue
    begun = true
    const c = typeof args.call === "string" ? args.call : undefined
    if (c !== undefined && !K.calls.includes(c)) return refuse(at, `call ${c} is not one of the constants' calls (${K.calls.join(", ")})`)
    const by = typeof args.by === "string" ? args.by : undefined
    let next: Array<AuthorityState>
    let label: string
    switch (s.action) {
      case "Authorize": {
        if (c === undefined) return refuse(at, "Authorize has no call")
        // The trace does not say which capability: every one that covers the call is a possible step.
        next = states.flatMap((x) => K.capabilities.map((k) => step(x, "Authorize", { c, k }, K))).filter((x): x is AuthorityState => x !== null)
        label = `Authorize(${c})`
        break
      }
      case "Deny":
      case "RequestApproval":
      case "Expire":
      case "Start":
      case "Withdraw": {
        if (c === undefined) return refuse(at, `${s.action} has no call`)
        next = states.map((x) => step(x, s.action, { c }, K)).filter((x): x is AuthorityState => x !== null)
        label = `${s.action}(${c})`
        break
      }
      case "Approve":
      case "RejectApproval": {
        if (c === undefined || by === undefined) return refuse(at, `${s.action} has no call or no by`)
        const action = s.action === "RejectApproval" && by === RUNTIME ? "Withdraw" : s.action
        if (action === "Withdraw" && !has("Withdraw")) return refuse(at, `a rejection by ${RUNTIME} (a withdrawal) is no action of models/authority.ts`)
        if (action !== "Withdraw" && !K.principals.includes(by)) return refuse(at, `${by} is not one of the constants' principals (${K.principals.join(", ")})`)
        next = states.map((x) => step(x, action, action === "Withdraw" ? { c } : { c, p: by }, K)).filter((x): x is AuthorityState => x !== null)
        label = action === "Withdraw" ? `Withdraw(${c})` : `${action}(${c}, ${by})`
        break
      }
      case "IgnoreDecision": {
        if (c === undefined || by === undefined) return refuse(at, "IgnoreDecision has no call or no by")
        if (!K.principals.includes(by)) return refuse(at, `${by} is not one of the constants' principals (${K.principals.join(", ")})`)
        // The trace does not say which arguments the decision named: any hash for which it does not count.
        const named = typeof args.hash === "string" ? [args.hash] : hashes(K)
        next = states.filter((x) => named.some((h) => step(x, "IgnoreDecision", { c, p: by, h }, K) !== null))
        label = `IgnoreDecision(${c}, ${by})`
        break
      }
      case "Tick":
      case "Crash":
      case "Restart":
        next = states.map((x) => step(x, s.action, {}, K)).filter((x): x is AuthorityState => x !== null)
        label = s.action
        break
      case "Revoke":
      case "Attenuate":
        next = states.map((x) => step(x, s.action, args, K)).filter((x): x is AuthorityState => x !== null)
        label = `${s.action}(${JSON.stringify(args)})`
        break
      default:
        return refuse(at, `${s.action} is not an action of spec/Authority.tla`)
    }
    if (next.length === 0) return refuse(at, states.map((x) => why(x, c, label)).join("; or "))
    taken.push(label)
    states = dedupe(next)
  }
  return { ok: true, states, taken }
}

/** A readable account of a result (for assertion messages). */
export function explainAuthority(result: AuthorityCheckResult): string {
  if (result.ok) return `accepted: ${result.taken.join(" ")}`
  return `trace step ${result.at} ${result.step.action}(${JSON.stringify(result.step.args)}) refused: ${result.reason}\n  after: ${result.taken.join(" ")}`
}

/** The Authority steps of a trace, as `Action(call[,by])` (readable and comparable). */
export const authoritySteps = (steps: ReadonlyArray<Trace.Step>): Array<string> =>
  steps.filter((s) => s.spec === "Authority").map((s) => `${s.action}(${[s.args.call, s.args.by].filter((x) => x !== undefined).join(",")})`)

/** The journal events the session traces as Authority steps (one step each, in journal order). */
const tracedAuthority = (e: Event): e is ToolCallEvent =>
  e._tag.startsWith("tool.call.") &&
  e._tag !== "tool.call.proposed" &&
  (e._tag !== "tool.call.started" || e.attempt === 1) &&
  !["tool.call.succeeded", "tool.call.failed", "tool.call.cancelled", "tool.call.timedOut", "tool.call.compensated"].includes(e._tag)

/**
 * The steps with `Tick` steps inserted from the journal's times (spec/README.md: the times are
 * milliseconds from Clock; a trace check maps them to ticks monotonically, tick = floor(ms / tickMs)):
 * before each runtime Authority step, as many Ticks as its record's time is ticks past the last one.
 * For runs whose clock moves concurrently with decisions, where a test cannot emit a Tick at the
 * instant the clock moves. `events` is the run's journal (all of it, in order).
 */
export function withTicksFromJournal(steps: ReadonlyArray<Trace.Step>, events: ReadonlyArray<Event>, tickMs: number): Array<Trace.Step> {
  const times = events.filter(tracedAuthority).map((e) => e.time)
  const out: Array<Trace.Step> = []
  let tick = 0
  let i = 0
  for (const step of steps) {
    if (step.spec === "Authority" && ["Tick", "Attenuate", "Revoke", "Crash", "Restart"].includes(step.action))
      throw new Error("the steps already have environment steps")
    if (step.spec === "Authority") {
      const time = times[i++]
      if (time === undefined) throw new Error(`trace step ${step.action}(${JSON.stringify(step.args)}) has no journal record`)
      for (const t = Math.floor(time / tickMs); tick < t; tick++) out.push({ spec: "Authority", action: "Tick", args: {} })
    }
    out.push(step)
  }
  if (i !== times.length) throw new Error(`${times.length} journal records for ${i} Authority steps`)
  return out
}

// ---------------------------------------------------------------------------------------------
// From real tokens to model constants and nodes
// ---------------------------------------------------------------------------------------------

/** A model call: a tool and its arguments (the decoded input). */
export interface CallSpec {
  readonly tool: string
  readonly input: unknown
}

/**
 * The node a token is (spec/README.md, "Tokens as nodes"): the calls its blocks grant together
 * (every caveat of every block holds, ignoring time and use counts), those they grant only with an
 * approval, its expiry in ticks (the earliest expiry of its blocks) and the use count of its last
 * block (`undefined` without one). Verifies the token (signatures, no widening): a token that does
 * not verify has no node here (undefined).
 */
export async function capRecordOf(
  token: string,
  keyring: Capability.Keyring,
  calls: Readonly<Record<Call, CallSpec>>,
  tickMs: number,
  parent: string
): Promise<{ readonly record: Omit<CapRecord, "uses"> & { readonly uses: number | undefined }; readonly approvers: ReadonlyArray<string> } | undefined> {
  const verified = await Effect.runPromise(
    Capability.verify(token, { keyring, revoked: new Set(), cache: false }).pipe(Effect.option, Effect.provide(TestClock.layer()))
  )
  if (verified._tag === "None") return undefined
  const v = verified.value
  const granted: Array<Call> = []
  const approval: Array<Call> = []
  const approvers = new Set<string>()
  for (const [c, spec] of Object.entries(calls)) {
    const a = Capability.authorize(v, { tool: spec.tool, input: spec.input, now: 0, uses: 0 })
    if (!a.granted) continue
    granted.push(c)
    if (a.approval !== undefined) {
      approval.push(c)
      for (const p of a.approval.approvers) approvers.add(p)
    }
  }
  const last = v.caveats[v.caveats.length - 1] ?? []
  const usesCaveat = last.find((cv) => cv.kind === "uses")
  return {
    record: {
      parent,
      calls: granted.sort(),
      approval: approval.sort(),
      expiry: v.expiry === undefined ? Number.POSITIVE_INFINITY : v.expiry.at / tickMs,
      uses: usesCaveat?.kind === "uses" ? usesCaveat.max : undefined
    },
    approvers: [...approvers].sort()
  }
}

/** What a run's constants need besides the root token. */
export interface ConstantsOptions {
  readonly calls: Readonly<Record<Call, CallSpec>>
  readonly keyring: Capability.Keyring
  readonly tickMs: number
  /** the approval timeout the authority uses, in ms (a multiple of tickMs) */
  readonly approvalTimeoutMs: number
  readonly principals: ReadonlyArray<string>
  readonly capabilities?: ReadonlyArray<string>
  readonly maxTime: number
  readonly maxCrashes: number
  readonly maxUses?: number
}

/**
 * The model constants of a run whose root capability is `token`: RootGrants, RootApproval,
 * RootExpiry, RootUses and Approvers are read from the token (its caveats, verified), not written by
 * hand. A token without expiry expires at MaxTime (the trace must stay before it); without a use
 * count it has one use per call.
 */
export async function constantsFromToken(token: string, options: ConstantsOptions): Promise<AuthorityConstants> {
  const node = await capRecordOf(token, options.keyring, options.calls, options.tickMs, "root")
  if (node === undefined) throw new Error("the root token does not verify")
  const calls = Object.keys(options.calls)
  const rootUses = node.record.uses ?? calls.length
  const timeout = options.approvalTimeoutMs / options.tickMs
  if (!Number.isInteger(timeout) || timeout < 1) throw new Error(`the approval timeout ${options.approvalTimeoutMs} ms is not a positive number of ticks`)
  return {
    calls,
    capabilities: [...(options.capabilities ?? ["root"])].sort(),
    root: "root",
    rootGrants: node.record.calls,
    rootApproval: node.record.approval,
    rootExpiry: Math.min(node.record.expiry, options.maxTime),
    rootUses,
    maxUses: Math.max(options.maxUses ?? rootUses, rootUses),
    principals: [...options.principals].sort(),
    approvers: node.approvers.length > 0 ? node.approvers : [...options.principals].sort().slice(0, 1),
    approvalTimeout: timeout,
    maxTime: options.maxTime,
    maxCrashes: options.maxCrashes
  }
}

/** The model hash of implementation arguments' hash `argsHash`: that of the call whose arguments hash to it. */
export function modelHash(argsHash: string, implHashes: Readonly<Record<Call, string>>): string {
  const c = Object.keys(implHashes).find((x) => implHashes[x] === argsHash)
  return c === undefined ? `hash:? (${argsHash.slice(0, 16)})` : `hash:${c}`
}
