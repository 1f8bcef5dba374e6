/**
 * Section (i) of the benchmarks: capability verification and authorization.
 *
 *   (i1) verify a sealed 3-block token (issuer + two attenuations, every
 *        caveat kind) with no cache: decode, 3 signatures, the seal, ids
 *   (i2) verify the same token with the cache warm: keyring entry,
 *        revocation list (1,000 ids) and expiry, on every call — target < 50 µs
 *   (i3) verify + check (authorize with `now` from the Clock) per call, warm:
 *        what the executor pays between `proposed` and `started`
 *   (i4) authorize() alone (pure) per call
 *   (i5) issue, attenuate, seal
 * Baseline, same run: one raw Ed25519 verify through WebCrypto (key already
 * imported), and importKey + verify (what one block costs the cold path).
 *
 * Issue 5's target, in one run (i6–i8):
 *   (i6) the authority check alone, as the executor makes it: Clock, then
 *        `authority.check` of `Authority.issue([...])`'s authority (verify
 *        from the warm cache + authorize + the verdict) — target < 50 µs —
 *        beside the same through `allowAll` (no crypto, grants everything)
 *   (i7) the journaled tool call of f1 (Executor.runCall of a proposed call,
 *        a no-op tool, file session, fsync) under allowAll vs under that
 *        capability, interleaved in rounds; allowAll runs twice per round,
 *        the second an A/A control that shows what "no change" measures as
 *   (i8) the same with durability "os" (no fsync): the software cost alone
 * "No measurable change" (i7, i8): the capability's pooled p50 is at most 5%
 * above allowAll's (both runs pooled); the A/A difference is printed beside
 * it as the run's noise. The `authorized` record joins the `started` batch,
 * so a capability adds no write and no fsync: counted on instrumented runs.
 */
import { Clock, Effect } from "effect"
import * as Authority from "../src/authority/Authority.ts"
import * as Capability from "../src/authority/Capability.ts"
import * as Caveat from "../src/authority/Caveat.ts"
import { allowAll } from "../test/support/authority.ts"
import { dur, num, type Row, ratio, type Stats, stats, verdict } from "./lib.ts"
import { type AuthorityComparison, type Breakdown, journaledUnderAuthority, peek, peekInput } from "./toolcalls.ts"

const now = () => performance.now()
const latencyText = (s: Stats) => `p50 ${dur(s.p50)}, p99 ${dur(s.p99)}, mean ${dur(s.mean)}`

const rich: ReadonlyArray<Caveat.Caveat> = [
  Caveat.tools(["read_file", "write_file", "run_command"]),
  Caveat.pathUnder("path", "/ws", { tools: ["read_file", "write_file"] }),
  Caveat.oneOf("argv.0", ["git", "ls", "cat"], { tools: ["run_command"] }),
  Caveat.range("limit", { min: 1, max: 1000 }),
  Caveat.predicate({
    op: "or",
    args: [
      { op: "not", expr: { op: "prefix", left: { arg: "path" }, right: { lit: "/ws/secret" } } },
      { op: "in", left: { arg: "user" }, values: ["root", "ops"] }
    ]
  }),
  Caveat.expires(4_000_000_000_000),
  Caveat.uses(1_000_000),
  Caveat.needsApproval(["alice", "bob"], { tools: ["run_command", "write_file"] })
]
const input = { path: "/ws/src/main.ts", limit: 100, user: "ann" }

/** Times `body` n times after a warm-up, one sample per call. */
const sample = (n: number, warmup: number, body: () => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    for (let i = 0; i < warmup; i++) yield* body()
    const lat: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = now()
      yield* body()
      lat.push(now() - t)
    }
    return stats(lat)
  })

/** The capability of i6–i8: a few caveats, every one of them evaluated on each call of the no-op tool `peek`. */
const peekCaveats: ReadonlyArray<Caveat.Caveat> = [
  Caveat.tools([peek.name, "write_file"]),
  Caveat.pathUnder("path", "/ws"),
  Caveat.range("limit", { min: 1, max: 1000 }),
  Caveat.expires(4_000_000_000_000)
]

/** The executor's authority step: Clock, then `authority.check` with the journal's use counts. */
const checkOnce = (authority: Authority.Authority, uses: ReadonlyMap<string, number>) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    authority.check({ callId: "k000001", tool: peek.name, input: peekInput }, { now, usesOf: (id) => uses.get(id) ?? 0 })
  )

interface CheckAlone {
  readonly cap: Stats
  readonly allow: Stats
  /** Tight loop of Effect.runSync, no per-sample timer: mean per call. */
  readonly capLoopMs: number
  readonly allowLoopMs: number
  readonly tokenLength: number
}

