/**
 * Adversarial tests of capability tokens (issue 5, deliverable 7): every
 * tampered, spliced, truncated, widened, expired, revoked or foreign token is
 * rejected — never verified with another meaning. Prints one summary line
 * with the number of attacks tried per kind (and which error stopped them).
 * SEED=<n> repeats fast-check's choices.
 */

import { Clock, Effect, Exit } from "effect"
import fc from "fast-check"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as Capability from "../../src/authority/Capability.ts"
import * as Caveat from "../../src/authority/Caveat.ts"

const SEED = process.env.SEED !== undefined && process.env.SEED !== "" ? Number(process.env.SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
const fcOptions = (numRuns: number) => ({ seed: SEED, numRuns })

// ---------------------------------------------------------------- bookkeeping

const attacks = new Map<string, Map<string, number>>()
function count(kind: string, outcome: string): void {
  const byOutcome = attacks.get(kind) ?? new Map<string, number>()
  byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1)
  attacks.set(kind, byOutcome)
}

afterAll(() => {
  const short = (tag: string) => tag.replace(/^Capability/, "")
  const parts = [...attacks].map(([kind, byOutcome]) => {
    const total = [...byOutcome.values()].reduce((a, b) => a + b, 0)
    const detail = [...byOutcome].map(([o, n]) => `${short(o)} ${n}`).join(", ")
    return `${kind} ${total} (${detail})`
  })
  const total = [...attacks.values()].flatMap((m) => [...m.values()]).reduce((a, b) => a + b, 0)
  console.log(`capability attacks, all rejected: ${total} in all; ${parts.join("; ")}; SEED=${SEED}`)
})

// ---------------------------------------------------------------- running verify

const clockAt = (now: number): Clock.Clock => ({
  currentTimeMillisUnsafe: () => now,
  currentTimeMillis: Effect.succeed(now),
  currentTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
  currentTimeNanos: Effect.succeed(BigInt(now) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
  monotonicTimeNanos: Effect.succeed(BigInt(now) * 1_000_000n),
  sleep: () => Effect.void
})

const run = <A, E>(effect: Effect.Effect<A, E>, now = 0): Promise<A> => Effect.runPromise(Effect.provideService(effect, Clock.Clock, clockAt(now)))

/** "ok" or the error's tag; a defect (a thrown bug) fails the test. */
async function outcome(effect: Effect.Effect<unknown, { readonly _tag: string }>, now = 0): Promise<string> {
  const exit = await Effect.runPromise(Effect.exit(Effect.provideService(effect, Clock.Clock, clockAt(now))))
  if (Exit.isSuccess(exit)) return "ok"
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`defect: ${String(exit.cause)}`)
  return error.error._tag
}

let keyring: Capability.Keyring
let root: Capability.RootKey
const noneRevoked: ReadonlySet<string> = new Set()
const verify = (token: string, options: { revoked?: ReadonlySet<string>; cache?: Capability.VerifiedCache | false } = {}) =>
  Capability.verify(token, { keyring, revoked: options.revoked ?? noneRevoked, cache: options.cache ?? false })

/** Verifies a tampered token; it must be rejected (or be, byte for byte, one of `same`: no new meaning). */
async function attack(kind: string, token: string, same: ReadonlyArray<string> = [], expected?: ReadonlyArray<string>): Promise<void> {
  if (same.includes(token)) return
  const result = await outcome(verify(token))
  count(kind, result)
  assert.notStrictEqual(result, "ok", `${kind}: a tampered token verified`)
  if (expected !== undefined) assert.include(expected, result, `${kind}: rejected, but by ${result}`)
}

// ---------------------------------------------------------------- the token format, re-implemented from the spec in Capability.ts

