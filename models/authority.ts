/**
 * Executable transcription of `spec/Authority.tla`: the edge of a tool call from `proposed` to
 * `started`, through a capability check and, where the capability demands it, an approval with a
 * durable deadline.
 *
 * When to use: exhaustive exploration (test/models/authority.model.test.ts), refinement tests that
 * drive the executor's check and the approval gate beside it, and trace validation. Every TLA+
 * variable is a field of {@link AuthorityState}, every TLA+ action a function of the same name, every
 * `...Inv` an entry of {@link invariants}. Written from the spec, never from `src/`: a model copied
 * from the implementation proves nothing.
 *
 * Details: states are plain JSON data so they can be keyed by {@link stateKey} (or
 * {@link canonical}). Sets (`revoked`, a node's `calls` and `approval`, a request's `approvers`) are
 * arrays sorted ascending, so that equal TLA+ sets serialise equally. The spec's functions with a
 * growing domain (`caps`: the minted nodes; `checked`: the authorized calls) are objects with
 * exactly those keys. Actions are pure: `(state, args, constants?) => state | null`, `null` meaning
 * the action is disabled (its TLA+ guard is false). They never mutate their input.
 *
 * Gotcha: a call's authority state is never stored: {@link callStatus} folds it from the log (the
 * type of its latest record). `IgnoreDecision` returns its input unchanged when enabled (the spec's
 * `UNCHANGED vars`: the implementation journals `tool.call.decisionIgnored`, which changes no
 * state). The arguments' hash is {@link hashOf}`(c)` = `"hash:" + c` (the spec's
 * `HashOf(c) == <<"hash", c>>`, a bijection).
 *
 * @example
 * let s = Authorize(Init(), { c: "c2", k: "root" })
 * s = s && RequestApproval(s, { c: "c2" })
 * s = s && Approve(s, { c: "c2", p: "alice" })
 * s = s && Start(s, { c: "c2" })
 * // callStatus(s, "c2") = "started"
 */

import { canonical } from "./canonical.ts"

export type Call = string
export type Capability = string
export type Principal = string
export type Hash = string

/** Authority.tla `CallStates`: the authority part of the ToolCall machine's states. */
export type CallStatus = "proposed" | "authorized" | "denied" | "awaitingApproval" | "approved" | "rejected" | "expired" | "started"

/** One journal record. Mirrors the record shapes of Authority.tla. */
export type AuthorityRecord =
  | { readonly type: "proposed" | "denied" }
  | { readonly type: "authorized"; readonly cap: Capability }
  | { readonly type: "awaitingApproval"; readonly hash: Hash; readonly approvers: readonly Principal[]; readonly deadline: number }
  | { readonly type: "approved"; readonly by: Principal; readonly hash: Hash; readonly at: number }
  | { readonly type: "rejected"; readonly by: Principal }
  | { readonly type: "expired"; readonly deadline: number }
  | { readonly type: "started"; readonly attempt: 1 }

export type RecordType = AuthorityRecord["type"]

/** Authority.tla `CapRecords`: a capability node (the root is its own parent). */
export interface CapRecord {
  readonly parent: Capability
  /** the calls it covers (sorted) */
  readonly calls: readonly Call[]
  /** the calls it covers only with an approval (sorted; a subset of `calls`) */
  readonly approval: readonly Call[]
  /** valid while `now < expiry` */
  readonly expiry: number
  /** how many calls it (and the nodes derived from it) may authorize */
  readonly uses: number
}

/** Authority.tla `Checks`: what held of the capability an `Authorize` named, at that moment. */
export interface Check {
  readonly cap: Capability
  readonly verified: boolean
  readonly covered: boolean
  readonly revoked: boolean
  readonly expired: boolean
  readonly exhausted: boolean
}

/** The TLA+ variables; see Authority.tla for what each one means. */
export interface AuthorityState {
  /** the durable journal, per call: `log[c]` is c's authority records, from its proposal on */
  readonly log: Readonly<Record<Call, readonly AuthorityRecord[]>>
  /** the minted capability nodes (keys: exactly the minted ones) */
  readonly caps: Readonly<Record<Capability, CapRecord>>
  /** the revocation list (sorted) */
  readonly revoked: readonly Capability[]
  /** the clock */
  readonly now: number
  /** history variable: the check of each authorized call's `Authorize` (keys: exactly the authorized calls) */
  readonly checked: Readonly<Record<Call, Check>>
  /** crashes so far */
  readonly crashes: number
  /** the process is up */
  readonly up: boolean
}

