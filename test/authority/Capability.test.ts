import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as Capability from "../../src/authority/Capability.ts"
import * as Caveat from "../../src/authority/Caveat.ts"

const noneRevoked: ReadonlySet<string> = new Set()

/** A root key, its keyring, and a verify that never shares the process-wide cache between tests. */
const setup = (keyId = "root-1") =>
  Effect.gen(function* () {
    const root = yield* Capability.generateRootKey(keyId)
    const keyring: Capability.Keyring = new Map([[root.keyId, root.publicKey]])
    const cache = new Capability.VerifiedCache()
    const verify = (token: string, revoked: ReadonlySet<string> = noneRevoked) => Capability.verify(token, { keyring, revoked, cache })
    return { root, keyring, cache, verify }
  })

/** The decoded JSON body of a token (tests only look; they never need the proof). */
const bodyOf = (token: string) => JSON.parse(new TextDecoder().decode(Capability.fromBase64url(token.slice("kcap.".length)))) as Record<string, unknown>

const call = (tool: string, input: unknown, extra: Partial<Capability.CallRequest> = {}): Capability.CallRequest => ({ tool, input, now: 0, uses: 0, ...extra })

const deniedBy = (a: Capability.Authorization): string => (a.granted ? "granted" : `${a.kind}:${a.caveat.kind}@${a.block}`)