interface Body {
  v: number
  kid: string
  blocks: Array<{ caveats: Array<unknown>; key: string; sig: string }>
  proof: { secret: string } | { seal: string }
}
const enc = new TextEncoder()
const bodyOf = (token: string): Body => JSON.parse(new TextDecoder().decode(Capability.fromBase64url(token.slice(5)))) as Body
const tokenOf = (body: unknown): string => `kcap.${Capability.base64url(enc.encode(Capability.canonicalJson(body)))}`
const b64 = (t: string) => Capability.fromBase64url(t) as Uint8Array<ArrayBuffer>
const pkcs8 = (seed: Uint8Array) => {
  const out = new Uint8Array(48)
  out.set([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
  out.set(seed, 16)
  return out
}
async function publicKeyOf(seed: Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey("pkcs8", pkcs8(seed), { name: "Ed25519" }, true, ["sign"])
  return (await crypto.subtle.exportKey("jwk", key)).x as string
}

/** What a dishonest holder can do with the proof: sign ANY block after the last one, exactly as the format says. */
async function forgeAppend(token: string, caveats: ReadonlyArray<Caveat.Caveat>): Promise<string> {
  const body = bodyOf(token)
  assert.isTrue("secret" in body.proof)
  const secret = b64((body.proof as { secret: string }).secret)
  const last = body.blocks[body.blocks.length - 1] as Body["blocks"][number]
  const seed = crypto.getRandomValues(new Uint8Array(32))
  const key = await publicKeyOf(seed)
  // Invalid caveats go in as they are: a forger need not respect the schema.
  const normal = caveats.map((c) => {
    const n = Caveat.normalize(c)
    return typeof n === "string" ? c : n
  })
  const message = `keel-capability-v1/block\n${Capability.canonicalJson({ caveats: normal, i: body.blocks.length, key, kid: body.kid, prev: last.sig })}`
  const signer = await crypto.subtle.importKey("pkcs8", pkcs8(secret), { name: "Ed25519" }, false, ["sign"])
  const sig = Capability.base64url(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer, enc.encode(message))))
  return tokenOf({ ...body, blocks: [...body.blocks, { caveats: normal, key, sig }], proof: { secret: Capability.base64url(seed) } })
}

// ---------------------------------------------------------------- fixtures

let small: string
/** Two blocks of every caveat kind, a third that narrows: the "bigger" token. */
let big: string
let bigSealed: string
/** A family from one root: a parent, two children, a grandchild of each. */
let family: { parent: string; left: string; right: string; leftGrand: string; rightGrand: string; other: string; otherChild: string }

const rich: ReadonlyArray<Caveat.Caveat> = [
  Caveat.tools(["read_file", "write_file", "run_command"]),
  Caveat.pathUnder("path", "/ws", { tools: ["read_file", "write_file"] }),
  Caveat.oneOf("argv.0", ["git", "ls", "cat"], { tools: ["run_command"] }),
  Caveat.range("limit", { min: 1, max: 1000 }, { tools: ["read_file"] }),
  Caveat.predicate({
    op: "or",
    args: [
      { op: "not", expr: { op: "prefix", left: { arg: "path" }, right: { lit: "/ws/secret" } } },
      { op: "in", left: { arg: "user" }, values: ["root", "ops"] }
    ]
  }),
  Caveat.expires(4_000_000_000_000),
  Caveat.uses(100),
  Caveat.needsApproval(["alice", "bob"], { tools: ["run_command", "write_file"] })
]

beforeAll(async () => {
  root = await run(Capability.generateRootKey("trusted"))
  keyring = new Map([[root.keyId, root.publicKey]])
  small = await run(Capability.issue(root, [Caveat.tools(["a"])]))
  const b1 = await run(
    Capability.attenuate(await run(Capability.issue(root, rich)), [Caveat.tools(["read_file", "run_command"]), Caveat.expires(3_000_000_000_000)])
  )
  big = await run(Capability.attenuate(b1, [Caveat.oneOf("argv.0", ["git"], { tools: ["run_command"] }), Caveat.uses(10)]))
  bigSealed = await run(Capability.seal(big))
  const parent = await run(Capability.issue(root, [Caveat.tools(["a", "b", "c"])]))
  const left = await run(Capability.attenuate(parent, [Caveat.tools(["a", "b"])]))
  const right = await run(Capability.attenuate(parent, [Caveat.tools(["b", "c"])]))
  const other = await run(Capability.issue(root, [Caveat.tools(["a", "b", "c"])]))
  family = {
    parent,
    left,
    right,
    leftGrand: await run(Capability.attenuate(left, [Caveat.tools(["a"])])),
    rightGrand: await run(Capability.attenuate(right, [Caveat.tools(["c"])])),
    other,
    otherChild: await run(Capability.attenuate(other, [Caveat.tools(["a"])]))
  }
  for (const t of [small, big, bigSealed, ...Object.values(family)]) assert.strictEqual(await outcome(verify(t)), "ok")
})

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
const substitutes = `${alphabet}.=+/ `

// ---------------------------------------------------------------- tampering with bytes

