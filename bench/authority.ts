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
 */
import { Effect } from "effect"
import * as Capability from "../src/authority/Capability.ts"
import * as Caveat from "../src/authority/Caveat.ts"
import { dur, num, type Row, ratio, type Stats, stats, verdict } from "./lib.ts"

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

export async function sectionI(rows: Array<Row>, log: (message: string) => void): Promise<void> {
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