/** The CONSTANTS of Authority.tla. */
export interface AuthorityConstants {
  readonly calls: readonly Call[]
  readonly capabilities: readonly Capability[]
  /** the capability the runtime issues */
  readonly root: Capability
  readonly rootGrants: readonly Call[]
  readonly rootApproval: readonly Call[]
  readonly rootExpiry: number
  readonly rootUses: number
  /** bound on the use count a derived node may claim */
  readonly maxUses: number
  readonly principals: readonly Principal[]
  /** who may approve (recorded in every request) */
  readonly approvers: readonly Principal[]
  /** a request's deadline is `now + approvalTimeout` */
  readonly approvalTimeout: number
  /** bound on the clock */
  readonly maxTime: number
  /** bound on Crash */
  readonly maxCrashes: number
}

/**
 * The constants of spec/MCAuthority.cfg: the root covers c1 outright and c2 only with an approval,
 * expires at 2, has two uses; one child may be derived; alice may approve, mallory may not; a
 * request's deadline is one tick away; the clock stops at 3; one crash.
 */
export const MC: AuthorityConstants = {
  calls: ["c1", "c2"],
  capabilities: ["child", "root"],
  root: "root",
  rootGrants: ["c1", "c2"],
  rootApproval: ["c2"],
  rootExpiry: 2,
  rootUses: 2,
  maxUses: 2,
  principals: ["alice", "mallory"],
  approvers: ["alice"],
  approvalTimeout: 1,
  maxTime: 3,
  maxCrashes: 1
}

export const variables = ["log", "caps", "revoked", "now", "checked", "crashes", "up"] as const
export const actionNames = [
  "Authorize",
  "Deny",
  "RequestApproval",
  "Approve",
  "RejectApproval",
  "Expire",
  "Withdraw",
  "IgnoreDecision",
  "Start",
  "Attenuate",
  "Revoke",
  "Tick",
  "Crash",
  "Restart"
] as const
export const invariantNames = ["TypeInv", "AuthorityInv", "AttenuationInv", "ExpiryInv", "OneDecisionInv", "SinglePathInv"] as const

export type ActionName = (typeof actionNames)[number]
export type InvariantName = (typeof invariantNames)[number]

/** Parameters of each action (the existentially quantified variables of Next). */
export interface ActionArgs {
  Authorize: { readonly c: Call; readonly k: Capability }
  Deny: { readonly c: Call }
  RequestApproval: { readonly c: Call }
  Approve: { readonly c: Call; readonly p: Principal }
  RejectApproval: { readonly c: Call; readonly p: Principal }
  Expire: { readonly c: Call }
  Withdraw: { readonly c: Call }
  IgnoreDecision: { readonly c: Call; readonly p: Principal; readonly h: Hash }
  Start: { readonly c: Call }
  /** node `ch` derived from `k`, claiming calls `g` (sorted), of which `a` (sorted) need an approval, and `u` uses */
  Attenuate: { readonly k: Capability; readonly ch: Capability; readonly g: readonly Call[]; readonly a: readonly Call[]; readonly u: number }
  Revoke: { readonly k: Capability }
  Tick: Record<string, never>
  Crash: Record<string, never>
  Restart: Record<string, never>
}

/** One enabled step: the action, its parameters and the successor state. */
export type Step = {
  [A in ActionName]: { readonly action: A; readonly args: ActionArgs[A]; readonly state: AuthorityState }
}[ActionName]

// ---------------------------------------------------------------------------------------------
// Constants and records
// ---------------------------------------------------------------------------------------------

/** Authority.tla `CallStates`. */
export const callStates: readonly CallStatus[] = ["proposed", "authorized", "denied", "awaitingApproval", "approved", "rejected", "expired", "started"]

/** The call states nothing leaves in this spec (`started` is ToolCall.tla's business from there on). */
export const finalStatuses: ReadonlySet<CallStatus> = new Set<CallStatus>(["denied", "rejected", "expired", "started"])

/**
 * Authority.tla `Runtime`: who withdraws a request (the `by` of `Withdraw`'s rejected record). Not a
 * principal (`ASSUME Runtime \notin Principals`), so never an approver.
 */
export const runtime: Principal = "runtime"

/** Authority.tla `HashOf(c)`: the hash of call c's decoded arguments. */
export const hashOf = (c: Call): Hash => `hash:${c}`

/** Authority.tla `Hashes` (in the order of `k.calls`). */
export const hashes = (k: AuthorityConstants = MC): readonly Hash[] => k.calls.map(hashOf)

/** Authority.tla `RootCap`. */
export const rootCap = (k: AuthorityConstants = MC): CapRecord => ({
  parent: k.root,
  calls: [...k.rootGrants].sort(),
  approval: [...k.rootApproval].sort(),
  expiry: k.rootExpiry,
  uses: k.rootUses
})