describe("changed bytes", () => {
  it("every character of a small token replaced by every other candidate: rejected", async () => {
    for (let p = 0; p < small.length; p++) {
      for (const ch of substitutes) if (ch !== small[p]) await attack("charSubstituted", small.slice(0, p) + ch + small.slice(p + 1))
    }
  })

  it("every bit of every byte of a small token flipped: rejected", async () => {
    for (let p = 0; p < small.length; p++) {
      for (let bit = 0; bit < 8; bit++)
        await attack("bitFlipped", small.slice(0, p) + String.fromCharCode(small.charCodeAt(p) ^ (1 << bit)) + small.slice(p + 1))
    }
  })

  it("every bit of the decoded JSON of a small token flipped, then re-encoded: rejected", async () => {
    const json = Capability.fromBase64url(small.slice(5)) as Uint8Array
    for (let p = 0; p < json.length; p++) {
      for (let bit = 0; bit < 8; bit++) {
        const bytes = json.slice()
        bytes[p] = (bytes[p] as number) ^ (1 << bit)
        await attack("jsonBitFlipped", `kcap.${Capability.base64url(bytes)}`)
      }
    }
  })

  it("truncated or extended at every length: rejected", async () => {
    for (let cut = 0; cut < small.length; cut++) await attack("cutOrExtended", small.slice(0, cut))
    for (const extra of ["A", "AA", "AAA", "AAAA", "=", "=="]) await attack("cutOrExtended", small + extra)
  })

  it("a bigger token (3 blocks, every caveat kind; attenuable and sealed): sampled substitutions and bit flips, rejected", async () => {
    for (const token of [big, bigSealed]) {
      const json = Capability.fromBase64url(token.slice(5)) as Uint8Array
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: token.length - 1 }), fc.constantFrom(...substitutes), async (p, ch) => {
          if (ch !== token[p]) await attack("charSubstitutedBig", token.slice(0, p) + ch + token.slice(p + 1))
        }),
        fcOptions(1500)
      )
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: json.length * 8 - 1 }), async (bit) => {
          const bytes = json.slice()
          bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7))
          await attack("jsonBitFlippedBig", `kcap.${Capability.base64url(bytes)}`)
        }),
        fcOptions(1500)
      )
    }
  })
})

// ---------------------------------------------------------------- editing the decoded token

describe("edited caveats, re-encoded canonically", () => {
  const edits = (body: Body, f: (caveats: Array<unknown>, block: number) => Array<Array<unknown>>): Array<string> =>
    body.blocks.flatMap((b, i) => f(b.caveats, i).map((caveats) => tokenOf({ ...body, blocks: body.blocks.map((x, j) => (j === i ? { ...x, caveats } : x)) })))

  it("every caveat removed, every pair reordered, every caveat duplicated: rejected", async () => {
    for (const token of [big, bigSealed, family.leftGrand]) {
      const body = bodyOf(token)
      for (const t of edits(body, (cs) => cs.map((_, k) => cs.filter((__, j) => j !== k)))) await attack("caveatRemoved", t, [], ["CapabilityBadSignature"])
      for (const t of edits(body, (cs) => cs.flatMap((_, k) => cs.slice(k + 1).map((__, d) => swap(cs, k, k + 1 + d)))))
        await attack("caveatsReordered", t, [token])
      for (const t of edits(body, (cs) => cs.map((c) => [...cs, c]))) await attack("caveatDuplicated", t)
      for (const t of edits(body, () => [[]])) await attack("caveatRemoved", t, [token])
    }
  })

  it("every caveat widened in place (tools, expiry, uses, approvers, values, bounds, roots, predicates): rejected", async () => {
    const widen = (c: Caveat.Caveat): Array<unknown> => {
      switch (c.kind) {
        case "tools":
          return [
            { ...c, names: [...c.names, "zz_delete_db"] },
            { ...c, names: [...c.names, "delete_db"].sort() }
          ]
        case "expires":
          return [
            { ...c, at: c.at + 1 },
            { ...c, at: Caveat.timeMsMax },
            { ...c, at: Number.MAX_SAFE_INTEGER }
          ]
        case "uses":
          return [{ ...c, max: c.max + 1 }]
        case "needsApproval":
          return [
            { ...c, approvers: [...c.approvers, "mallory"].sort() },
            { ...c, tools: ["nothing"] }
          ]
        case "oneOf":
          return [{ ...c, values: [...c.values, "rm"].sort() }]
        case "range":
          return [
            { ...c, max: (c.max ?? 0) + 1 },
            { kind: c.kind, field: c.field, min: c.min }
          ]
        case "pathUnder":
          return [
            { ...c, root: "/" },
            { ...c, field: "other" }
          ]
        case "predicate":
          return [
            { ...c, expr: { op: "or", args: [] } },
            { ...c, tools: ["nothing"] }
          ]
      }
    }
    for (const token of [big, bigSealed]) {
      const body = bodyOf(token)
      const variants = edits(body, (cs) => cs.flatMap((c, k) => widen(c as Caveat.Caveat).map((w) => cs.map((x, j) => (j === k ? w : x)))))
      for (const t of variants) await attack("caveatWidenedInPlace", t, [], ["CapabilityBadSignature", "CapabilityMalformed"])
    }
  })

  it("a holder signs a widening block with the proof (correctly, per the format): CapabilityWidened", async () => {
    // Control: the forger itself is right — a narrowing block it signs verifies.
    assert.strictEqual(await outcome(verify(await forgeAppend(big, [Caveat.tools(["read_file"])]))), "ok")
    const widening = fc.oneof(
      fc.constantFrom<Caveat.Caveat>(
        Caveat.tools(["read_file", "write_file"]),
        Caveat.tools(["delete_db"]),
        Caveat.needsApproval(["mallory"], { tools: ["run_command"] }),
        Caveat.oneOf("argv.0", ["git", "rm"], { tools: ["run_command"] }),
        Caveat.pathUnder("path", "/", { tools: ["read_file"] }),
        Caveat.range("limit", { min: 0 }, { tools: ["read_file"] }),
        Caveat.range("limit", { max: 1001 }, { tools: ["read_file"] })
      ),
      fc.integer({ min: 3_000_000_000_001, max: Caveat.timeMsMax }).map(Caveat.expires),
      fc.integer({ min: 11, max: 1_000_000 }).map(Caveat.uses)
    )
    await fc.assert(
      fc.asyncProperty(widening, async (c) => {
        const result = await outcome(verify(await forgeAppend(big, [Caveat.tools(["read_file"]), c])))
        count("widenedBlockSigned", result)
        assert.strictEqual(result, "CapabilityWidened", Caveat.describe(c))
      }),
      fcOptions(150)
    )
    // Signed, but outside what a token may say (an expiry no Date can hold, a deep predicate): malformed, never a crash.
    const deep = Array.from({ length: 12 }).reduce<Caveat.Expr>((e) => ({ op: "not", expr: e }), { op: "eq", left: { arg: "a" }, right: { lit: 1 } })
    for (const c of [Caveat.expires(Number.MAX_SAFE_INTEGER), Caveat.predicate(deep), Caveat.range("x", { min: 2, max: 1 }), Caveat.uses(-1)]) {
      await attack("invalidBlockSigned", await forgeAppend(big, [c]), [], ["CapabilityMalformed"])
    }
  })
})