const measureCheckAlone = (authority: Authority.Authority, tokenLength: number) =>
  Effect.gen(function* () {
    const uses = new Map([["some-block", 3]])
    const first = yield* checkOnce(authority, uses)
    if (!first.granted) throw new Error(`the bench capability denies peek: ${first.message}`)
    const cap = yield* sample(50_000, 5_000, () => checkOnce(authority, uses))
    const allow = yield* sample(50_000, 5_000, () => checkOnce(allowAll, uses))
    const loop = (a: Authority.Authority) => {
      const n = 100_000
      const effect = checkOnce(a, uses)
      for (let i = 0; i < 10_000; i++) Effect.runSync(effect)
      const t = now()
      for (let i = 0; i < n; i++) Effect.runSync(effect)
      return (now() - t) / n
    }
    return { cap, allow, capLoopMs: loop(authority), allowLoopMs: loop(allowAll), tokenLength } satisfies CheckAlone
  })

/**
 * The capability's pooled p50 over allowAll's (both allowAll variants pooled),
 * the same per run, and the A/A control per run: allowAll's second variant
 * over its first, i.e. what a non-change measures as in this run.
 */
function compare(c: AuthorityComparison) {
  const pooled = (v: "allow" | "cap" | "allow2") => c.runs.flatMap((r) => r[v])
  const cap = stats(pooled("cap"))
  const allow = stats([...pooled("allow"), ...pooled("allow2")])
  const change = cap.p50 / allow.p50 - 1
  const aaPooled = stats(pooled("allow2")).p50 / stats(pooled("allow")).p50 - 1
  const perRun = c.runs.map((r) => stats(r.cap).p50 / stats([...r.allow, ...r.allow2]).p50 - 1)
  const perRunAA = c.runs.map((r) => stats(r.allow2).p50 / stats(r.allow).p50 - 1)
  const noise = Math.max(...perRunAA.map(Math.abs), Math.abs(aaPooled))
  return { cap, allow, change, aaPooled, perRun, perRunAA, noise, pass: change <= 0.05 }
}

