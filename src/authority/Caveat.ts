/**
 * Caveats: the conditions a capability puts on the calls it authorizes —
 * plain data, never code, so a token can carry them, a verifier can check
 * them and a person can read them.
 *
 * When to use: build caveats with the constructors below (`tools`,
 * `pathUnder`, `oneOf`, `range`, `predicate`, `expires`, `uses`,
 * `needsApproval`) and hand them to `Capability.issue` / `attenuate`. A call
 * is authorized when EVERY caveat of EVERY block of the token holds (a
 * conjunction), so a derived block can only narrow what its parents grant.
 *
 * Details:
 * - Argument caveats address the tool's DECODED input by a field path
 *   (`"path"`, `"argv.0"`, `"options.depth"`: own properties and array
 *   indexes only, so `__proto__` or `constructor` address nothing). A missing
 *   field, or a value of the wrong type, fails the caveat: fail closed.
 * - `tools` on an argument or approval caveat scopes it to those tools
 *   (absent: every tool). A scoped caveat never restricts other tools.
 * - `pathUnder` is a LEXICAL check (normalise `.`/`..`/`//`, then compare
 *   prefixes by whole segments); the runtime's scoped filesystem does the real
 *   containment (realpath, symlinks, hard links). A `..` that climbs above the
 *   start of the path, a NUL byte or a backslash is refused outright.
 * - `predicate` is a small expression language (and/or/not, eq/lt/le/gt/ge,
 *   prefix, in) over argument fields and literals, bounded in depth and size
 *   (`AuthorityLimits`). It uses three-valued logic: a comparison with a
 *   missing field or mismatched types is "unknown", `not unknown` is still
 *   unknown, and only a definite `true` authorizes — so negation cannot turn
 *   an absent field into a grant.
 * - `expires` compares with a `now` that comes from Effect's Clock;
 *   `uses` compares with counts the caller keeps in the journal, PER BLOCK
 *   (a sub-agent's own budget is not eaten by its parent's calls, while the
 *   parent's budget counts the sub-agent's calls too).
 * - `wideningReason` tells a derived caveat that tries to grant more than an
 *   earlier block (a tool not granted, a later expiry, more uses, an approver
 *   the parent would not accept, a looser bound on the same field): the
 *   conjunction would ignore it anyway, but the operator gets a clear error.
 *
 * Gotchas: sets (tool names, approvers, oneOf values) are normalised (sorted,
 * deduplicated) when a token is made; a token carrying them in any other form
 * is malformed. Field names are limited to `[A-Za-z0-9_-]` segments.
 *
 * @example
 *   const caveats = [
 *     Caveat.tools(["read_file", "run_command"]),
 *     Caveat.pathUnder("path", "workspace", { tools: ["read_file"] }),
 *     Caveat.oneOf("argv.0", ["git", "ls"], { tools: ["run_command"] }),
 *     Caveat.needsApproval(["operator"], { tools: ["run_command"] }),
 *     Caveat.expires(Date.UTC(2030, 0, 1))
 *   ]
 */
import { Schema } from "effect"
import { assert } from "../internal/assert.ts"

/**
 * Bounds of the authority module (qualifier last). To move into
 * `src/Limits.ts`; kept here while that file is being edited elsewhere.
 */
export const AuthorityLimits = {
  /** Characters of an encoded token; a longer string is refused before it is decoded. */
  tokenLengthMax: 16 * 1024,
  /** Blocks in one token: the issuer's and the attenuations after it. */
  blocksPerTokenMax: 16,
  /** Caveats in one block. */
  caveatsPerBlockMax: 32,
  /** Items of one set or list in a caveat (tool names, approvers, oneOf and `in` values). */
  caveatListItemsMax: 256,
  /** Characters of one string in a caveat (a literal, a root path, a principal). */
  caveatStringLengthMax: 1024,
  /** Segments of an argument field path (`a.b.0` has 3). */
  fieldPathSegmentsMax: 16,
  /** Nesting of a predicate expression (a comparison alone has depth 1). */
  predicateDepthMax: 8,
  /** Expression nodes in one predicate. */
  predicateNodesMax: 64,
  /** Verified tokens kept in the verification cache (LRU). */
  verifiedCacheEntriesMax: 1024
} as const