describe("issue, attenuate, seal, verify", () => {
  it.effect("issues a canonical, versioned token that verifies and authorizes what it grants", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const token = yield* Capability.issue(root, [Caveat.tools(["write_file", "read_file", "read_file"])])
      assert.isTrue(token.startsWith("kcap."))
      const body = bodyOf(token)
      assert.deepStrictEqual(Object.keys(body), ["blocks", "kid", "proof", "v"])
      assert.strictEqual(body.v, 1)
      assert.strictEqual(body.kid, "root-1")
      const blocks = body.blocks as Array<{ caveats: unknown; key: string; sig: string }>
      assert.strictEqual(blocks.length, 1)
      // Sets are normalised: sorted, deduplicated.
      assert.deepStrictEqual(blocks[0]?.caveats, [{ kind: "tools", names: ["read_file", "write_file"] }])
      assert.strictEqual(blocks[0]?.key.length, 43)
      assert.strictEqual(blocks[0]?.sig.length, 86)
      const verified = yield* verify(token)
      assert.strictEqual(verified.id, verified.blockIds[0])
      assert.strictEqual(verified.id.length, 43)
      assert.isFalse(verified.sealed)
      assert.strictEqual(deniedBy(Capability.authorize(verified, call("read_file", { path: "a" }))), "granted")
      assert.strictEqual(deniedBy(Capability.authorize(verified, call("run_command", {}))), "denied:tools@0")
    })
  )

  it.effect("two tokens with the same caveats have different ids (a fresh key per block)", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const a = yield* verify(yield* Capability.issue(root, [Caveat.tools(["x"])]))
      const b = yield* verify(yield* Capability.issue(root, [Caveat.tools(["x"])]))
      assert.notStrictEqual(a.id, b.id)
    })
  )

  it.effect("attenuation appends a block that narrows; the chain keeps every block's id", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const parent = yield* Capability.issue(root, [Caveat.tools(["read_file", "write_file", "run_command"])])
      const child = yield* Capability.attenuate(parent, [Caveat.tools(["read_file"]), Caveat.pathUnder("path", "src")])
      const grandchild = yield* Capability.attenuate(child, [Caveat.pathUnder("path", "src/lib")])
      const p = yield* verify(parent)
      const c = yield* verify(child)
      const g = yield* verify(grandchild)
      assert.strictEqual(c.id, p.id)
      assert.strictEqual(g.id, p.id)
      assert.deepStrictEqual(g.blockIds.slice(0, 2), c.blockIds)
      assert.strictEqual(g.blockIds.length, 3)
      assert.strictEqual(deniedBy(Capability.authorize(c, call("write_file", { path: "src/a" }))), "denied:tools@1")
      assert.strictEqual(deniedBy(Capability.authorize(c, call("read_file", { path: "src/a" }))), "granted")
      assert.strictEqual(deniedBy(Capability.authorize(g, call("read_file", { path: "src/a" }))), "denied:pathUnder@2")
      assert.strictEqual(deniedBy(Capability.authorize(g, call("read_file", { path: "src/lib/a" }))), "granted")
      // The parent is untouched by its children.
      assert.strictEqual(deniedBy(Capability.authorize(p, call("write_file", { path: "/etc/passwd" }))), "granted")
    })
  )

  it.effect("attenuation that tries to widen fails with CapabilityWidened naming the block", () =>
    Effect.gen(function* () {
      const { root } = yield* setup()
      const parent = yield* Capability.issue(root, [
        Caveat.tools(["read_file", "run_command"]),
        Caveat.expires(10_000),
        Caveat.uses(5),
        Caveat.needsApproval(["alice", "bob"]),
        Caveat.pathUnder("path", "/ws", { tools: ["read_file"] }),
        Caveat.oneOf("argv.0", ["git", "ls"], { tools: ["run_command"] }),
        Caveat.range("depth", { min: 1, max: 3 })
      ])
      const widen = (c: Caveat.Caveat) => Effect.flip(Capability.attenuate(parent, [c]))
      const cases: Array<[Caveat.Caveat, string]> = [
        [Caveat.tools(["read_file", "delete_db"]), "delete_db"],
        [Caveat.expires(20_000), "expires after"],
        [Caveat.uses(6), "more than"],
        [Caveat.needsApproval(["mallory"]), "mallory"],
        [Caveat.pathUnder("path", "/", { tools: ["read_file"] }), "not under"],
        [Caveat.oneOf("argv.0", ["git", "rm"], { tools: ["run_command"] }), "values"],
        [Caveat.range("depth", { min: 0, max: 3 }), "minimum"],
        [Caveat.range("depth", { min: 1 }), "maximum"]
      ]
      for (const [c, words] of cases) {
        const e = yield* widen(c)
        assert.strictEqual(e._tag, "CapabilityWidened", Caveat.describe(c))
        if (e._tag === "CapabilityWidened") {
          assert.strictEqual(e.block, 1)
          assert.include(e.reason, words)
        }
      }
      // Narrowing (or restating) is fine, and scoped caveats on other fields or tools are not compared.
      yield* Capability.attenuate(parent, [
        Caveat.tools(["read_file"]),
        Caveat.expires(9_000),
        Caveat.uses(5),
        Caveat.needsApproval(["bob"]),
        Caveat.pathUnder("path", "/ws/src", { tools: ["read_file"] }),
        Caveat.oneOf("argv.0", ["git"], { tools: ["run_command"] }),
        Caveat.range("depth", { min: 2, max: 2 }),
        Caveat.range("other", { min: -100 })
      ])
    })
  )

  it.effect("seal stops attenuation; a sealed token verifies; sealing twice changes nothing", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const token = yield* Capability.attenuate(yield* Capability.issue(root, [Caveat.tools(["a", "b"])]), [Caveat.tools(["a"])])
      const sealed = yield* Capability.seal(token)
      assert.deepStrictEqual(Object.keys(bodyOf(sealed).proof as object), ["seal"])
      assert.strictEqual(yield* Capability.seal(sealed), sealed)
      const v = yield* verify(sealed)
      assert.isTrue(v.sealed)
      assert.strictEqual(v.id, (yield* verify(token)).id)
      const e = yield* Effect.flip(Capability.attenuate(sealed, [Caveat.tools(["a"])]))
      assert.strictEqual(e._tag, "CapabilitySealed")
      if (e._tag === "CapabilitySealed") assert.strictEqual(e.tokenId, v.id)
    })
  )

  it.effect("refuses malformed input with CapabilityMalformed", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const token = yield* Capability.issue(root, [])
      const bad = ["", "kcap.", "kcap.!!!!", `xcap.${token.slice(5)}`, `${token}A`, `${token} `, "kcap.e30", `kcap.${"A".repeat(20_000)}`]
      for (const t of bad) assert.strictEqual((yield* Effect.flip(verify(t)))._tag, "CapabilityMalformed", t.slice(0, 40))
      // Valid JSON, valid signatures, but not the canonical form (spaces, other key order).
      const json = new TextDecoder().decode(Capability.fromBase64url(token.slice(5)))
      const spaced = `kcap.${Capability.base64url(new TextEncoder().encode(json.replace(":", ": ")))}`
      const reordered = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(json)).reverse()))
      assert.strictEqual((yield* Effect.flip(verify(spaced)))._tag, "CapabilityMalformed")
      assert.strictEqual((yield* Effect.flip(verify(`kcap.${Capability.base64url(new TextEncoder().encode(reordered))}`)))._tag, "CapabilityMalformed")
      // Invalid caveats are refused when issuing, too.
      const invalid: Array<Caveat.Caveat> = [
        Caveat.range("n", { min: 3, max: 1 }),
        Caveat.range("n", {}),
        Caveat.pathUnder("path", "../up"),
        Caveat.pathUnder("bad field!", "/ws"),
        Caveat.tools(["not a tool name"]),
        Caveat.expires(-1),
        Caveat.uses(1.5),
        Caveat.needsApproval([]),
        Caveat.oneOf("x", [], { tools: [] }),
        Caveat.predicate(Array.from({ length: 10 }).reduce<Caveat.Expr>((e) => ({ op: "not", expr: e }), { op: "eq", left: { arg: "a" }, right: { lit: 1 } }))
      ]
      for (const c of invalid) assert.strictEqual((yield* Effect.flip(Capability.issue(root, [c])))._tag, "CapabilityMalformed", JSON.stringify(c))
      const tooMany = Array.from({ length: Caveat.AuthorityLimits.caveatsPerBlockMax + 1 }, () => Caveat.uses(1))
      assert.strictEqual((yield* Effect.flip(Capability.issue(root, tooMany)))._tag, "CapabilityMalformed")
    })
  )

  it.effect("a token holds at most blocksPerTokenMax blocks", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      let token = yield* Capability.issue(root, [])
      for (let i = 1; i < Caveat.AuthorityLimits.blocksPerTokenMax; i++) token = yield* Capability.attenuate(token, [])
      assert.strictEqual((yield* verify(token)).blockIds.length, Caveat.AuthorityLimits.blocksPerTokenMax)
      assert.strictEqual((yield* Effect.flip(Capability.attenuate(token, [])))._tag, "CapabilityMalformed")
    })
  )

  it.effect("a foreign root key, or a key id that now names another key, is refused", () =>
    Effect.gen(function* () {
      const { root, verify, cache } = yield* setup("shared-id")
      const other = yield* setup("shared-id")
      const token = yield* Capability.issue(root, [])
      yield* verify(token)
      // Same key id, another key (rotation): the cached verification does not carry over.
      const e1 = yield* Effect.flip(Capability.verify(token, { keyring: other.keyring, revoked: noneRevoked, cache }))
      assert.strictEqual(e1._tag, "CapabilityBadSignature")
      const e2 = yield* Effect.flip(Capability.verify(token, { keyring: new Map(), revoked: noneRevoked, cache }))
      assert.strictEqual(e2._tag, "CapabilityForeignKey")
      if (e2._tag === "CapabilityForeignKey") assert.strictEqual(e2.keyId, "shared-id")
    })
  )

  it.effect("revocation is checked on every call, cached or not: a token id revokes all, a block id its branch", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const parent = yield* Capability.issue(root, [Caveat.tools(["a", "b"])])
      const left = yield* Capability.attenuate(parent, [Caveat.tools(["a"])])
      const right = yield* Capability.attenuate(parent, [Caveat.tools(["b"])])
      const leftGrand = yield* Capability.attenuate(left, [])
      const l = yield* verify(left)
      yield* verify(right)
      const revokedLeft = new Set([l.blockIds[1] as string])
      const e = yield* Effect.flip(verify(leftGrand, revokedLeft))
      assert.strictEqual(e._tag, "CapabilityRevoked")
      if (e._tag === "CapabilityRevoked") assert.strictEqual(e.block, 1)
      assert.strictEqual((yield* Effect.flip(verify(left, revokedLeft)))._tag, "CapabilityRevoked")
      yield* verify(right, revokedLeft)
      yield* verify(parent, revokedLeft)
      const all = new Set([l.id])
      for (const t of [parent, left, right, leftGrand]) assert.strictEqual((yield* Effect.flip(verify(t, all)))._tag, "CapabilityRevoked")
    })
  )

  it.effect("expiry comes from the Clock, on every call; the earliest block wins", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const token = yield* Capability.attenuate(yield* Capability.issue(root, [Caveat.expires(10_000)]), [Caveat.expires(5_000)])
      const v = yield* verify(token)
      assert.deepStrictEqual(v.expiry, { at: 5_000, block: 1 })
      yield* TestClock.setTime(4_999)
      yield* verify(token)
      yield* TestClock.setTime(5_000)
      const e = yield* Effect.flip(verify(token))
      assert.strictEqual(e._tag, "CapabilityExpired")
      if (e._tag === "CapabilityExpired") {
        assert.strictEqual(e.block, 1)
        assert.strictEqual(e.now, 5_000)
      }
    })
  )

  it.effect("the cache is an LRU bounded by its capacity, and reused on a hit", () =>
    Effect.gen(function* () {
      const { root, keyring } = yield* setup()
      const cache = new Capability.VerifiedCache(2)
      const tokens = [yield* Capability.issue(root, []), yield* Capability.issue(root, []), yield* Capability.issue(root, [])]
      const v = (t: string) => Capability.verify(t, { keyring, revoked: noneRevoked, cache })
      const first = yield* v(tokens[0] as string)
      assert.strictEqual(yield* v(tokens[0] as string), first)
      yield* v(tokens[1] as string)
      yield* v(tokens[0] as string) // tokens[1] is now the least recently used
      yield* v(tokens[2] as string)
      assert.strictEqual(cache.size, 2)
      assert.strictEqual(yield* v(tokens[0] as string), first)
      assert.notStrictEqual(yield* Capability.verify(tokens[0] as string, { keyring, revoked: noneRevoked, cache: false }), first)
    })
  )
})