export const proposedRecord: AuthorityRecord = Object.freeze({ type: "proposed" })
export const authorizedRecord = (k: Capability): AuthorityRecord => ({ type: "authorized", cap: k })
export const deniedRecord: AuthorityRecord = Object.freeze({ type: "denied" })
export const awaitingRecord = (c: Call, deadline: number, k: AuthorityConstants = MC): AuthorityRecord => ({
  type: "awaitingApproval",
  hash: hashOf(c),
  approvers: [...k.approvers].sort(),
  deadline
})
export const approvedRecord = (p: Principal, h: Hash, at: number): AuthorityRecord => ({ type: "approved", by: p, hash: h, at })
export const rejectedRecord = (p: Principal): AuthorityRecord => ({ type: "rejected", by: p })
export const expiredRecord = (deadline: number): AuthorityRecord => ({ type: "expired", deadline })
export const startedRecord: AuthorityRecord = Object.freeze({ type: "started", attempt: 1 })

// ---------------------------------------------------------------------------------------------
// Derived state: capabilities (Authority.tla `Chain`, `Verified`, `Covers`, ...)
// ---------------------------------------------------------------------------------------------

const isMinted = (s: AuthorityState, k: Capability): boolean => Object.hasOwn(s.caps, k)

/**
 * Authority.tla `Chain(k)`: k and every node it is derived from, up to the root (k first). Undefined
 * when k is not minted or its parents do not lead to the root (never in a reachable state:
 * `AttenuationInv`), so that a broken state cannot loop.
 */
export function chain(s: AuthorityState, k: Capability, K: AuthorityConstants = MC): readonly Capability[] | undefined {
  const nodes: Capability[] = []
  let x = k
  for (;;) {
    if (!isMinted(s, x) || nodes.includes(x)) return undefined
    nodes.push(x)
    if (x === K.root) return nodes
    x = (s.caps[x] as CapRecord).parent
  }
}

const subset = (xs: readonly string[], ys: readonly string[]): boolean => xs.every((x) => ys.includes(x))

/** Authority.tla `Unapproved(x)`: the calls node x covers without an approval. */
export const unapproved = (x: CapRecord): readonly Call[] => x.calls.filter((c) => !x.approval.includes(c))

/** Authority.tla `Narrower(x, y)`: x grants no more than y (attenuation's order). */
export const narrower = (x: CapRecord, y: CapRecord): boolean =>
  subset(x.calls, y.calls) && subset(unapproved(x), unapproved(y)) && x.expiry <= y.expiry && x.uses <= y.uses

/** Authority.tla `Verified(k)`: every node of k's chain is narrower than its parent. */
export function verified(s: AuthorityState, k: Capability, K: AuthorityConstants = MC): boolean {
  const nodes = chain(s, k, K)
  if (nodes === undefined) return false
  return nodes.every((a) => {
    if (a === K.root) return true
    const rec = s.caps[a] as CapRecord
    const parent = s.caps[rec.parent]
    return parent !== undefined && narrower(rec, parent)
  })
}

/** Authority.tla `Revoked(k)`: k or a node it is derived from is revoked. */
export const isRevoked = (s: AuthorityState, k: Capability, K: AuthorityConstants = MC): boolean => (chain(s, k, K) ?? [k]).some((a) => s.revoked.includes(a))

/** Authority.tla `Expired(k)`: k or a node it is derived from has expired. */
export const isExpired = (s: AuthorityState, k: Capability, K: AuthorityConstants = MC): boolean =>
  (chain(s, k, K) ?? []).some((a) => s.now >= (s.caps[a] as CapRecord).expiry)

/** Authority.tla `AuthorizedWith(c, cap)`: c's authorized record names `cap`. */
export const authorizedWith = (s: AuthorityState, c: Call, cap: Capability): boolean => (s.log[c] ?? []).some((r) => r.type === "authorized" && r.cap === cap)

/** The capability c's authorized record names, if any (Authority.tla `AuthorizedBy(c)`). */
export function authorizedBy(s: AuthorityState, c: Call): Capability | undefined {
  for (const r of s.log[c] ?? []) if (r.type === "authorized") return r.cap
  return undefined
}

/** Authority.tla `Uses(k)`: the calls authorized by k or by a node derived from it. */
export function uses(s: AuthorityState, k: Capability, K: AuthorityConstants = MC): number {
  let n = 0
  for (const c of K.calls) {
    const a = authorizedBy(s, c)
    if (a !== undefined && isMinted(s, a) && (chain(s, a, K) ?? []).includes(k)) n++
  }
  return n
}