// ---------------------------------------------------------------- the data

/** A JSON scalar: what literals and compared argument values are. */
export type Scalar = string | number | boolean | null

/** An operand of a comparison: an argument field (by path) or a literal. */
export type Term = { readonly arg: string } | { readonly lit: Scalar }

/** A predicate over the call's arguments, as data. */
export type Expr =
  | { readonly op: "and" | "or"; readonly args: ReadonlyArray<Expr> }
  | { readonly op: "not"; readonly expr: Expr }
  | { readonly op: "eq" | "lt" | "le" | "gt" | "ge" | "prefix"; readonly left: Term; readonly right: Term }
  | { readonly op: "in"; readonly left: Term; readonly values: ReadonlyArray<Scalar> }

/** Only these tools. */
export interface ToolsCaveat {
  readonly kind: "tools"
  readonly names: ReadonlyArray<string>
}
/** The string argument at `field` is a path under `root` (lexically). */
export interface PathUnderCaveat {
  readonly kind: "pathUnder"
  readonly field: string
  readonly root: string
  readonly tools?: ReadonlyArray<string>
}
/** The argument at `field` is one of `values` (e.g. a command in an allow-list). */
export interface OneOfCaveat {
  readonly kind: "oneOf"
  readonly field: string
  readonly values: ReadonlyArray<Scalar>
  readonly tools?: ReadonlyArray<string>
}
/** The numeric argument at `field` is within [min, max] (either bound may be absent, not both). */
export interface RangeCaveat {
  readonly kind: "range"
  readonly field: string
  readonly min?: number
  readonly max?: number
  readonly tools?: ReadonlyArray<string>
}
/** The expression is definitely true of the arguments. */
export interface PredicateCaveat {
  readonly kind: "predicate"
  readonly expr: Expr
  readonly tools?: ReadonlyArray<string>
}
/** Calls only before `at` (milliseconds since the epoch). */
export interface ExpiresCaveat {
  readonly kind: "expires"
  readonly at: number
}
/** At most `max` calls authorized through this block (counted per block id by the caller). */
export interface UsesCaveat {
  readonly kind: "uses"
  readonly max: number
}
/** The call waits for an approval by one of `approvers`. */
export interface NeedsApprovalCaveat {
  readonly kind: "needsApproval"
  readonly approvers: ReadonlyArray<string>
  readonly tools?: ReadonlyArray<string>
}

export type Caveat = ToolsCaveat | PathUnderCaveat | OneOfCaveat | RangeCaveat | PredicateCaveat | ExpiresCaveat | UsesCaveat | NeedsApprovalCaveat

// ---------------------------------------------------------------- constructors

interface Scoped {
  /** Apply only to calls of these tools (absent: to every tool). */
  readonly tools?: ReadonlyArray<string>
}
const scoped = (options: Scoped | undefined) => (options?.tools === undefined ? {} : { tools: options.tools })

export const tools = (names: ReadonlyArray<string>): ToolsCaveat => ({ kind: "tools", names })
export const pathUnder = (field: string, root: string, options?: Scoped): PathUnderCaveat => ({ kind: "pathUnder", field, root, ...scoped(options) })
export const oneOf = (field: string, values: ReadonlyArray<Scalar>, options?: Scoped): OneOfCaveat => ({ kind: "oneOf", field, values, ...scoped(options) })
export const range = (field: string, bounds: { readonly min?: number; readonly max?: number }, options?: Scoped): RangeCaveat => ({
  kind: "range",
  field,
  ...(bounds.min === undefined ? {} : { min: bounds.min }),
  ...(bounds.max === undefined ? {} : { max: bounds.max }),
  ...scoped(options)
})
export const predicate = (expr: Expr, options?: Scoped): PredicateCaveat => ({ kind: "predicate", expr, ...scoped(options) })
export const expires = (at: number): ExpiresCaveat => ({ kind: "expires", at })
export const uses = (max: number): UsesCaveat => ({ kind: "uses", max })
export const needsApproval = (approvers: ReadonlyArray<string>, options?: Scoped): NeedsApprovalCaveat => ({
  kind: "needsApproval",
  approvers,
  ...scoped(options)
})