function swap<T>(xs: ReadonlyArray<T>, i: number, j: number): Array<T> {
  const out = [...xs]
  out[i] = xs[j] as T
  out[j] = xs[i] as T
  return out
}

// ---------------------------------------------------------------- splicing tokens

describe("spliced, swapped and truncated", () => {
  const tokens = () => Object.values(family).concat([big, small])

  it("blocks swapped between tokens from the same root (every position, keeping either proof): rejected", async () => {
    const all = tokens()
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue
        const A = bodyOf(a)
        const B = bodyOf(b)
        for (let i = 0; i < A.blocks.length; i++) {
          for (let j = 0; j < B.blocks.length; j++) {
            const blocks = A.blocks.map((x, k) => (k === i ? (B.blocks[j] as Body["blocks"][number]) : x))
            await attack("blockSwapped", tokenOf({ ...A, blocks }), all)
            await attack("blockSwapped", tokenOf({ ...A, blocks, proof: B.proof }), all)
          }
          // Another token's block appended, with its proof: a chain must be one chain.
          for (const extra of B.blocks) await attack("blockSpliced", tokenOf({ ...A, blocks: [...A.blocks, extra], proof: B.proof }), all)
        }
      }
    }
  })

  it("signatures swapped between blocks and tokens, and proofs/seals swapped between tokens: rejected", async () => {
    const all = tokens().concat([bigSealed])
    const sigs = all.flatMap((t) => bodyOf(t).blocks.map((b) => b.sig))
    for (const a of all) {
      const A = bodyOf(a)
      for (let i = 0; i < A.blocks.length; i++) {
        for (const sig of sigs) {
          const blocks = A.blocks.map((x, k) => (k === i ? { ...x, sig } : x))
          await attack("signatureSwapped", tokenOf({ ...A, blocks }), all)
        }
      }
      for (const b of all) await attack("proofSwapped", tokenOf({ ...A, proof: bodyOf(b).proof }), all)
      for (const sig of sigs) await attack("sealForged", tokenOf({ ...A, proof: { seal: sig } }), all)
    }
  })

  it("blocks removed (the last ones to widen back, a middle one, the first): rejected", async () => {
    for (const t of [big, bigSealed, family.leftGrand, family.rightGrand, family.left, family.otherChild]) {
      const body = bodyOf(t)
      for (let keep = 1; keep < body.blocks.length; keep++) {
        await attack("truncated", tokenOf({ ...body, blocks: body.blocks.slice(0, keep) }), [], ["CapabilityBadSignature"])
        // Dropping the proof does not help: the last remaining block's secret was never handed out.
        await attack(
          "truncated",
          tokenOf({ ...body, blocks: body.blocks.slice(0, keep), proof: { seal: body.blocks[keep]?.sig } }),
          [],
          ["CapabilityBadSignature"]
        )
      }
      for (let drop = 0; drop < body.blocks.length && body.blocks.length > 1; drop++) {
        await attack("blockRemoved", tokenOf({ ...body, blocks: body.blocks.filter((_, k) => k !== drop) }), [], ["CapabilityBadSignature"])
      }
      for (let i = 0; i + 1 < body.blocks.length; i++) await attack("blocksReordered", tokenOf({ ...body, blocks: swap(body.blocks, i, i + 1) }), [])
    }
  })
})