const pct = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(1)}%`
const list = (xs: ReadonlyArray<number>) => xs.map(pct).join(" / ")
const stepsText = (b: Breakdown) =>
  `to started asked ${dur(b.before)} (lookup, decode, Clock, check) → started durable ${dur(b.started)} → tool ${dur(b.tool)} → outcome durable ${dur(b.outcome)} → return ${dur(b.after)}`

export async function sectionI(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  await microRows(rows, log)
  await targetRows(rows, log)
}

/** i6–i8: issue 5's target, the journaled call under allowAll vs a capability, and the check alone, in one run. */
async function targetRows(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  log("(i6) Authority.issue: a capability for the no-op tool peek")
  const { authority, token } = await Effect.runPromise(Authority.issue(peekCaveats))
  log("(i7) journaled calls, allowAll vs capability, fsync")
  const fsync = await journaledUnderAuthority("fsync", authority, log, {
    runs: 5,
    rounds: 24,
    perRound: 15,
    warmup: 30,
    probe: 150,
    traced: 50
  })
  log('(i8) journaled calls, allowAll vs capability, durability "os"')
  const os = await journaledUnderAuthority("os", authority, log, {
    runs: 5,
    rounds: 8,
    perRound: 200,
    warmup: 300,
    probe: 400,
    traced: 200
  })
  log("(i6) the authority check alone, warm cache")
  const alone = await Effect.runPromise(measureCheckAlone(authority, token.length))

  const checkCost = alone.cap.p50 - alone.allow.p50
  rows.push({
    id: "i6",
    measure: `authority check per call, as the executor makes it (Clock + authority.check of Authority.issue's capability: verify from the warm cache + authorize ${peekCaveats.length} caveats — tools, pathUnder, range, expires — + verdict), token ${alone.tokenLength} chars`,
    result: `${latencyText(alone.cap)}; tight loop ${dur(alone.capLoopMs)} per call`,
    baseline: `same through allowAll (no crypto): ${latencyText(alone.allow)}; tight loop ${dur(alone.allowLoopMs)}`,
    ratio: `+${dur(checkCost)} p50 over allowAll (${ratio(alone.cap.p50 / alone.allow.p50)})`,
    target: "< 50 µs per call (p99)",
    status: verdict(alone.cap.p99 < 0.05)
  })
  for (const c of [fsync, os]) {
    const k = compare(c)
    const within = Math.abs(k.change) <= k.noise
    const inPlace = c.checkInPlace
    rows.push({
      id: c.durability === "fsync" ? "i7" : "i8",
      measure:
        c.durability === "fsync"
          ? `Journaled tool call, real capability vs allowAll: Executor.runCall of a proposed call, no-op tool peek, file session, fsync; ${c.runs.length} runs, each interleaving the variants in rounds of ${c.plan.perRound} calls, order rotated; n=${num(k.cap.n)} per variant`
          : `  same, durability "os" (write, no fsync: the software cost alone); ${c.runs.length} runs, rounds of ${c.plan.perRound}; n=${num(k.cap.n)} per variant`,
      result: `capability ${latencyText(k.cap)}`,
      baseline: `allowAll ${latencyText(k.allow)} (n=${num(k.allow.n)}: two interleaved allowAll variants)`,
      ratio: `${ratio(k.cap.p50 / k.allow.p50, 3)} p50 (${pct(k.change)}); per run ${list(k.perRun)}; A/A per run ${list(k.perRunAA)}, pooled ${pct(k.aaPooled)}: ${within ? "within" : "beyond"} that noise (±${(k.noise * 100).toFixed(1)}%)`,
      target: "no measurable change: pooled p50 ≤ +5%",
      status: verdict(k.pass)
    })
    rows.push({
      id: c.durability === "fsync" ? "i7b" : "i8b",
      measure: `  where the time goes (p50 of each step, n=${c.plan.probe} each; authority.check timed in place)`,
      result: `capability: ${stepsText(c.breakdown.cap)}; total ${dur(c.breakdown.cap.total)}; check in place ${latencyText(inPlace.cap)}`,
      baseline: `allowAll: ${stepsText(c.breakdown.allow)}; total ${dur(c.breakdown.allow.total)}; check in place ${latencyText(inPlace.allow)}`,
      ratio: `check in place +${dur(inPlace.cap.p50 - inPlace.allow.p50)} p50 (+${dur(inPlace.cap.mean - inPlace.allow.mean)} mean) = ${pct((inPlace.cap.p50 - inPlace.allow.p50) / k.allow.p50)} of the call; alone (i6) +${dur(checkCost)}`,
      target: "—",
      status: "info"
    })
    rows.push({
      id: c.durability === "fsync" ? "i7c" : "i8c",
      measure: "  I/O per call, instrumented runs: the authorized record joins the started batch (one frame, no extra write or fsync), then the outcome",
      result: `capability: ${c.io.cap.fsyncs.toFixed(2)} fsyncs, ${c.io.cap.writes.toFixed(2)} writes per call; [authorized, started] frame ${c.frames.cap} B`,
      baseline: `allowAll: ${c.io.allow.fsyncs.toFixed(2)} fsyncs, ${c.io.allow.writes.toFixed(2)} writes per call; frame ${c.frames.allow} B`,
      ratio: `+${c.frames.cap - c.frames.allow} B per call (the real token id and block ids)`,
      target: "—",
      status: "info"
    })
  }
}