// ---------------------------------------------------------------- schemas (decoding a token)

const limits = AuthorityLimits
const fieldPattern = new RegExp(`^[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64}){0,${limits.fieldPathSegmentsMax - 1}}$`)
const toolNamePattern = /^[A-Za-z0-9_-]{1,64}$/

const Text = Schema.String.pipe(Schema.check(Schema.isMaxLength(limits.caveatStringLengthMax)))
const Principal = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(128)))
const ToolName = Schema.String.pipe(Schema.check(Schema.isPattern(toolNamePattern)))
const Field = Schema.String.pipe(Schema.check(Schema.isPattern(fieldPattern)))
const ScalarSchema = Schema.Union([Text, Schema.Finite, Schema.Boolean, Schema.Null])
const listOf = <S extends Schema.Top>(item: S) => Schema.Array(item).pipe(Schema.check(Schema.isMaxLength(limits.caveatListItemsMax)))
const Scope = Schema.optionalKey(listOf(ToolName).pipe(Schema.check(Schema.isMinLength(1))))
const Count = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })))
/** The last instant a JavaScript Date can hold (±100,000,000 days): every expiry is a real date. */
export const timeMsMax = 8_640_000_000_000_000
const Instant = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: timeMsMax })))

const TermSchema = Schema.Union([Schema.Struct({ arg: Field }), Schema.Struct({ lit: ScalarSchema })])
const ExprSchema: Schema.Codec<Expr> = Schema.Union([
  Schema.Struct({ op: Schema.Literals(["and", "or"]), args: listOf(Schema.suspend((): Schema.Codec<Expr> => ExprSchema)) }),
  Schema.Struct({ op: Schema.Literal("not"), expr: Schema.suspend((): Schema.Codec<Expr> => ExprSchema) }),
  Schema.Struct({ op: Schema.Literals(["eq", "lt", "le", "gt", "ge", "prefix"]), left: TermSchema, right: TermSchema }),
  Schema.Struct({ op: Schema.Literal("in"), left: TermSchema, values: listOf(ScalarSchema) })
])

/** A caveat as it appears in a token; `normalizeDecoded` adds the checks a Schema does not express. */
export const CaveatSchema: Schema.Codec<Caveat> = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("tools"), names: listOf(ToolName) }),
  Schema.Struct({ kind: Schema.Literal("pathUnder"), field: Field, root: Text, tools: Scope }),
  Schema.Struct({ kind: Schema.Literal("oneOf"), field: Field, values: listOf(ScalarSchema), tools: Scope }),
  Schema.Struct({
    kind: Schema.Literal("range"),
    field: Field,
    min: Schema.optionalKey(Schema.Finite),
    max: Schema.optionalKey(Schema.Finite),
    tools: Scope
  }),
  Schema.Struct({ kind: Schema.Literal("predicate"), expr: ExprSchema, tools: Scope }),
  Schema.Struct({ kind: Schema.Literal("expires"), at: Instant }),
  Schema.Struct({ kind: Schema.Literal("uses"), max: Count }),
  Schema.Struct({ kind: Schema.Literal("needsApproval"), approvers: listOf(Principal).pipe(Schema.check(Schema.isMinLength(1))), tools: Scope })
])

/** Deepest JSON nesting a valid token can have (token → blocks → block → caveats → caveat → predicate). */
export const tokenJsonDepthMax = 6 + 2 * limits.predicateDepthMax + 4

// ---------------------------------------------------------------- normal form and validation

const scalarKey = (v: Scalar): string => JSON.stringify(v)

/** Sorted, without duplicates: the one form a set has in a token. */
function normalSet<T extends Scalar>(items: ReadonlyArray<T>): ReadonlyArray<T> {
  const byKey = new Map<string, T>()
  for (const item of items) byKey.set(scalarKey(item), item)
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as T)
}

function normalExpr(e: Expr): Expr {
  switch (e.op) {
    case "and":
    case "or":
      return { op: e.op, args: e.args.map(normalExpr) }
    case "not":
      return { op: "not", expr: normalExpr(e.expr) }
    case "in":
      return { op: "in", left: e.left, values: normalSet(e.values) }
    default:
      return e
  }
}

