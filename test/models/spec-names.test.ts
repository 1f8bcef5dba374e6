// The names shared by a TLA+ spec and its executable model must agree: the spec's VARIABLES, the
// action operators that Next is the disjunction of, and its ...Inv operators equal the lists the
// model exports (`variables`, `actionNames`, `invariantNames`). Each spec/MCX.tla must extend X,
// have an MCX.cfg that checks every invariant, and bind the constants the model exports as `MC`.
//
// To add a spec: write spec/X.tla (+ MCX.tla/.cfg) and models/x.ts, then add one line to `models`.
// Every spec/*.tla that is neither MC* nor Trace* must have a line there, so a new spec cannot be
// forgotten.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import Parser from "web-tree-sitter"

/** What a model module must export for these checks. */
interface SpecModel {
  readonly variables: readonly string[]
  readonly actionNames: readonly string[]
  readonly invariantNames: readonly string[]
  /** invariant name -> predicate */
  readonly invariants: object
  /** the MC constants, keyed by the TLA+ constant name with a lower-case first letter */
  readonly MC: object
}

/** Spec module name -> its model. One line per spec. */
const models: Readonly<Record<string, () => Promise<SpecModel>>> = {
  Session: () => import("../../models/session.ts"),
  ToolCall: () => import("../../models/toolCall.ts"),
  Agent: () => import("../../models/agent.ts"),
  Authority: () => import("../../models/authority.ts")
}

const specDir = fileURLToPath(new URL("../../spec/", import.meta.url))
const specFiles = readdirSync(specDir)
  .filter((f) => f.endsWith(".tla"))
  .sort()
const moduleOf = (file: string): string => file.replace(/\.tla$/, "")
const isMC = (module: string): boolean => /^MC[A-Z]/.test(module)
const isTrace = (module: string): boolean => /^Trace[A-Z]/.test(module)
const specModules = specFiles.map(moduleOf).filter((m) => !isMC(m) && !isTrace(m))
const mcModules = specFiles.map(moduleOf).filter(isMC)

type Node = Parser.SyntaxNode

let parser: Parser

beforeAll(async () => {
  await Parser.init()
  const require = createRequire(import.meta.url)
  const wasm = require.resolve("@tlaplus/tree-sitter-tlaplus/tree-sitter-tlaplus.wasm")
  parser = new Parser()
  parser.setLanguage(await Parser.Language.load(wasm))
})

function parse(module: string): Node {
  const tree = parser.parse(readFileSync(`${specDir}${module}.tla`, "utf8"))
  const root = tree.rootNode
  if (root.hasError) {
    const bad = root.descendantsOfType("ERROR")[0] ?? root
    throw new Error(`${module}.tla does not parse near line ${bad.startPosition.row + 1}: ${bad.text}`)
  }
  const mod = root.namedChildren.find((n) => n.type === "module")
  if (!mod) throw new Error(`${module}.tla has no MODULE`)
  return mod
}

// Node types below are the ones @tlaplus/tree-sitter-tlaplus 1.5 produces (checked by printing a
// tree): module > variable_declaration > identifier; module > operator_definition with fields
// name/definition; Next's definition is a disj_list of disj_item (or \/ as bound_infix_op with
// symbol lor); a disjunct is a bounded_quantification (field expression) around a bound_op (field
// name) or a bare identifier_ref.

/** Top-level units of a module, looking through LOCAL. */
function units(mod: Node): Node[] {
  return mod.namedChildren.flatMap((n) => (n.type === "local_definition" ? n.namedChildren : [n]))
}

function definitions(mod: Node): Map<string, Node> {
  const defs = new Map<string, Node>()
  for (const n of units(mod)) {
    if (n.type !== "operator_definition" && n.type !== "function_definition") continue
    const name = n.childForFieldName("name")
    if (name) defs.set(name.text, n)
  }
  return defs
}

function declaredVariables(mod: Node): string[] {
  return units(mod)
    .filter((n) => n.type === "variable_declaration")
    .flatMap((n) => n.namedChildren.filter((c) => c.type === "identifier").map((c) => c.text))
}

function definitionBody(def: Node): Node {
  const body = def.childForFieldName("definition")
  if (!body) throw new Error(`definition without body: ${def.text}`)
  return body
}

/** Removes parentheses around an expression. */
function unparen(n: Node): Node {
  let e = n
  while (e.type === "parentheses" && e.namedChildren[0]) e = e.namedChildren[0]
  return e
}

/** The disjuncts of an expression: a \/ bullet list, or infix \/ chains. */
function disjuncts(n: Node): Node[] {
  const e = unparen(n)
  if (e.type === "disj_list") {
    return e.namedChildren.filter((item) => item.type === "disj_item").flatMap((item) => disjuncts(item.namedChildren[item.namedChildren.length - 1] as Node))
  }
  if (e.type === "bound_infix_op" && e.childForFieldName("symbol")?.type === "lor") {
    return [e.childForFieldName("lhs"), e.childForFieldName("rhs")].flatMap((s) => (s ? disjuncts(s) : []))
  }
  return [e]
}