/** Authority.tla `Exhausted(k)`: k or a node it is derived from has no use left. */
export const isExhausted = (s: AuthorityState, k: Capability, K: AuthorityConstants = MC): boolean =>
  (chain(s, k, K) ?? []).some((a) => uses(s, a, K) >= (s.caps[a] as CapRecord).uses)

/** Authority.tla `Covers(k, c)`: capability k covers call c now. */
export function covers(s: AuthorityState, k: Capability, c: Call, K: AuthorityConstants = MC): boolean {
  const rec = s.caps[k]
  return (
    rec !== undefined && isMinted(s, k) && verified(s, k, K) && rec.calls.includes(c) && !isRevoked(s, k, K) && !isExpired(s, k, K) && !isExhausted(s, k, K)
  )
}

/** Authority.tla `Demands(k, c)`: k covers c only with an approval. */
export const demands = (s: AuthorityState, k: Capability, c: Call): boolean => s.caps[k]?.approval.includes(c) ?? false

/** Authority.tla `CheckOf(c, k)`: what `Authorize(c, k)` records in `checked`. */
export const checkOf = (s: AuthorityState, c: Call, k: Capability, K: AuthorityConstants = MC): Check => ({
  cap: k,
  verified: verified(s, k, K),
  covered: s.caps[k]?.calls.includes(c) ?? false,
  revoked: isRevoked(s, k, K),
  expired: isExpired(s, k, K),
  exhausted: isExhausted(s, k, K)
})

// ---------------------------------------------------------------------------------------------
// Derived state: calls (folds of a call's records)
// ---------------------------------------------------------------------------------------------

/** Authority.tla `Last(log[c])`: c's latest record (undefined: `NoRecord`, never in a reachable state). */
export const latest = (s: AuthorityState, c: Call): AuthorityRecord | undefined => s.log[c]?.at(-1)

/**
 * Authority.tla `CallStatus(c)`: the authority state of call c, the type of its latest record (the
 * fold a refinement or trace checker compares with the ToolCall machine's state).
 */
export function callStatus(s: AuthorityState, c: Call): CallStatus {
  const r = latest(s, c)
  if (r === undefined) throw new Error(`call ${c} has no record`)
  return r.type
}

/** Authority.tla `Request(c)`: c's approval request, if it has one (`HasRequest(c)`). */
export function request(s: AuthorityState, c: Call): Extract<AuthorityRecord, { type: "awaitingApproval" }> | undefined {
  for (const r of s.log[c] ?? []) if (r.type === "awaitingApproval") return r
  return undefined
}

/** Authority.tla `Decided(c)`: c has a counted decision (approved, rejected, by an approver or withdrawn by the runtime, or expired). */
export const decided = (s: AuthorityState, c: Call): boolean =>
  (s.log[c] ?? []).some((r) => r.type === "approved" || r.type === "rejected" || r.type === "expired")

/** Authority.tla `Counts(c, p, h)`: a decision by p for arguments with hash h would count now. */
export function counts(s: AuthorityState, c: Call, p: Principal, h: Hash): boolean {
  const req = request(s, c)
  return callStatus(s, c) === "awaitingApproval" && req !== undefined && req.approvers.includes(p) && h === req.hash && s.now < req.deadline
}

/** Authority.tla `CanFollow(c, prev, r)`: record r is a step of c's authority lifecycle from prev (undefined: none). */
export function canFollow(s: AuthorityState, c: Call, prev: AuthorityRecord | undefined, r: AuthorityRecord): boolean {
  switch (r.type) {
    case "proposed":
      return prev === undefined
    case "authorized":
    case "denied":
      return prev?.type === "proposed"
    case "awaitingApproval":
      return prev?.type === "authorized" && isMinted(s, prev.cap) && demands(s, prev.cap, c)
    case "approved":
    case "rejected":
    case "expired":
      return prev?.type === "awaitingApproval"
    case "started":
      return prev?.type === "approved" || (prev?.type === "authorized" && isMinted(s, prev.cap) && !demands(s, prev.cap, c))
  }
}

const isCall = (c: Call, K: AuthorityConstants): boolean => K.calls.includes(c)
const append = (s: AuthorityState, c: Call, r: AuthorityRecord): AuthorityState["log"] => ({ ...s.log, [c]: [...(s.log[c] ?? []), r] })
const addSorted = (set: readonly string[], x: string): readonly string[] => (set.includes(x) ? set : [...set, x].sort())

// ---------------------------------------------------------------------------------------------
// Actions (same names and guards as Authority.tla)
// ---------------------------------------------------------------------------------------------

export function Init(K: AuthorityConstants = MC): AuthorityState {
  return {
    log: Object.fromEntries(K.calls.map((c) => [c, [proposedRecord]])),
    caps: { [K.root]: rootCap(K) },
    revoked: [],
    now: 0,
    checked: {},
    crashes: 0,
    up: true
  }
}