/**
 * The normal form of a caveat: sets sorted and deduplicated, the root path
 * normalised. Returns a reason string for a caveat that can never be valid.
 * For caveats from code; a token's caveats went through `CaveatSchema` already
 * and take `normalizeDecoded`.
 */
export function normalize(c: Caveat): Caveat | string {
  const shape = Schema.decodeUnknownResult(CaveatSchema)(c, { onExcessProperty: "error" })
  if (shape._tag === "Failure") return `caveat ${JSON.stringify(c)?.slice(0, 200)} does not fit its schema: ${shape.failure.message}`
  return normalizeDecoded(c)
}

/** `normalize` for a caveat that fits `CaveatSchema` (decoded from a token): the checks a Schema does not express, then the normal form. */
export function normalizeDecoded(c: Caveat): Caveat | string {
  const why = meaningProblem(c)
  if (why !== undefined) return why
  const scopeList = scopeOf(c)
  const scope = scopeList === undefined ? {} : { tools: normalSet(scopeList) }
  let out: Caveat
  switch (c.kind) {
    case "tools":
      out = { kind: "tools", names: normalSet(c.names) }
      break
    case "pathUnder":
      out = { kind: "pathUnder", field: c.field, root: normalizePath(c.root) as string, ...scope }
      break
    case "oneOf":
      out = { kind: "oneOf", field: c.field, values: normalSet(c.values), ...scope }
      break
    case "range":
      out = { kind: "range", field: c.field, ...(c.min === undefined ? {} : { min: c.min }), ...(c.max === undefined ? {} : { max: c.max }), ...scope }
      break
    case "predicate":
      out = { kind: "predicate", expr: normalExpr(c.expr), ...scope }
      break
    case "needsApproval":
      out = { kind: "needsApproval", approvers: normalSet(c.approvers), ...scope }
      break
    default:
      out = { ...c }
  }
  assert(out.kind === c.kind, "CaveatNormalForm", "normalizing keeps the kind")
  assert(meaningProblem(out) === undefined, "CaveatNormalForm", "a normalized caveat is valid")
  return out
}

/** Why a caveat that fits its Schema still means nothing usable (a reversed range, a root above its start, a predicate too big), or undefined. */
function meaningProblem(c: Caveat): string | undefined {
  switch (c.kind) {
    case "pathUnder":
      return normalizePath(c.root) === undefined
        ? `root ${JSON.stringify(c.root)} is not a usable path (empty, NUL, backslash, or .. above its start)`
        : undefined
    case "range":
      if (c.min === undefined && c.max === undefined) return `range on ${c.field} needs min or max`
      return c.min !== undefined && c.max !== undefined && c.min > c.max ? `range on ${c.field} has min ${c.min} > max ${c.max}` : undefined
    case "predicate": {
      const size = exprSize(c.expr)
      if (size.depth > limits.predicateDepthMax) return `predicate depth ${size.depth} exceeds ${limits.predicateDepthMax}`
      return size.nodes > limits.predicateNodesMax ? `predicate has ${size.nodes} nodes, more than ${limits.predicateNodesMax}` : undefined
    }
    default:
      return undefined
  }
}

/** Depth and node count of an expression; stops counting past the limits (the input may be hostile). */
function exprSize(e: Expr): { depth: number; nodes: number } {
  let nodes = 0
  let depthMax = 0
  const stack: Array<[Expr, number]> = [[e, 1]]
  while (stack.length > 0 && nodes <= limits.predicateNodesMax && depthMax <= limits.predicateDepthMax) {
    const [x, depth] = stack.pop() as [Expr, number]
    nodes++
    depthMax = Math.max(depthMax, depth)
    if (x.op === "and" || x.op === "or") for (const a of x.args) stack.push([a, depth + 1])
    else if (x.op === "not") stack.push([x.expr, depth + 1])
  }
  return { depth: depthMax, nodes }
}

// ---------------------------------------------------------------- paths and fields

