/**
 * The offline tour of the branching-session agent (`npm start`): the real
 * CLI (cli.ts) run as child processes with scripted input, on the scripted
 * model, in a temp workspace holding a tiny JS project with a failing test.
 * No key, no network, no interaction; about 10 seconds.
 *
 *   1. An agent fixes the failing test (every model turn and tool call is
 *      journaled before it happens); the question is labelled, a branch is
 *      forked at it and a different question asked there; /tree.
 *   2. A second process on the same session starts a slow command and is
 *      killed with SIGKILL in the middle of it.
 *   3. A third process resumes the session: the killed run continues. The
 *      command was unsafe, so it is not run again: its outcome is journaled
 *      "unknown", the model is told, and the workspace's ledger shows it ran
 *      once. /tree, /status, /grants, /quit.
 *
 * When to use: `npm start` (or `node examples/branching-agent/main.ts`); to
 * talk to the agent yourself, run `node examples/branching-agent/cli.ts`.
 *
 * Gotcha: the tour always uses the scripted model, so it is the same with or
 * without an API key; the CLI uses a real model when it finds a key.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { seedWorkspace } from "./demoScript.ts"
import { type CliChild, startCli } from "./driver.ts"
import { defaultModels } from "./models.ts"

const say = (line = "") => process.stdout.write(`${line}\n`)
const children = new Set<CliChild>()
// `npm start | head`: the reader left; stop the children and go.
process.stdout.on("error", () => {
  for (const child of children) child.kill("SIGTERM")
  process.exit(0)
})

const launch = (args: ReadonlyArray<string>, name: string, approve: boolean): CliChild => {
  const child = startCli(args, { echo: echo(name), approve })
  children.add(child)
  void child.exited.then(() => children.delete(child))
  return child
}
const note = (text: string) => say(`\n${text}`)
function echo(name: string) {
  return (line: string) => say(`   ${name} │ ${line}`)
}

/** Waits for a line, returns the first capture group (or the line). */
const expect = async (child: CliChild, pattern: RegExp): Promise<string> => {
  const line = await child.waitFor(pattern)
  return pattern.exec(line)?.[1] ?? line
}

const ledger = (workspace: string) => {
  const file = path.join(workspace, "ledger.txt")
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : []
}

async function tour(): Promise<void> {
  const began = performance.now()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "keel-tour-"))
  const workspace = path.join(root, "workspace")
  const session = path.join(root, "session")
  seedWorkspace(workspace)
  const args = ["--session", session, "--workspace", workspace, "--model", "scripted"]
  const cli = `node examples/branching-agent/cli.ts`

  say("Keel — the branching-session agent, offline tour (the scripted model: no key, no network)")
  say(`  workspace ${workspace}: a tiny JS project whose test fails`)
  say(`  session   ${session}`)
  if (process.env.ANTHROPIC_API_KEY || process.env.OPENAI_API_KEY) {
    const which = process.env.ANTHROPIC_API_KEY
      ? `Anthropic (${process.env.KEEL_MODEL ?? defaultModels.anthropic})`
      : `OpenAI (${process.env.KEEL_MODEL ?? defaultModels.openai})`
    say(`  An API key is set: this tour still uses the scripted model (deterministic); \`${cli}\` talks to ${which}.`)
  }

  note("1. An agent process is asked to fix the failing test. Each model turn is journaled with the tool calls it proposes, before any of them runs;")
  say("   run_command is unsafe, so it asks first (answered y here).")
  const first = launch(args, "cli#1", true)
  await first.waitFor(/type a task/)
  first.send("Fix the failing test")
  const question = await expect(first, /┄ run \S+ · answers entry (\d+)/)
  await first.waitFor(/■ run /)
  note(`   Label the question (entry ${question}), fork a branch "explain" at it — O(1), nothing is copied — switch to it and ask something else there.`)
  first.send(`/label ${question} task`)
  await first.waitFor(/labelled/)
  first.send(`/fork ${question} explain`)
  await first.waitFor(/forked/)
  first.send("/switch explain")
  await first.waitFor(/on explain/)
  first.send("Instead, explain what math.js does")
  await first.waitFor(/■ run /)
  first.send("/tree")
  await first.waitFor(/you are on/)
  first.send("/quit")
  await first.exited

  note("2. A second process opens the same session, goes back to main and starts the slow integration check (a command that takes ~4 s).")
  const second = launch(args, "cli#2", true)
  await second.waitFor(/resumed/)
  second.send("/switch main")
  await second.waitFor(/on main/)
  second.send("Run the slow integration check")
  await second.waitFor(/→ run_command/)
  await second.waitFor(/… run_command running/)
  say(`   ✂ kill -9 ${second.pid} while run_command is running (ledger.txt: ${JSON.stringify(ledger(workspace))})`)
  second.kill("SIGKILL")
  const killed = await second.exited
  say(`   the process is gone (${killed.signal}); its journal has run_command "started" and no outcome.`)

  note("3. A third process resumes the session. The run left unfinished continues; the command in doubt is unsafe, so it is not run again:")
  say('   recovery journals its outcome as "unknown" and the model, told so, reads the ledger instead.')
  const third = launch(args, "cli#3", false)
  await third.waitFor(/■ run /)
  third.send("/tree")
  await third.waitFor(/you are on/)
  third.send("/status")
  await third.waitFor(/session \S+ · epoch/)
  // What the session may do at all: the capability every call was checked against before it started.
  third.send("/grants")
  await third.waitFor(/calls? authorized so far/)
  third.send("/quit")
  await third.exited

  const lines = ledger(workspace)
  const started = lines.filter((l) => l.startsWith("started ")).length
  note(`The ledger the slow check keeps: ${JSON.stringify(lines)} — started ${started} time${started === 1 ? "" : "s"}: nothing ran twice.`)
  say(`Done in ${((performance.now() - began) / 1000).toFixed(1)} s. Go on with this session yourself:`)
  say(`  ${cli} --session ${session} --workspace ${workspace}`)
  say(`or start a new one (\`${cli}\`; with ANTHROPIC_API_KEY or OPENAI_API_KEY set it talks to a real model).`)
}

await tour()