export function Authorize(s: AuthorityState, { c, k }: ActionArgs["Authorize"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || callStatus(s, c) !== "proposed" || !covers(s, k, c, K)) return null
  return { ...s, log: append(s, c, authorizedRecord(k)), checked: { ...s.checked, [c]: checkOf(s, c, k, K) } }
}

export function Deny(s: AuthorityState, { c }: ActionArgs["Deny"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || callStatus(s, c) !== "proposed") return null
  if (!Object.keys(s.caps).some((k) => !covers(s, k, c, K))) return null
  return { ...s, log: append(s, c, deniedRecord) }
}

export function RequestApproval(s: AuthorityState, { c }: ActionArgs["RequestApproval"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || callStatus(s, c) !== "authorized") return null
  const k = authorizedBy(s, c)
  if (k === undefined || !demands(s, k, c) || s.now + K.approvalTimeout > K.maxTime) return null
  return { ...s, log: append(s, c, awaitingRecord(c, s.now + K.approvalTimeout, K)) }
}

export function Approve(s: AuthorityState, { c, p }: ActionArgs["Approve"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || !counts(s, c, p, hashOf(c))) return null
  return { ...s, log: append(s, c, approvedRecord(p, hashOf(c), s.now)) }
}

export function RejectApproval(s: AuthorityState, { c, p }: ActionArgs["RejectApproval"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || !counts(s, c, p, hashOf(c))) return null
  return { ...s, log: append(s, c, rejectedRecord(p)) }
}

export function Expire(s: AuthorityState, { c }: ActionArgs["Expire"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || callStatus(s, c) !== "awaitingApproval") return null
  const req = request(s, c)
  if (req === undefined || s.now < req.deadline) return null
  return { ...s, log: append(s, c, expiredRecord(req.deadline)) }
}

/** Not a person's decision: no approver, hash or deadline check. */
export function Withdraw(s: AuthorityState, { c }: ActionArgs["Withdraw"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || callStatus(s, c) !== "awaitingApproval") return null
  return { ...s, log: append(s, c, rejectedRecord(runtime)) }
}

/** Returns `s` itself when enabled: the spec's `UNCHANGED vars` (the audit record changes no state). */
export function IgnoreDecision(s: AuthorityState, { c, p, h }: ActionArgs["IgnoreDecision"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K) || counts(s, c, p, h)) return null
  return s
}

export function Start(s: AuthorityState, { c }: ActionArgs["Start"], K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || !isCall(c, K)) return null
  const status = callStatus(s, c)
  const k = authorizedBy(s, c)
  const fromAuthorized = status === "authorized" && k !== undefined && !demands(s, k, c)
  if (!fromAuthorized && status !== "approved") return null
  return { ...s, log: append(s, c, startedRecord) }
}

export function Attenuate(s: AuthorityState, { k, ch, g, a, u }: ActionArgs["Attenuate"], K: AuthorityConstants = MC): AuthorityState | null {
  const parent = s.caps[k]
  if (parent === undefined || !K.capabilities.includes(ch) || isMinted(s, ch) || !subset(a, g)) return null
  if (!subset(g, K.calls) || !Number.isInteger(u) || u < 1 || u > K.maxUses) return null
  const rec: CapRecord = { parent: k, calls: [...g].sort(), approval: [...a].sort(), expiry: parent.expiry, uses: u }
  return { ...s, caps: { ...s.caps, [ch]: rec } }
}

export function Revoke(s: AuthorityState, { k }: ActionArgs["Revoke"]): AuthorityState | null {
  if (!isMinted(s, k) || s.revoked.includes(k)) return null
  return { ...s, revoked: addSorted(s.revoked, k) }
}

export function Tick(s: AuthorityState, _args: ActionArgs["Tick"] = {}, K: AuthorityConstants = MC): AuthorityState | null {
  if (s.now >= K.maxTime) return null
  return { ...s, now: s.now + 1 }
}

export function Crash(s: AuthorityState, _args: ActionArgs["Crash"] = {}, K: AuthorityConstants = MC): AuthorityState | null {
  if (!s.up || s.crashes >= K.maxCrashes) return null
  return { ...s, up: false, crashes: s.crashes + 1 }
}

export function Restart(s: AuthorityState, _args: ActionArgs["Restart"] = {}): AuthorityState | null {
  if (s.up) return null
  return { ...s, up: true }
}

/** Every subset of `xs` (each sorted), the empty one first. */
export function subsets<T extends string>(xs: readonly T[]): readonly (readonly T[])[] {
  const sorted = [...xs].sort()
  const out: T[][] = [[]]
  for (const x of sorted) for (const prev of [...out]) out.push([...prev, x])
  return out.map((set) => set.sort())
}