/**
 * Lexical POSIX normalisation: drops `.` and empty segments, resolves `..`
 * against the segments before it. Undefined for what we refuse to reason
 * about: empty, NUL, backslash, or a `..` above the path's start (`/..` too).
 */
export function normalizePath(p: string): string | undefined {
  if (p.length === 0 || p.length > limits.caveatStringLengthMax || p.includes("\0") || p.includes("\\")) return undefined
  const absolute = p.startsWith("/")
  const out: Array<string> = []
  for (const segment of p.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") {
      if (out.length === 0) return undefined
      out.pop()
    } else out.push(segment)
  }
  if (absolute) return `/${out.join("/")}`
  return out.length === 0 ? "." : out.join("/")
}

/** Whether normalised `path` is `root` or inside it, by whole segments (`/ws2` is not under `/ws`). */
export function isUnder(path: string, root: string): boolean {
  const absolute = path.startsWith("/")
  if (root === ".") return !absolute
  if (root === "/") return absolute
  return path === root || path.startsWith(`${root}/`)
}

/** The value at a field path of the decoded input: own properties and array indexes only. */
export function lookup(input: unknown, field: string): { readonly found: true; readonly value: unknown } | { readonly found: false } {
  let at: unknown = input
  for (const segment of field.split(".")) {
    if (Array.isArray(at)) {
      if (!/^(0|[1-9][0-9]{0,8})$/.test(segment) || Number(segment) >= at.length) return { found: false }
      at = at[Number(segment)]
    } else if (at !== null && typeof at === "object" && Object.hasOwn(at, segment)) {
      at = (at as Record<string, unknown>)[segment]
    } else return { found: false }
  }
  return { found: true, value: at }
}

const isScalar = (v: unknown): v is Scalar => v === null || typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))

// ---------------------------------------------------------------- evaluation

/** Three-valued truth: undefined is "unknown" (a missing field, mismatched types). */
type Truth = boolean | undefined

function termValue(t: Term, input: unknown): Scalar | undefined {
  if ("lit" in t) return t.lit
  const found = lookup(input, t.arg)
  return found.found && isScalar(found.value) ? found.value : undefined
}

/** Evaluates a predicate with Kleene's three-valued logic; only `true` authorizes. */
export function evalExpr(e: Expr, input: unknown, depth = 1): Truth {
  assert(depth <= limits.predicateDepthMax, "PredicateBounded", `predicate deeper than ${limits.predicateDepthMax} reached evaluation`)
  switch (e.op) {
    case "and": {
      let result: Truth = true
      for (const a of e.args) {
        const v = evalExpr(a, input, depth + 1)
        if (v === false) return false
        if (v === undefined) result = undefined
      }
      return result
    }
    case "or": {
      let result: Truth = false
      for (const a of e.args) {
        const v = evalExpr(a, input, depth + 1)
        if (v === true) return true
        if (v === undefined) result = undefined
      }
      return result
    }
    case "not": {
      const v = evalExpr(e.expr, input, depth + 1)
      return v === undefined ? undefined : !v
    }
    case "in": {
      const left = termValue(e.left, input)
      return left === undefined ? undefined : e.values.some((v) => v === left)
    }
    default: {
      const left = termValue(e.left, input)
      const right = termValue(e.right, input)
      if (left === undefined || right === undefined) return undefined
      if (e.op === "eq") return left === right
      if (e.op === "prefix") return typeof left === "string" && typeof right === "string" ? left.startsWith(right) : undefined
      if (typeof left !== "number" || typeof right !== "number") return undefined
      return e.op === "lt" ? left < right : e.op === "le" ? left <= right : e.op === "gt" ? left > right : left >= right
    }
  }
}

/** One call, as caveats see it. */
export interface CallFacts {
  readonly tool: string
  /** The tool's decoded input. */
  readonly input: unknown
  /** Milliseconds since the epoch, from Effect's Clock. */
  readonly now: number
  /** Calls already authorized through the block that holds the caveat. */
  readonly used: number
}

/** The tools an argument or approval caveat is scoped to (undefined: every tool). */
export const scopeOf = (c: Caveat): ReadonlyArray<string> | undefined => (c.kind !== "tools" && "tools" in c ? c.tools : undefined)