/** The action a disjunct of Next applies, looking through \E bindings. */
function actionOf(disjunct: Node): string {
  let e = unparen(disjunct)
  while (e.type === "bounded_quantification" || e.type === "unbounded_quantification") {
    const body = e.childForFieldName("expression")
    if (!body) break
    e = unparen(body)
  }
  if (e.type === "identifier_ref") return e.text
  if (e.type === "bound_op") {
    const name = e.childForFieldName("name")
    if (name) return name.text
  }
  throw new Error(`a disjunct of Next is not an action application: ${disjunct.text}`)
}

function actionsOfNext(mod: Node): string[] {
  const next = definitions(mod).get("Next")
  if (!next) throw new Error("no Next")
  return disjuncts(definitionBody(next)).map(actionOf)
}

function invariantsOf(mod: Node): string[] {
  return [...definitions(mod).keys()].filter((name) => /Inv$/.test(name))
}

function extendsOf(mod: Node): string[] {
  const ext = mod.namedChildren.find((n) => n.type === "extends")
  return ext ? ext.namedChildren.map((n) => n.text) : []
}

/** Compares name lists as sets, and rejects duplicates on either side. */
function expectSameNames(fromSpec: readonly string[], fromModel: readonly string[], what: string): void {
  expect(new Set(fromSpec).size, `${what}: duplicate in the spec`).toBe(fromSpec.length)
  expect(new Set(fromModel).size, `${what}: duplicate in the model`).toBe(fromModel.length)
  expect([...fromSpec].sort(), what).toEqual([...fromModel].sort())
}

// --------------------------------------------------------------------------------------------
// TLC configuration files (not TLA+: a small keyword format)
// --------------------------------------------------------------------------------------------

/** .cfg section keywords; plural forms are read as their singular. */
const cfgKeywords: Readonly<Record<string, string>> = {
  CONSTANTS: "CONSTANT",
  CONSTANT: "CONSTANT",
  INIT: "INIT",
  NEXT: "NEXT",
  SPECIFICATION: "SPECIFICATION",
  INVARIANTS: "INVARIANT",
  INVARIANT: "INVARIANT",
  PROPERTIES: "PROPERTY",
  PROPERTY: "PROPERTY",
  SYMMETRY: "SYMMETRY",
  VIEW: "VIEW",
  CONSTRAINTS: "CONSTRAINT",
  CONSTRAINT: "CONSTRAINT",
  ACTION_CONSTRAINTS: "ACTION_CONSTRAINT",
  ACTION_CONSTRAINT: "ACTION_CONSTRAINT",
  CHECK_DEADLOCK: "CHECK_DEADLOCK",
  POSTCONDITION: "POSTCONDITION",
  ALIAS: "ALIAS"
}

/** Section keyword (singular form) -> its text. */
function parseCfg(text: string): Map<string, string> {
  const sections = new Map<string, string>()
  const clean = text.replace(/\(\*[\s\S]*?\*\)/g, " ").replace(/\\\*.*$/gm, " ")
  const keyword = new RegExp(`\\b(${Object.keys(cfgKeywords).join("|")})\\b`, "g")
  const marks = [...clean.matchAll(keyword)]
  marks.forEach((m, i) => {
    const key = cfgKeywords[m[1] as string] as string
    const start = (m.index ?? 0) + (m[1] as string).length
    const end = marks[i + 1]?.index ?? clean.length
    sections.set(key, `${sections.get(key) ?? ""} ${clean.slice(start, end)}`)
  })
  return sections
}

type Literal = number | string | boolean | Literal[]

/** Evaluates the literal constant expressions MC modules use (numbers, strings, sets). */
function evalLiteral(n: Node, modelValues: ReadonlySet<string>): Literal {
  const e = unparen(n)
  switch (e.type) {
    case "nat_number":
      return Number(e.text)
    case "string":
      return JSON.parse(e.text) as string
    case "boolean":
      return e.text === "TRUE"
    case "identifier_ref":
      if (modelValues.has(e.text)) return e.text
      break
    case "finite_set_literal":
      return e.namedChildren.map((c) => evalLiteral(c, modelValues))
  }
  throw new Error(`not a literal constant: ${e.text}`)
}

/** Sets compare as sorted arrays. */
function normalise(v: unknown): unknown {
  return Array.isArray(v)
    ? v
        .map(normalise)
        .map((x) => JSON.stringify(x))
        .sort()
    : v
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1)

// --------------------------------------------------------------------------------------------

describe("spec/ layout", () => {
  it("has a model for every spec, and a spec for every model", () => {
    expect(specModules.length).toBeGreaterThan(0)
    expect(specModules).toEqual(Object.keys(models).sort())
  })

  it("has a .cfg for every MC module, and an MC module for every spec", () => {
    for (const mc of mcModules) expect(existsSync(`${specDir}${mc}.cfg`), `${mc}.cfg`).toBe(true)
    for (const spec of specModules) expect(mcModules, `MC${spec}.tla`).toContain(`MC${spec}`)
  })
})