/**
 * Authority.tla `Next`: every enabled step, one per action and binding of its existential
 * parameters (in the order of Next's disjuncts). Distinct bindings may lead to the same state;
 * `IgnoreDecision` steps lead to the state itself.
 */
export function next(s: AuthorityState, K: AuthorityConstants = MC): Step[] {
  const steps: Step[] = []
  const perCall = <A extends "Deny" | "RequestApproval" | "Expire" | "Withdraw" | "Start">(
    action: A,
    f: (s: AuthorityState, args: { readonly c: Call }, K: AuthorityConstants) => AuthorityState | null
  ): void => {
    for (const c of K.calls) {
      const state = f(s, { c }, K)
      if (state) steps.push({ action, args: { c }, state } as Step)
    }
  }
  const perPrincipal = <A extends "Approve" | "RejectApproval">(
    action: A,
    f: (s: AuthorityState, args: { readonly c: Call; readonly p: Principal }, K: AuthorityConstants) => AuthorityState | null
  ): void => {
    for (const c of K.calls) {
      for (const p of K.principals) {
        const state = f(s, { c, p }, K)
        if (state) steps.push({ action, args: { c, p }, state } as Step)
      }
    }
  }
  for (const c of K.calls) {
    for (const k of K.capabilities) {
      const state = Authorize(s, { c, k }, K)
      if (state) steps.push({ action: "Authorize", args: { c, k }, state })
    }
  }
  perCall("Deny", Deny)
  perCall("RequestApproval", RequestApproval)
  perPrincipal("Approve", Approve)
  perPrincipal("RejectApproval", RejectApproval)
  perCall("Expire", Expire)
  perCall("Withdraw", Withdraw)
  for (const c of K.calls) {
    for (const p of K.principals) {
      for (const h of hashes(K)) {
        const state = IgnoreDecision(s, { c, p, h }, K)
        if (state) steps.push({ action: "IgnoreDecision", args: { c, p, h }, state })
      }
    }
  }
  perCall("Start", Start)
  const claims = subsets(K.calls)
  for (const k of K.capabilities) {
    if (!isMinted(s, k)) continue
    for (const ch of K.capabilities) {
      if (isMinted(s, ch)) continue
      for (const g of claims) {
        for (const a of subsets(g)) {
          for (let u = 1; u <= K.maxUses; u++) {
            const state = Attenuate(s, { k, ch, g, a, u }, K)
            if (state) steps.push({ action: "Attenuate", args: { k, ch, g, a, u }, state })
          }
        }
      }
    }
  }
  for (const k of K.capabilities) {
    const state = Revoke(s, { k })
    if (state) steps.push({ action: "Revoke", args: { k }, state })
  }
  const ticked = Tick(s, {}, K)
  if (ticked) steps.push({ action: "Tick", args: {}, state: ticked })
  const crashed = Crash(s, {}, K)
  if (crashed) steps.push({ action: "Crash", args: {}, state: crashed })
  const restarted = Restart(s)
  if (restarted) steps.push({ action: "Restart", args: {}, state: restarted })
  return steps
}

/** The action functions by name (refinement and trace checks). */
export const actions: { readonly [A in ActionName]: (s: AuthorityState, args: ActionArgs[A], K?: AuthorityConstants) => AuthorityState | null } = {
  Authorize,
  Deny,
  RequestApproval,
  Approve,
  RejectApproval,
  Expire,
  Withdraw,
  IgnoreDecision,
  Start,
  Attenuate,
  Revoke: (s, args) => Revoke(s, args),
  Tick,
  Crash,
  Restart: (s, args) => Restart(s, args)
}

/** Applies an action by name; `null` when it is disabled. */
export function apply<A extends ActionName>(s: AuthorityState, action: A, args: ActionArgs[A], K: AuthorityConstants = MC): AuthorityState | null {
  const f = actions[action] as (s: AuthorityState, args: ActionArgs[A], K: AuthorityConstants) => AuthorityState | null
  return f(s, args, K)
}

// ---------------------------------------------------------------------------------------------
// Invariants (same names as Authority.tla)
// ---------------------------------------------------------------------------------------------

const isNat = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0
const inRange = (n: unknown, lo: number, hi: number): boolean => isNat(n) && n >= lo && n <= hi
const fieldsOf = (o: object): string => Object.keys(o).sort().join(",")

/** A sorted array of distinct strings, each satisfying `member`. */
const isSortedSet = (set: unknown, member: (x: string) => boolean): boolean =>
  Array.isArray(set) && set.every((x, i) => typeof x === "string" && member(x) && (i === 0 || (set[i - 1] as string) < x))