/** Whether a caveat applies to calls of this tool (a `tools` caveat applies to every call: it is what it checks). */
export const appliesTo = (c: Caveat, tool: string): boolean => {
  const scope = scopeOf(c)
  return scope === undefined || scope.includes(tool)
}

/** What failed, for the error the model sees. */
export type Failure = { readonly kind: "denied" | "expired" | "exhausted"; readonly reason: string }

const show = (v: unknown): string => (isScalar(v) ? JSON.stringify(v) : v === undefined ? "missing" : `a ${Array.isArray(v) ? "list" : typeof v}`)

/**
 * Checks one caveat against one call. `needsApproval` always holds here (it
 * does not deny, it asks for an approval: see `Capability.authorize`).
 */
export function evaluate(c: Caveat, call: CallFacts): Failure | undefined {
  assert(call.used >= 0 && Number.isFinite(call.now), "AuthorityInv", "use counts and time are real numbers")
  assert(typeof call.tool === "string" && call.tool.length > 0, "AuthorityInv", "a call names its tool")
  if (!appliesTo(c, call.tool)) return undefined
  const arg = (field: string) => lookup(call.input, field)
  switch (c.kind) {
    case "tools":
      return c.names.includes(call.tool) ? undefined : { kind: "denied", reason: `tool ${call.tool} is not granted` }
    case "pathUnder": {
      const found = arg(c.field)
      if (!found.found || typeof found.value !== "string")
        return { kind: "denied", reason: `argument ${c.field} is ${show(found.found ? found.value : undefined)}, not a path` }
      const path = normalizePath(found.value)
      if (path === undefined) return { kind: "denied", reason: `argument ${c.field} ${JSON.stringify(found.value)} is not a usable path` }
      return isUnder(path, c.root) ? undefined : { kind: "denied", reason: `argument ${c.field} ${JSON.stringify(found.value)} is not under ${c.root}` }
    }
    case "oneOf": {
      const found = arg(c.field)
      const value = found.found ? found.value : undefined
      return isScalar(value) && c.values.some((v) => v === value)
        ? undefined
        : { kind: "denied", reason: `argument ${c.field} is ${show(value)}, not an allowed value` }
    }
    case "range": {
      const found = arg(c.field)
      const value = found.found ? found.value : undefined
      if (typeof value !== "number" || !Number.isFinite(value)) return { kind: "denied", reason: `argument ${c.field} is ${show(value)}, not a number` }
      const ok = (c.min === undefined || value >= c.min) && (c.max === undefined || value <= c.max)
      return ok ? undefined : { kind: "denied", reason: `argument ${c.field} is ${value}, out of range` }
    }
    case "predicate": {
      const v = evalExpr(c.expr, call.input)
      return v === true
        ? undefined
        : {
            kind: "denied",
            reason: v === false ? "the arguments fail the predicate" : "the predicate cannot be decided (a field is missing or of another type)"
          }
    }
    case "expires":
      return call.now < c.at ? undefined : { kind: "expired", reason: `expired at ${timeText(c.at)}` }
    case "uses":
      return call.used < c.max ? undefined : { kind: "exhausted", reason: `${call.used} of ${c.max} calls used` }
    case "needsApproval":
      return undefined
  }
}

// ---------------------------------------------------------------- widening

const subset = <T>(xs: ReadonlyArray<T>, ys: ReadonlyArray<T>): boolean => xs.every((x) => ys.includes(x))

/** Whether every tool the child caveat applies to is one the parent caveat applies to. */
const scopeWithin = (child: ReadonlyArray<string> | undefined, parent: ReadonlyArray<string> | undefined): boolean =>
  parent === undefined || (child !== undefined && subset(child, parent))

/**
 * Why `c`, in a derived block, tries to grant more than a caveat of an
 * earlier block — or undefined. Sound, not complete: it only names caveats
 * that are certainly looser than one they are compared with (predicates are
 * never compared); the conjunction keeps every case narrow regardless.
 */
