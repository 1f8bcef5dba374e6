/**
 * The offline model of the example agent: a deterministic script that does a
 * small real task in the demo workspace (a tiny JS project with an
 * off-by-one bug), and the files it seeds that workspace with.
 *
 * When to use: `ScriptedModel.make(demoScript)` is the model of
 * `cli.ts --model scripted`, of `npm start` and of the example's tests;
 * `seedWorkspace(dir)` writes the project it is written for.
 *
 * Details: the script is a function of the request, not a recording. It
 * finds the user's last message and the tool results that came after it,
 * and decides the next step from them, so it works on any branch, after a
 * crash (a resumed run asks it again with the results recovery produced) and
 * with a different question. What it understands:
 * - "fix the failing test": list_dir, read_file ×2 (one turn, parallel),
 *   search, write_file (the fix, derived from what it read), run_command
 *   `node test.js`, then a summary of what the test printed;
 * - "explain <file>": read_file, then a summary of the file;
 * - "run the slow check": run_command `node slow-check.js` (about 4 s; the
 *   script logs to ledger.txt when it starts and ends). If the call's outcome
 *   is unknown (the agent was killed during it) it reads the ledger instead of
 *   running it again, and says what the ledger shows;
 * - "malformed": a tool call whose arguments are not JSON, then an answer
 *   about the error result;
 * - anything else: a short help text.
 *
 * Gotcha: run_command gets `process.execPath` as the program, the Node that
 * runs the CLI, so the demo never depends on which `node` is on PATH.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Schema } from "effect"
import type { Message } from "../../src/model/Model.ts"
import type { Script, ScriptedTurn } from "../../src/model/ScriptedModel.ts"

/** The demo project: a sum() that skips the first number, its test, and a slow check that keeps a ledger. */
export const demoFiles: Readonly<Record<string, string>> = {
  "package.json": `${JSON.stringify({ name: "tiny-math", private: true, type: "commonjs", scripts: { test: "node test.js" } }, null, 2)}\n`,
  "README.md": "# tiny-math\n\n`sum(numbers)` adds up a list of numbers. `node test.js` runs the tests; `node slow-check.js` is the slow integration check.\n",
  "math.js": [
    "// Adds up a list of numbers.",
    "function sum(numbers) {",
    "  let total = 0",
    "  for (let i = 1; i < numbers.length; i++) total += numbers[i]",
    "  return total",
    "}",
    "",
    "module.exports = { sum }",
    ""
  ].join("\n"),
  "test.js": [
    'const assert = require("node:assert")',
    'const { sum } = require("./math.js")',
    "",
    "assert.strictEqual(sum([]), 0)",
    "assert.strictEqual(sum([5]), 5)",
    "assert.strictEqual(sum([1, 2, 3]), 6)",
    'console.log("ok: 3 tests passed")',
    ""
  ].join("\n"),
  "slow-check.js": [
    "// The slow integration check: about 4 s. It writes to ledger.txt when it starts and when it",
    "// finishes, with the idempotency key of the tool call that ran it: the ground truth of what ran.",
    'const fs = require("node:fs")',
    'const key = process.env.KEEL_IDEMPOTENCY_KEY ?? "(no key)"',
    "const steps = 8",
    'fs.appendFileSync("ledger.txt", "started " + key + "\\n")',
    "// The runner died (the pipe is gone): stop, as a job whose runner is killed would.",
    'process.stdout.on("error", () => process.exit(1))',
    "let step = 0",
    "const timer = setInterval(() => {",
    "  step++",
    '  process.stdout.write("slow check: step " + step + "/" + steps + "\\n")',
    "  if (step < steps) return",
    "  clearInterval(timer)",
    '  fs.appendFileSync("ledger.txt", "finished " + key + "\\n")',
    '  console.log("slow check passed")',
    "}, 500)",
    ""
  ].join("\n")
}

/** Writes the demo project into `dir` (created if missing); existing files are left alone. */
export function seedWorkspace(dir: string): void {
  fs.mkdirSync(dir, { recursive: true })
  for (const [name, content] of Object.entries(demoFiles)) {
    const file = path.join(dir, name)
    if (!fs.existsSync(file)) fs.writeFileSync(file, content)
  }
}