/** Authority.tla `Records`: exact field sets and value ranges. */
function isRecord(r: unknown, K: AuthorityConstants): r is AuthorityRecord {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return false
  const o = r as Record<string, unknown>
  const fields = fieldsOf(o)
  const principal = (p: unknown): boolean => typeof p === "string" && K.principals.includes(p)
  const hash = (h: unknown): boolean => typeof h === "string" && hashes(K).includes(h)
  switch (o.type) {
    case "proposed":
    case "denied":
      return fields === "type"
    case "authorized":
      return fields === "cap,type" && typeof o.cap === "string" && K.capabilities.includes(o.cap)
    case "awaitingApproval":
      return fields === "approvers,deadline,hash,type" && hash(o.hash) && isSortedSet(o.approvers, principal) && inRange(o.deadline, 0, K.maxTime)
    case "approved":
      return fields === "at,by,hash,type" && principal(o.by) && hash(o.hash) && inRange(o.at, 0, K.maxTime)
    case "rejected":
      return fields === "by,type" && (principal(o.by) || o.by === runtime)
    case "expired":
      return fields === "deadline,type" && inRange(o.deadline, 0, K.maxTime)
    case "started":
      return fields === "attempt,type" && o.attempt === 1
    default:
      return false
  }
}

/** Authority.tla `CapRecords`. */
function isCapRecord(x: unknown, K: AuthorityConstants): x is CapRecord {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false
  const o = x as Record<string, unknown>
  const call = (c: string): boolean => K.calls.includes(c)
  return (
    fieldsOf(o) === "approval,calls,expiry,parent,uses" &&
    typeof o.parent === "string" &&
    K.capabilities.includes(o.parent) &&
    isSortedSet(o.calls, call) &&
    isSortedSet(o.approval, call) &&
    inRange(o.expiry, 0, K.maxTime) &&
    inRange(o.uses, 1, K.maxUses)
  )
}

/** Authority.tla `Checks`. */
function isCheck(x: unknown, K: AuthorityConstants): x is Check {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false
  const o = x as Record<string, unknown>
  return (
    fieldsOf(o) === "cap,covered,exhausted,expired,revoked,verified" &&
    typeof o.cap === "string" &&
    K.capabilities.includes(o.cap) &&
    ["covered", "exhausted", "expired", "revoked", "verified"].every((f) => typeof o[f] === "boolean")
  )
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)

export function TypeInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  return (
    isObject(s.log) &&
    fieldsOf(s.log) === [...K.calls].sort().join(",") &&
    Object.values(s.log).every((records) => Array.isArray(records) && records.every((r) => isRecord(r, K))) &&
    isObject(s.caps) &&
    Object.keys(s.caps).every((k) => K.capabilities.includes(k)) &&
    isMinted(s, K.root) &&
    canonical(s.caps[K.root]) === canonical(rootCap(K)) &&
    Object.values(s.caps).every((x) => isCapRecord(x, K)) &&
    isSortedSet(s.revoked, (k) => isMinted(s, k)) &&
    inRange(s.now, 0, K.maxTime) &&
    isObject(s.checked) &&
    Object.keys(s.checked).every((c) => K.calls.includes(c)) &&
    Object.values(s.checked).every((x) => isCheck(x, K)) &&
    inRange(s.crashes, 0, K.maxCrashes) &&
    typeof s.up === "boolean"
  )
}

export function AuthorityInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  const checksHold = Object.entries(s.checked).every(
    ([c, ch]) => isMinted(s, ch.cap) && authorizedWith(s, c, ch.cap) && ch.verified && ch.covered && !ch.revoked && !ch.expired && !ch.exhausted
  )
  const usesWithin = Object.keys(s.caps).every((k) => uses(s, k, K) <= (s.caps[k] as CapRecord).uses)
  const startsAuthorized = K.calls.every((c) => {
    const log = s.log[c] ?? []
    return log.every((r, i) => {
      if (r.type !== "started") return true
      const ch = s.checked[c]
      if (ch === undefined) return false
      const before = log.slice(0, i)
      if (!before.some((q) => q.type === "authorized" && q.cap === ch.cap)) return false
      if (!demands(s, ch.cap, c)) return true
      return before.some(
        (q, j) =>
          q.type === "approved" &&
          K.approvers.includes(q.by) &&
          q.hash === hashOf(c) &&
          before.slice(0, j).some((m) => m.type === "awaitingApproval" && m.hash === hashOf(c) && m.approvers.includes(q.by))
      )
    })
  })
  return checksHold && usesWithin && startsAuthorized
}