export function wideningReason(earlier: ReadonlyArray<{ readonly block: number; readonly caveat: Caveat }>, c: Caveat): string | undefined {
  assert(earlier.length <= limits.blocksPerTokenMax * limits.caveatsPerBlockMax, "AttenuationInv", "earlier caveats are bounded")
  for (const { block, caveat: e } of earlier) {
    assert(block >= 0, "AttenuationInv", "earlier caveats come from earlier blocks")
    if (c.kind === "tools" && e.kind === "tools") {
      const extra = c.names.filter((n) => !e.names.includes(n))
      if (extra.length > 0) return `grants ${extra.join(", ")}, not granted by block ${block}`
    } else if (c.kind === "expires" && e.kind === "expires") {
      if (c.at > e.at) return `expires after block ${block}'s expiry ${timeText(e.at)}`
    } else if (c.kind === "uses" && e.kind === "uses") {
      if (c.max > e.max) return `allows ${c.max} uses, more than block ${block}'s ${e.max}`
    } else if (c.kind === "needsApproval" && e.kind === "needsApproval" && scopeWithin(c.tools, e.tools)) {
      const extra = c.approvers.filter((a) => !e.approvers.includes(a))
      if (extra.length > 0) return `lets ${extra.join(", ")} approve, whom block ${block} does not`
    } else if (c.kind === e.kind && "field" in c && "field" in e && c.field === e.field && scopeWithin(c.tools, e.tools)) {
      if (c.kind === "pathUnder" && e.kind === "pathUnder" && !isUnder(c.root, e.root)) return `root ${c.root} is not under block ${block}'s root ${e.root}`
      if (c.kind === "oneOf" && e.kind === "oneOf" && !subset(c.values, e.values)) return `allows values block ${block} does not`
      if (c.kind === "range" && e.kind === "range") {
        if (e.min !== undefined && (c.min === undefined || c.min < e.min)) return `lowers the minimum of block ${block} (${e.min})`
        if (e.max !== undefined && (c.max === undefined || c.max > e.max)) return `raises the maximum of block ${block} (${e.max})`
      }
    }
  }
  return undefined
}

// ---------------------------------------------------------------- for people

/** An instant for people; never throws (a hostile number is shown as a number). */
export function timeText(ms: number): string {
  return Number.isInteger(ms) && Math.abs(ms) <= timeMsMax ? new Date(ms).toISOString() : `${ms} ms since the epoch`
}

function showTerm(t: Term): string {
  return "arg" in t ? t.arg : JSON.stringify(t.lit)
}

const opText = { eq: "=", lt: "<", le: "≤", gt: ">", ge: "≥", prefix: "starts with" } as const

export function describeExpr(e: Expr): string {
  switch (e.op) {
    case "and":
    case "or":
      return e.args.length === 0 ? (e.op === "and" ? "true" : "false") : `(${e.args.map(describeExpr).join(` ${e.op} `)})`
    case "not":
      return `not ${describeExpr(e.expr)}`
    case "in":
      return `${showTerm(e.left)} in {${e.values.map((v) => JSON.stringify(v)).join(", ")}}`
    default:
      return `${showTerm(e.left)} ${opText[e.op]} ${showTerm(e.right)}`
  }
}

/** One line for a person (the example's /grants command, error messages). */
export function describe(c: Caveat): string {
  const scopeList = scopeOf(c)
  const scope = scopeList === undefined ? "" : ` (for ${scopeList.join(", ")})`
  switch (c.kind) {
    case "tools":
      return c.names.length === 0 ? "no tools" : `tools {${c.names.join(", ")}}`
    case "pathUnder":
      return `argument ${c.field} is a path under ${c.root}${scope}`
    case "oneOf":
      return `argument ${c.field} in {${c.values.map((v) => JSON.stringify(v)).join(", ")}}${scope}`
    case "range":
      return `argument ${c.field} in [${c.min ?? "-∞"}, ${c.max ?? "∞"}]${scope}`
    case "predicate":
      return `${describeExpr(c.expr)}${scope}`
    case "expires":
      return `expires ${timeText(c.at)}`
    case "uses":
      return `at most ${c.max} calls`
    case "needsApproval":
      return `approval by one of {${c.approvers.join(", ")}}${scope}`
  }
}