describe("authorize: every caveat kind", () => {
  const verifiedWith = (caveats: ReadonlyArray<Caveat.Caveat>, more: ReadonlyArray<ReadonlyArray<Caveat.Caveat>> = []) =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      let token = yield* Capability.issue(root, caveats)
      for (const cs of more) token = yield* Capability.attenuate(token, cs)
      return yield* verify(token)
    })

  it.effect("tools", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.tools(["a"])])
      assert.strictEqual(deniedBy(Capability.authorize(v, call("a", {}))), "granted")
      const d = Capability.authorize(v, call("b", {}))
      assert.isFalse(d.granted)
      if (!d.granted) assert.include(d.reason, "tool b is not granted")
      const none = yield* verifiedWith([Caveat.tools([])])
      assert.strictEqual(deniedBy(Capability.authorize(none, call("a", {}))), "denied:tools@0")
    })
  )

  it.effect("pathUnder: lexical, by whole segments, refusing escapes", () =>
    Effect.gen(function* () {
      const rel = yield* verifiedWith([Caveat.pathUnder("path", "./src/")])
      const abs = yield* verifiedWith([Caveat.pathUnder("file.path", "/ws")])
      const any = yield* verifiedWith([Caveat.pathUnder("path", ".")])
      const ok = (v: Capability.Verified, input: unknown) => Capability.authorize(v, call("t", input)).granted
      assert.isTrue(ok(rel, { path: "src" }))
      assert.isTrue(ok(rel, { path: "src/a/b.ts" }))
      assert.isTrue(ok(rel, { path: "./src//a/./b/../c" }))
      assert.isFalse(ok(rel, { path: "src/../etc/passwd" }))
      assert.isFalse(ok(rel, { path: "../src/a" }))
      assert.isFalse(ok(rel, { path: "src2/a" }))
      assert.isFalse(ok(rel, { path: "/src/a" }))
      assert.isFalse(ok(rel, { path: "src/a\0" }))
      assert.isFalse(ok(rel, { path: "src\\..\\..\\etc" }))
      assert.isFalse(ok(rel, { path: "" }))
      assert.isFalse(ok(rel, { path: 42 }))
      assert.isFalse(ok(rel, {}))
      assert.isTrue(ok(abs, { file: { path: "/ws/x" } }))
      assert.isFalse(ok(abs, { file: { path: "/ws/../x" } }))
      assert.isFalse(ok(abs, { file: { path: "/wsx" } }))
      assert.isFalse(ok(abs, { file: { path: "ws/x" } }))
      assert.isTrue(ok(any, { path: "a/b" }))
      assert.isFalse(ok(any, { path: "/a" }))
      assert.isFalse(ok(any, { path: "a/../../b" }))
      // %2e%2e is a file name, not a parent: the scoped filesystem does not decode it either.
      assert.isTrue(ok(rel, { path: "src/%2e%2e/x" }))
    })
  )

  it.effect("oneOf: a command in an allow-list, by index into argv", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.oneOf("argv.0", ["git", "ls"]), Caveat.oneOf("mode", [1, true, null])])
      const ok = (input: unknown) => Capability.authorize(v, call("run", input)).granted
      assert.isTrue(ok({ argv: ["git", "status"], mode: 1 }))
      assert.isTrue(ok({ argv: ["ls"], mode: null }))
      assert.isFalse(ok({ argv: ["rm", "-rf"], mode: 1 }))
      assert.isFalse(ok({ argv: [], mode: 1 }))
      assert.isFalse(ok({ argv: "git", mode: 1 }))
      assert.isFalse(ok({ argv: [["git"]], mode: 1 }))
      assert.isFalse(ok({ argv: ["git"], mode: "1" }))
      assert.isFalse(ok({ argv: ["git"] }))
    })
  )

  it.effect("range: inclusive bounds on a number", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.range("n", { min: 1, max: 10 }), Caveat.range("m", { max: 0.5 })])
      const ok = (input: unknown) => Capability.authorize(v, call("t", input)).granted
      assert.isTrue(ok({ n: 1, m: -1e9 }))
      assert.isTrue(ok({ n: 10, m: 0.5 }))
      assert.isFalse(ok({ n: 0, m: 0 }))
      assert.isFalse(ok({ n: 11, m: 0 }))
      assert.isFalse(ok({ n: 5, m: 0.51 }))
      assert.isFalse(ok({ n: "5", m: 0 }))
      assert.isFalse(ok({ n: Number.NaN, m: 0 }))
      assert.isFalse(ok({ m: 0 }))
    })
  )

  it.effect("predicate: and/or/not/eq/lt/le/gt/ge/prefix/in, three-valued", () =>
    Effect.gen(function* () {
      const arg = (a: string) => ({ arg: a })
      const lit = (l: Caveat.Scalar) => ({ lit: l })
      const expr: Caveat.Expr = {
        op: "and",
        args: [
          {
            op: "or",
            args: [
              { op: "eq", left: arg("mode"), right: lit("read") },
              { op: "prefix", left: arg("path"), right: lit("tmp/") }
            ]
          },
          { op: "not", expr: { op: "in", left: arg("user"), values: ["root", "admin"] } },
          { op: "lt", left: arg("size"), right: lit(100) },
          { op: "le", left: lit(0), right: arg("size") },
          { op: "gt", left: arg("limit"), right: arg("size") },
          { op: "ge", left: arg("limit"), right: lit(1) }
        ]
      }
      const v = yield* verifiedWith([Caveat.predicate(expr)])
      const ok = (input: unknown) => Capability.authorize(v, call("t", input)).granted
      const base = { mode: "read", path: "x", user: "ann", size: 10, limit: 50 }
      assert.isTrue(ok(base))
      assert.isTrue(ok({ ...base, mode: "write", path: "tmp/a" }))
      assert.isFalse(ok({ ...base, mode: "write" }))
      assert.isFalse(ok({ ...base, user: "root" }))
      assert.isFalse(ok({ ...base, size: 100 }))
      assert.isFalse(ok({ ...base, size: -1 }))
      assert.isFalse(ok({ ...base, limit: 10 }))
      assert.isFalse(ok({ ...base, limit: 0, size: 0 }))
      // Unknowns never authorize: not(missing in …) stays unknown; a string is not less than a number.
      const { user: _user, ...noUser } = base
      assert.isFalse(ok(noUser))
      assert.isFalse(ok({ ...base, size: "10" }))
      // …but `or` with one true side does not need the other.
      const { mode: _mode, ...noMode } = base
      assert.isTrue(ok({ ...noMode, path: "tmp/x" }))
      const d = Capability.authorize(v, call("t", noUser))
      if (!d.granted) assert.include(d.reason, "cannot be decided")
      // Fields are own properties only.
      const proto = yield* verifiedWith([Caveat.predicate({ op: "eq", left: arg("constructor"), right: lit(null) })])
      assert.isFalse(Capability.authorize(proto, call("t", {})).granted)
      assert.strictEqual(Caveat.describeExpr(expr).includes("starts with"), true)
    })
  )

  it.effect("expires: denied from the expiry instant on", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.expires(1_000)])
      assert.isTrue(Capability.authorize(v, call("t", {}, { now: 999 })).granted)
      assert.strictEqual(deniedBy(Capability.authorize(v, call("t", {}, { now: 1_000 }))), "expired:expires@0")
    })
  )

  it.effect("uses: counted per block (a sub-agent's budget and its parent's)", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.uses(10)], [[Caveat.uses(2)]])
      const counts = (parent: number, child: number) => (id: string) => (id === v.blockIds[0] ? parent : id === v.blockIds[1] ? child : 0)
      assert.isTrue(Capability.authorize(v, call("t", {}, { uses: counts(5, 1) })).granted)
      assert.strictEqual(deniedBy(Capability.authorize(v, call("t", {}, { uses: counts(5, 2) }))), "exhausted:uses@1")
      assert.strictEqual(deniedBy(Capability.authorize(v, call("t", {}, { uses: counts(10, 0) }))), "exhausted:uses@0")
      assert.strictEqual(deniedBy(Capability.authorize(v, call("t", {}, { uses: 2 }))), "exhausted:uses@1")
    })
  )

  it.effect("needsApproval: scoped, and intersected across blocks", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.needsApproval(["alice", "bob"], { tools: ["run"] })], [[Caveat.needsApproval(["bob"])]])
      const run = Capability.authorize(v, call("run", {}))
      assert.deepStrictEqual(run, { granted: true, approval: { approvers: ["bob"] } })
      assert.deepStrictEqual(Capability.authorize(v, call("read", {})), { granted: true, approval: { approvers: ["bob"] } })
      const free = yield* verifiedWith([Caveat.needsApproval(["alice"], { tools: ["run"] })])
      assert.deepStrictEqual(Capability.authorize(free, call("read", {})), { granted: true, approval: undefined })
      // Disjoint lists (the unscoped block is not compared with the scoped one): nobody can approve, so no.
      const disjoint = yield* verifiedWith([Caveat.needsApproval(["alice"], { tools: ["run"] })], [[Caveat.needsApproval(["bob"])]])
      const d = Capability.authorize(disjoint, call("run", {}))
      assert.strictEqual(deniedBy(d), "denied:needsApproval@1")
    })
  )

  it.effect("scoped argument caveats do not restrict other tools", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.tools(["read", "run"]), Caveat.oneOf("argv.0", ["ls"], { tools: ["run"] })])
      assert.isTrue(Capability.authorize(v, call("read", { path: "x" })).granted)
      assert.isFalse(Capability.authorize(v, call("run", { argv: ["rm"] })).granted)
    })
  )

  it.effect("check: denials become the typed errors the model sees", () =>
    Effect.gen(function* () {
      const v = yield* verifiedWith([Caveat.tools(["run"]), Caveat.oneOf("argv.0", ["ls"]), Caveat.uses(3), Caveat.expires(100)])
      const denied = yield* Effect.flip(Capability.check(v, { tool: "run", input: { argv: ["rm"] }, uses: 0 }))
      assert.strictEqual(denied._tag, "CapabilityDenied")
      assert.include(denied.message, "no authority for run")
      assert.include(denied.message, "argv.0")
      assert.include(denied.message, '"rm"')
      assert.strictEqual((yield* Effect.flip(Capability.check(v, { tool: "delete_db", input: {}, uses: 0 }))).message.includes("delete_db"), true)
      const exhausted = yield* Effect.flip(Capability.check(v, { tool: "run", input: { argv: ["ls"] }, uses: 3 }))
      assert.strictEqual(exhausted._tag, "CapabilityExhausted")
      assert.strictEqual(yield* Capability.check(v, { tool: "run", input: { argv: ["ls"] }, uses: 2 }), undefined)
      yield* TestClock.setTime(100)
      assert.strictEqual((yield* Effect.flip(Capability.check(v, { tool: "run", input: { argv: ["ls"] }, uses: 0 })))._tag, "CapabilityExpired")
    })
  )
})

describe("describe", () => {
  it.effect("lists blocks and the effective grant, never the proof", () =>
    Effect.gen(function* () {
      const { root, verify } = yield* setup()
      const token = yield* Capability.attenuate(yield* Capability.issue(root, [Caveat.tools(["read", "run"]), Caveat.expires(Date.UTC(2030, 0, 1))]), [
        Caveat.tools(["read"]),
        Caveat.needsApproval(["ops"], { tools: ["read"] })
      ])
      const proof = (bodyOf(token).proof as { secret: string }).secret
      const text = Capability.describe(token)
      assert.include(text, "signatures NOT checked")
      assert.include(text, "block 1: tools {read}; approval by one of {ops} (for read)")
      assert.include(text, "effective: tools {read}; until 2030-01-01T00:00:00.000Z; 1 approval rule")
      assert.notInclude(text, proof)
      const verified = Capability.describe(yield* verify(token))
      assert.include(verified, "attenuable")
      assert.notInclude(verified, proof)
      assert.include(Capability.describe("nonsense"), "malformed")
    })
  )
})