async function microRows(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  log("(i) capabilities: issue a 3-block sealed token")
  const result = await Effect.runPromise(
    Effect.gen(function* () {
      const root = yield* Capability.generateRootKey("bench")
      const keyring: Capability.Keyring = new Map([[root.keyId, root.publicKey]])
      const revoked = new Set(Array.from({ length: 1000 }, (_, i) => `revoked-${i}`))
      const issued = yield* Capability.issue(root, rich)
      const child = yield* Capability.attenuate(issued, [Caveat.tools(["read_file", "run_command"]), Caveat.expires(3_000_000_000_000)])
      const grand = yield* Capability.attenuate(child, [Caveat.oneOf("argv.0", ["git"], { tools: ["run_command"] }), Caveat.uses(1000)])
      const token = yield* Capability.seal(grand)

      // Baseline: raw WebCrypto Ed25519 over a message the size of a block's.
      const message = new TextEncoder().encode("x".repeat(600))
      const pair = (yield* Effect.promise(() => crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]))) as CryptoKeyPair
      const signature = new Uint8Array(yield* Effect.promise(() => crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, message)))
      const raw = new Uint8Array(yield* Effect.promise(() => crypto.subtle.exportKey("raw", pair.publicKey)))
      log("(i) baseline: raw Ed25519 verify")
      const rawVerify = yield* sample(1000, 100, () => Effect.promise(() => crypto.subtle.verify({ name: "Ed25519" }, pair.publicKey, signature, message)))
      const rawImportVerify = yield* sample(1000, 100, () =>
        Effect.promise(async () =>
          crypto.subtle.verify({ name: "Ed25519" }, await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]), signature, message)
        )
      )

      log("(i1) verify, cold (no cache)")
      const cold = yield* sample(500, 50, () => Capability.verify(token, { keyring, revoked, cache: false }))
      log("(i2) verify, warm cache")
      const cache = new Capability.VerifiedCache()
      const warm = yield* sample(50_000, 5_000, () => Capability.verify(token, { keyring, revoked, cache }))
      log("(i3) verify + check, warm")
      const call = { tool: "read_file", input, uses: 10 }
      const verifyCheck = yield* sample(50_000, 5_000, () =>
        Effect.flatMap(Capability.verify(token, { keyring, revoked, cache }), (v) => Capability.check(v, call))
      )
      const verified = yield* Capability.verify(token, { keyring, revoked, cache })
      const granted = Capability.authorize(verified, { ...call, now: Date.now() })
      if (!granted.granted) throw new Error(`bench call denied: ${granted.reason}`)
      log("(i4) authorize alone")
      const t0 = Date.now()
      const authorizeOnly = yield* sample(100_000, 10_000, () => Effect.sync(() => Capability.authorize(verified, { ...call, now: t0 })))
      // Without the per-sample timer and Effect: the loop's own cost per call.
      const loops = 200_000
      const tl = now()
      for (let i = 0; i < loops; i++) Capability.authorize(verified, { ...call, now: t0 })
      const authorizeLoopMs = (now() - tl) / loops

      log("(i5) issue, attenuate, seal")
      const issue = yield* sample(200, 20, () => Capability.issue(root, rich))
      const attenuate = yield* sample(200, 20, () => Capability.attenuate(issued, [Caveat.tools(["read_file"])]))
      const seal = yield* sample(200, 20, () => Capability.seal(grand))
      return { rawVerify, rawImportVerify, cold, warm, verifyCheck, authorizeOnly, authorizeLoopMs, issue, attenuate, seal, tokenLength: token.length }
    })
  )
  const r = result
  const warmRatio = r.warm.p50 / r.rawVerify.p50
  rows.push({
    id: "i1",
    measure: `verify a sealed 3-block token (${r.tokenLength} chars, 12 caveats), no cache: decode + 3 signatures + seal + ids`,
    result: latencyText(r.cold),
    baseline: `raw WebCrypto Ed25519 verify: ${latencyText(r.rawVerify)}; importKey + verify: p50 ${dur(r.rawImportVerify.p50)}`,
    ratio: `${ratio(r.cold.p50 / r.rawVerify.p50)} one raw verify`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "i2",
    measure: "  same token, warm cache: keyring entry + 1,000-id revocation list + expiry (Clock), every call",
    result: `${latencyText(r.warm)} (${num(1000 / r.warm.mean)} verifies/s)`,
    baseline: `raw Ed25519 verify p50 ${dur(r.rawVerify.p50)}; cold verify p50 ${dur(r.cold.p50)}`,
    ratio: `${ratio(warmRatio)} raw verify; ${ratio(r.cold.p50 / r.warm.p50, 0)} faster than cold`,
    target: "< 50 µs per call",
    status: verdict(r.warm.p99 < 0.05)
  })
  rows.push({
    id: "i3",
    measure: "  verify (warm) + check (authorize, now from Clock) per call: the executor's cost between proposed and started",
    result: latencyText(r.verifyCheck),
    baseline: `raw Ed25519 verify p50 ${dur(r.rawVerify.p50)}`,
    ratio: `${ratio(r.verifyCheck.p50 / r.rawVerify.p50)} raw verify`,
    target: "< 50 µs per call",
    status: verdict(r.verifyCheck.p99 < 0.05)
  })
  rows.push({
    id: "i4",
    measure: "  authorize() alone (pure; 12 caveats over 3 blocks, a predicate, a path, an approval rule)",
    result: `${latencyText(r.authorizeOnly)}; tight loop ${dur(r.authorizeLoopMs)} per call`,
    baseline: `raw Ed25519 verify p50 ${dur(r.rawVerify.p50)}`,
    ratio: `${ratio(r.authorizeLoopMs / r.rawVerify.p50, 3)} raw verify`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "i5",
    measure: "  issue (8 caveats) / attenuate (1 caveat) / seal",
    result: `p50 ${dur(r.issue.p50)} / ${dur(r.attenuate.p50)} / ${dur(r.seal.p50)}`,
    baseline: `raw Ed25519 verify p50 ${dur(r.rawVerify.p50)}`,
    ratio: "—",
    target: "—",
    status: "info"
  })
}