/** A tool call of the current run and what came back. */
interface Done {
  readonly name: string
  readonly input: Schema.Json | undefined
  readonly isError: boolean
  readonly content: string
  /** The content parsed as JSON (tool outputs are JSON), or undefined. */
  readonly output: unknown
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The user's last message and the calls answered since: the state of the run the model is asked about. */
function currentRun(messages: ReadonlyArray<Message>): { readonly prompt: string; readonly done: ReadonlyArray<Done> } {
  let start = messages.length - 1
  while (start >= 0 && messages[start]?.role !== "user") start--
  const first = messages[start]
  const prompt = first?.role === "user" ? first.text : ""
  const inputs = new Map<string, Schema.Json>()
  const done: Array<Done> = []
  for (const message of messages.slice(start + 1)) {
    if (message.role === "assistant") for (const call of message.toolCalls) inputs.set(call.id, call.input)
    if (message.role === "tool") {
      for (const r of message.results)
        done.push({ name: r.name, input: inputs.get(r.callId), isError: r.isError, content: r.content, output: parse(r.content) })
    }
  }
  return { prompt, done }
}

const last = (done: ReadonlyArray<Done>, name: string, test: (d: Done) => boolean = () => true): Done | undefined =>
  done.findLast((d) => d.name === name && test(d))

const field = (value: unknown, key: string): unknown => (typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined)
const text = (value: unknown, key: string): string | undefined => {
  const v = field(value, key)
  return typeof v === "string" ? v : undefined
}
const inputPath = (d: Done): string | undefined => text(d.input, "path") ?? text(d.output, "path")
const firstLine = (s: string, max = 160) => (s.trim().split("\n")[0] ?? "").slice(0, max)

const node = process.execPath

// ------------------------------------------------------------------------------------------------

/** The script: the next turn for the run the request is about. */
export const demoScript: Script = (request) => {
  const { prompt, done } = currentRun(request.messages)
  const ask = prompt.toLowerCase()
  if (ask.includes("malformed")) return malformedCall(done)
  if (/\bslow\b|integration/.test(ask)) return slowCheck(done)
  if (/explain|what does|describe/.test(ask)) return explain(prompt, done)
  if (/\bfix\b|\bbug\b|failing|\btests?\b/.test(ask)) return fixTheBug(done)
  return help()
}

function fixTheBug(done: ReadonlyArray<Done>): ScriptedTurn {
  const listing = last(done, "list_dir")
  if (listing === undefined) return { text: "Let me look at the project first.", toolCalls: [{ name: "list_dir", input: { path: "." } }] }
  const names = ((field(listing.output, "entries") as Array<unknown> | undefined) ?? []).map((e) => text(e, "name") ?? "")
  const reads = done.filter((d) => d.name === "read_file")
  if (reads.length === 0) {
    if (!names.includes("math.js") || !names.includes("test.js")) {
      return {
        text:
          `This folder has no math.js and test.js (it holds: ${names.slice(0, 12).join(", ") || "nothing"}), so the offline model has nothing to fix here. ` +
          "Start the CLI with --workspace <a new folder> to get the demo project, or use a real model."
      }
    }
    return {
      text: "Reading the code and its test.",
      toolCalls: [
        { name: "read_file", input: { path: "math.js" } },
        { name: "read_file", input: { path: "test.js" } }
      ]
    }
  }
  const math = reads.find((d) => inputPath(d) === "math.js" && !d.isError)
  const source = text(math?.output, "content")
  if (source === undefined) return { text: `I could not read math.js: ${firstLine(reads[0]?.content ?? "")}` }
  const searched = last(done, "search")
  if (searched === undefined) {
    return {
      text: "test.js expects sum([1, 2, 3]) to be 6. Before changing sum(), let me see who calls it.",
      toolCalls: [{ name: "search", input: { pattern: "sum(" } }]
    }
  }
  const callers = ((field(searched.output, "matches") as Array<unknown> | undefined) ?? []).length
  const buggy = source.includes("let i = 1")
  const wrote = last(done, "write_file")
  if (buggy && wrote === undefined) {
    return {
      text: `sum() starts its loop at index 1, so it skips the first number (${callers} lines mention sum(), all expect the whole list). Starting the loop at 0.`,
      toolCalls: [{ name: "write_file", input: { path: "math.js", content: source.replace("let i = 1", "let i = 0") } }]
    }
  }
  const ran = last(done, "run_command")
  if (ran === undefined) return { text: "Running the tests.", toolCalls: [{ name: "run_command", input: { program: node, args: ["test.js"] } }] }
  const what = buggy ? "Fixed math.js: sum() skipped the first number because its loop started at index 1; it starts at 0 now." : "math.js was already correct."
  if (ran.isError) return { text: `${what} I could not run the tests: ${firstLine(ran.content)}` }
  const exitCode = field(ran.output, "exitCode")
  if (exitCode === 0) return { text: `${what} \`node test.js\` passes: ${firstLine(text(ran.output, "stdout") ?? "")}` }
  return { text: `${what} But \`node test.js\` still fails (exit ${String(exitCode)}): ${firstLine(text(ran.output, "stderr") ?? "")}` }
}

function explain(prompt: string, done: ReadonlyArray<Done>): ScriptedTurn {
  const file = /[\w./-]+\.(?:js|json|md|txt)\b/.exec(prompt)?.[0] ?? "math.js"
  const read = last(done, "read_file", (d) => inputPath(d) === file)
  if (read === undefined) return { text: `Reading ${file}.`, toolCalls: [{ name: "read_file", input: { path: file } }] }
  const content = text(read.output, "content")
  if (read.isError || content === undefined) return { text: `I could not read ${file}: ${firstLine(read.content)}` }
  const lines = content.split("\n")
  if (!file.endsWith(".js")) return { text: `${file} has ${lines.length} lines; it starts with: ${firstLine(content)}` }
  const functions = [...content.matchAll(/function\s+(\w+)\s*\(([^)]*)\)/g)].map((m) => `${m[1]}(${m[2]})`)
  const exported = /module\.exports\s*=\s*\{([^}]*)\}/.exec(content)?.[1]?.trim()
  const comment = lines
    .find((l) => l.trim().startsWith("//"))
    ?.replace(/^\s*\/\/\s*/, "")
    .replace(/\.$/, "")
  const loop = content.includes("let i = 1")
    ? " Careful: its loop starts at index 1, so the first number is skipped."
    : content.includes("let i = 0")
      ? " Its loop starts at index 0, so every number counts (this branch sees the file as the main branch left it: a branch forks the conversation, not the files)."
      : ""
  return {
    text:
      `${file}: ${comment ?? "no comment"}. It defines ${functions.join(", ") || "no functions"}` +
      `${exported !== undefined ? ` and exports { ${exported} }` : ""}, in ${lines.length} lines.${loop}`
  }
}