// ---------------------------------------------------------------- keys, seals, time, revocation

describe("keys, seals, expiry and revocation", () => {
  it("tokens from foreign root keys (other ids, and the trusted id on another key): CapabilityForeignKey or CapabilityBadSignature", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("trusted", "other", "trusted2", "k-1"), fc.constantFrom(...rich), async (keyId, c) => {
        const foreign = await run(Capability.generateRootKey(keyId))
        const token = await run(Capability.issue(foreign, [c]))
        const result = await outcome(verify(token))
        count("foreignKey", result)
        assert.strictEqual(result, keyId === "trusted" ? "CapabilityBadSignature" : "CapabilityForeignKey")
        // Re-labelled with the trusted key id: the signature does not check.
        if (keyId !== "trusted") await attack("foreignKey", tokenOf({ ...bodyOf(token), kid: "trusted" }), [], ["CapabilityBadSignature"])
      }),
      fcOptions(40)
    )
  })

  it("attenuating a sealed token fails; a sealed token given a new proof is rejected", async () => {
    const sealed = [bigSealed, await run(Capability.seal(small)), ...(await Promise.all(Object.values(family).map((t) => run(Capability.seal(t)))))]
    for (const t of sealed) {
      const result = await outcome(Capability.attenuate(t, [Caveat.tools(["a"])]))
      count("sealedAttenuated", result)
      assert.strictEqual(result, "CapabilitySealed")
      const randomProof = Capability.base64url(crypto.getRandomValues(new Uint8Array(32)))
      await attack("sealedReopened", tokenOf({ ...bodyOf(t), proof: { secret: randomProof } }), [], ["CapabilityBadSignature"])
    }
  })

  it("expired tokens: CapabilityExpired exactly from the earliest expiry on (any block)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 1_100_000 }),
        async (expiries, now) => {
          // Each block may only narrow: clamp to the earliest so far (a widening would be refused, tested above).
          let token = ""
          let earliest: number | undefined
          for (const [i, at] of expiries.entries()) {
            const e = at === undefined ? undefined : Math.min(at, earliest ?? at)
            const caveats = e === undefined ? [] : [Caveat.expires(e)]
            token = i === 0 ? await run(Capability.issue(root, caveats)) : await run(Capability.attenuate(token, caveats))
            if (e !== undefined) earliest = e
          }
          const result = await outcome(verify(token), now)
          if (earliest !== undefined && now >= earliest) {
            count("expired", result)
            assert.strictEqual(result, "CapabilityExpired")
          } else assert.strictEqual(result, "ok")
        }
      ),
      fcOptions(60)
    )
  })

  it("revoked token ids and derived block ids: CapabilityRevoked for exactly the tokens that contain one — cached or not", async () => {
    const names = Object.keys(family) as Array<keyof typeof family>
    const cache = new Capability.VerifiedCache()
    const verified = new Map<string, Capability.Verified>()
    for (const n of names) verified.set(n, await run(verify(family[n], { cache })))
    const ids = [...new Set([...verified.values()].flatMap((v) => v.blockIds))]
    await fc.assert(
      fc.asyncProperty(fc.subarray(ids), fc.boolean(), async (revokedIds, cached) => {
        const revoked = new Set(revokedIds)
        for (const n of names) {
          const shouldFail = (verified.get(n) as Capability.Verified).blockIds.some((id) => revoked.has(id))
          const result = await outcome(verify(family[n], { revoked, cache: cached ? cache : false }))
          if (shouldFail) {
            count(cached ? "revokedCached" : "revoked", result)
            assert.strictEqual(result, "CapabilityRevoked", n)
          } else assert.strictEqual(result, "ok", n)
        }
      }),
      fcOptions(60)
    )
  })
})