export function AttenuationInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  const tree = Object.entries(s.caps).every(([k, rec]) => isMinted(s, rec.parent) && chain(s, k, K) !== undefined)
  const accepted = K.calls.every((c) =>
    (s.log[c] ?? []).every((r) => {
      if (r.type !== "authorized") return true
      const nodes = chain(s, r.cap, K)
      if (nodes === undefined) return false
      const rec = s.caps[r.cap] as CapRecord
      return (
        nodes.every((a) => narrower(rec, s.caps[a] as CapRecord)) &&
        nodes.every((a) => a === K.root || narrower(s.caps[a] as CapRecord, s.caps[(s.caps[a] as CapRecord).parent] as CapRecord))
      )
    })
  )
  return tree && accepted
}

export function ExpiryInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  return K.calls.every((c) => {
    const log = s.log[c] ?? []
    return log.every((r, i) => {
      const before = log.slice(0, i)
      if (r.type === "approved") return r.at <= s.now && before.some((q) => q.type === "awaitingApproval" && r.at < q.deadline)
      if (r.type === "expired")
        return r.deadline <= s.now && before.some((q) => q.type === "awaitingApproval" && q.deadline === r.deadline) && !log.some((q) => q.type === "started")
      return true
    })
  })
}

export function OneDecisionInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  return K.calls.every((c) => {
    const log = s.log[c] ?? []
    const requests = log.flatMap((r, i) => (r.type === "awaitingApproval" ? [i] : []))
    const counted = log.flatMap((r, i) => (r.type === "approved" || r.type === "rejected" || r.type === "expired" ? [i] : []))
    return (
      requests.length <= 1 &&
      counted.length <= 1 &&
      counted.every((i) =>
        requests.some((j) => {
          const d = log[i] as AuthorityRecord
          const req = log[j] as AuthorityRecord
          const withdrawn = d.type === "rejected" && d.by === runtime
          return (
            j < i &&
            req.type === "awaitingApproval" &&
            (d.type === "expired" || withdrawn || ((d.type === "approved" || d.type === "rejected") && req.approvers.includes(d.by)))
          )
        })
      )
    )
  })
}

export function SinglePathInv(s: AuthorityState, K: AuthorityConstants = MC): boolean {
  return K.calls.every((c) => {
    const log = s.log[c] ?? []
    return log.every((r, i) => {
      if (!canFollow(s, c, log[i - 1], r)) return false
      if (r.type !== "started") return true
      const prev = log[i - 1]
      return i === log.length - 1 && i > 0 && (prev?.type === "approved" || (prev?.type === "authorized" && !demands(s, prev.cap, c)))
    })
  })
}

export const invariants: Readonly<Record<InvariantName, (s: AuthorityState, K?: AuthorityConstants) => boolean>> = {
  TypeInv,
  AuthorityInv,
  AttenuationInv,
  ExpiryInv,
  OneDecisionInv,
  SinglePathInv
}

// Canonical serialisation (state identity, as TLC's fingerprint is value identity): shared by the models.
export { canonical }

const recordKey = (r: AuthorityRecord): string => {
  switch (r.type) {
    case "authorized":
      return `A:${r.cap}`
    case "awaitingApproval":
      return `W:${r.hash}:${r.approvers.join("+")}:${r.deadline}`
    case "approved":
      return `Y:${r.by}:${r.hash}:${r.at}`
    case "rejected":
      return `N:${r.by}`
    case "expired":
      return `E:${r.deadline}`
    case "started":
      return `S:${r.attempt}`
    default:
      return r.type
  }
}

const capKey = (x: CapRecord): string => `${x.parent}:${x.calls.join("+")}:${x.approval.join("+")}:${x.expiry}:${x.uses}`
const checkKey = (x: Check): string => `${x.cap}:${[x.verified, x.covered, x.revoked, x.expired, x.exhausted].map((b) => (b ? 1 : 0)).join("")}`

/**
 * A compact serialisation of a well-typed state (`TypeInv`): two well-typed states have the same key
 * iff they are equal, as with {@link canonical}, whatever the order of their fields or keys. Faster
 * than `canonical`, for the exhaustive search (names must not contain `:`, `,`, `+`, `;`, `=` or `|`).
 */
export function stateKey(s: AuthorityState): string {
  const entries = <T>(o: Readonly<Record<string, T>>, f: (x: T) => string): string =>
    Object.keys(o)
      .sort()
      .map((key) => `${key}=${f(o[key] as T)}`)
      .join(";")
  return [
    entries(s.log, (records) => records.map(recordKey).join(",")),
    entries(s.caps, capKey),
    s.revoked.join(","),
    s.now,
    entries(s.checked, checkKey),
    s.crashes,
    s.up
  ].join("|")
}