function slowCheck(done: ReadonlyArray<Done>): ScriptedTurn {
  const ran = last(done, "run_command")
  if (ran === undefined) {
    return { text: "Starting the slow integration check (about 4 s).", toolCalls: [{ name: "run_command", input: { program: node, args: ["slow-check.js"] } }] }
  }
  const ledger = last(done, "read_file", (d) => inputPath(d) === "ledger.txt")
  if (ran.isError && /unknown/i.test(ran.content) && ledger === undefined) {
    return {
      text: "The check's outcome is unknown: the agent stopped while it ran, and a command is never run twice blindly. Let me read the ledger the check keeps.",
      toolCalls: [{ name: "read_file", input: { path: "ledger.txt" } }]
    }
  }
  if (ledger !== undefined) {
    const lines = (text(ledger.output, "content") ?? "").split("\n")
    const started = lines.filter((l) => l.startsWith("started ")).length
    const finished = lines.filter((l) => l.startsWith("finished ")).length
    return {
      text:
        `The ledger shows the check started ${started} time${started === 1 ? "" : "s"} and finished ${finished} time${finished === 1 ? "" : "s"}: ` +
        `${started > finished ? "the run that was cut off did not complete, and it was not run again. Ask again to start it anew." : "it completed."}`
    }
  }
  if (ran.isError) return { text: `The slow check did not complete: ${firstLine(ran.content)}` }
  const exitCode = field(ran.output, "exitCode")
  return {
    text: exitCode === 0 ? "The slow check passed." : `The slow check failed (exit ${String(exitCode)}): ${firstLine(text(ran.output, "stderr") ?? "")}`
  }
}

function malformedCall(done: ReadonlyArray<Done>): ScriptedTurn {
  const answered = done[0]
  if (answered === undefined) return { text: "Reading math.js.", toolCalls: [{ name: "read_file", malformed: '{"path": "math.js"' }] }
  return {
    text: `My call's arguments were not valid JSON, so it was refused before anything ran, and the error is journaled with the call: ${firstLine(answered.content, 200)}`
  }
}

function help(): ScriptedTurn {
  return {
    text:
      "I am Keel's offline scripted model and know a few tasks in the demo workspace: " +
      '"fix the failing test", "explain math.js", "run the slow check", "make a malformed call". ' +
      "Set ANTHROPIC_API_KEY or OPENAI_API_KEY to talk to a real model."
  }
}