describe.each(specModules)("spec/%s.tla against its model", (module) => {
  let mod: Node
  let model: SpecModel

  beforeAll(async () => {
    mod = parse(module)
    const load = models[module]
    if (!load) throw new Error(`no model for ${module}`)
    model = await load()
  })

  it("is the module its file is named after", () => {
    expect(mod.childForFieldName("name")?.text).toBe(module)
  })

  it("declares the model's variables", () => {
    expectSameNames(declaredVariables(mod), model.variables, "VARIABLES")
  })

  it("lists every variable in vars (so UNCHANGED vars and fairness cover all of them)", () => {
    const vars = definitions(mod).get("vars")
    if (!vars) throw new Error(`${module}.tla defines no vars == <<...>>`)
    const tuple = unparen(definitionBody(vars))
    expect(tuple.type).toBe("tuple_literal")
    const names = tuple.namedChildren.filter((n) => n.type === "identifier_ref").map((n) => n.text)
    expectSameNames(names, declaredVariables(mod), "vars")
  })

  it("has the model's actions as the disjuncts of Next, each a defined operator", () => {
    const actions = actionsOfNext(mod)
    expectSameNames(actions, model.actionNames, "actions of Next")
    const defs = definitions(mod)
    for (const a of actions) expect(defs.has(a), `${a} is defined`).toBe(true)
  })

  it("defines the model's invariants (...Inv), and the model implements each", () => {
    expectSameNames(invariantsOf(mod), model.invariantNames, "...Inv operators")
    expectSameNames(Object.keys(model.invariants), model.invariantNames, "model.invariants")
  })
})

describe.each(mcModules)("spec/%s.tla and its .cfg", (mc) => {
  const base = mc.replace(/^MC/, "")
  let mod: Node
  let cfg: Map<string, string>
  let model: SpecModel

  beforeAll(async () => {
    mod = parse(mc)
    cfg = parseCfg(readFileSync(`${specDir}${mc}.cfg`, "utf8"))
    const load = models[base]
    if (!load) throw new Error(`${mc}: no model for ${base}`)
    model = await load()
  })

  it("extends its spec", () => {
    expect(extendsOf(mod)).toContain(base)
  })

  it("names a behaviour spec (SPECIFICATION, or INIT and NEXT)", () => {
    const words = (k: string): string[] => (cfg.get(k) ?? "").trim().split(/\s+/).filter(Boolean)
    const spec = words("SPECIFICATION")
    const defs = definitions(parse(base))
    if (spec.length > 0) {
      expect(spec).toHaveLength(1)
      expect(defs.has(spec[0] as string), `${spec[0]} is defined in ${base}`).toBe(true)
    } else {
      expect(words("INIT")).toEqual(["Init"])
      expect(words("NEXT")).toEqual(["Next"])
    }
  })

  it("checks every invariant of the spec", () => {
    const listed = (cfg.get("INVARIANT") ?? "").trim().split(/\s+/).filter(Boolean)
    expectSameNames(listed, model.invariantNames, `${mc}.cfg INVARIANTS`)
  })

  it("binds the same constants as the model's MC", () => {
    const text = cfg.get("CONSTANT") ?? ""
    const bindings = [...text.matchAll(/(\w+)\s*(<-|=)\s*(\{[^}]*\}|"[^"]*"|[\w]+)/g)].map((m) => ({
      name: m[1] as string,
      op: m[2] as string,
      rhs: m[3] as string
    }))
    // `w1 = w1` declares a model value; every other binding sets a constant of the spec.
    const modelValues = new Set(bindings.filter((b) => b.op === "=" && b.name === b.rhs).map((b) => b.name))
    const defs = definitions(mod)
    const bound: Record<string, unknown> = {}
    for (const { name, op, rhs } of bindings) {
      if (modelValues.has(name)) continue
      if (op === "<-") {
        const def = defs.get(rhs)
        if (!def) throw new Error(`${name} <- ${rhs}: ${rhs} is not defined in ${mc}.tla`)
        bound[lowerFirst(name)] = evalLiteral(definitionBody(def), modelValues)
      } else {
        // A literal in the .cfg itself: a number, a string, a model value or a set of them.
        const items = rhs.startsWith("{")
          ? rhs
              .slice(1, -1)
              .split(",")
              .map((s) => s.trim())
          : [rhs]
        const values = items.filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/^"|"$/g, "")))
        bound[lowerFirst(name)] = rhs.startsWith("{") ? values : values[0]
      }
    }
    expect(Object.keys(bound).sort()).toEqual(Object.keys(model.MC).sort())
    for (const [k, v] of Object.entries(model.MC)) expect(normalise(bound[k]), k).toEqual(normalise(v))
  })
})
