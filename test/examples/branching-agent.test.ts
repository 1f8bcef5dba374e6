// The example branching-session agent end to end: the real CLI (examples/branching-agent/cli.ts) as a
// child process on the scripted model, driven through its stdin like a person would, checked on its
// output, on the journal (read back with Session.openFile, writer: false) and on the workspace's
// ledger (the slow check writes a line when it starts: the ground truth of what ran).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { seedWorkspace } from "../../examples/branching-agent/demoScript.ts"
import { type CliChild, type StartOptions, startCli } from "../../examples/branching-agent/driver.ts"
import * as Session from "../../src/session/Session.ts"

const noKeys = { ANTHROPIC_API_KEY: undefined, OPENAI_API_KEY: undefined, KEEL_MODEL: undefined }
const live = new Set<CliChild>()
const dirs: Array<string> = []

afterEach(async () => {
  for (const child of live) child.kill("SIGKILL")
  await Promise.all([...live].map((c) => c.exited))
  live.clear()
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

/** A session folder and a seeded demo workspace. */
function setup(): { session: string; workspace: string; args: ReadonlyArray<string> } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "keel-example-"))
  dirs.push(root)
  const session = path.join(root, "session")
  const workspace = path.join(root, "workspace")
  seedWorkspace(workspace)
  return { session, workspace, args: ["--session", session, "--workspace", workspace, "--model", "scripted"] }
}

function start(args: ReadonlyArray<string>, options: StartOptions = {}): CliChild {
  const child = startCli(args, { ...options, env: { ...noKeys, ...options.env } })
  live.add(child)
  void child.exited.then(() => live.delete(child))
  return child
}

/** Sends a line and waits for the output line that says it is done. */
async function step(child: CliChild, line: string, until: RegExp): Promise<string> {
  child.send(line)
  return child.waitFor(until)
}

/** What the journal holds, read by a reader (no lease needed; the writer may be gone or suspended). */
const readBack = (dir: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* Session.openFile(dir, { writer: false })
        return {
          branches: Object.fromEntries(s.branches().map((b) => [b.name, b.head])),
          active: s.activeBranch(),
          labels: new Map(s.labels()),
          runs: s.runs().all(),
          calls: s.calls().all(),
          path: (branch: string) => Effect.runPromise(s.path(branch)),
          main: yield* s.path("main"),
          status: s.status()
        }
      })
    )
  )

const ledgerOf = (workspace: string) => {
  const file = path.join(workspace, "ledger.txt")
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : []
}

const textOf = (payload: unknown) => String((payload as { text?: unknown }).text ?? "")

describe("branching-agent CLI", () => {
  it("does the task, then forks at the question, switches and answers another one there; /tree and the journal agree", async () => {
    const { session, workspace, args } = setup()
    const cli = start(args, { approve: true })
    await cli.waitFor(/type a task/)
    const question = Number(/answers entry (\d+) on main/.exec(await step(cli, "fix the failing test", /┄ run run1/))?.[1])
    assert.strictEqual(await cli.waitFor(/■ run /), "  ■ run done · 6 turns")
    for (const tool of ["list_dir", "read_file", "search", "write_file", "run_command"])
      assert.isTrue(
        cli.lines.some((l) => l.startsWith(`  ✓ ${tool}`)),
        tool
      )
    assert.include(fs.readFileSync(path.join(workspace, "math.js"), "utf8"), "let i = 0")

    await step(cli, `/label ${question} task`, /labelled/)
    await step(cli, `/fork ${question} explain`, /forked "explain" at entry/)
    await step(cli, "/switch explain", /on explain at entry/)
    await step(cli, "Instead, explain what math.js does", /■ run done/)
    await step(cli, "/tree", /^› \/tree$/)
    const tree: Array<string> = []
    for (let line = await cli.waitFor(/./); !line.includes("you are on"); line = await cli.waitFor(/./)) tree.push(line)
    cli.send("/quit")
    assert.strictEqual((await cli.exited).code, 0)

    // The tree: the labelled question with two children, one per branch, each branch head marked.
    assert.match(tree[0] ?? "", new RegExp(`● ${question} user: fix the failing test \\[task\\]`))
    assert.isTrue(tree.some((l) => /├─● \d+ assistant: Let me look/.test(l)))
    assert.isTrue(tree.some((l) => /└─● \d+ user: Instead, explain what math.js does/.test(l)))
    assert.isTrue(tree.some((l) => /◀ main$/.test(l)))
    assert.isTrue(tree.some((l) => /◀ explain\*$/.test(l)))

    const journal = await readBack(session)
    assert.deepStrictEqual(Object.keys(journal.branches), ["main", "explain"])
    assert.strictEqual(journal.active, "explain")
    assert.strictEqual(journal.labels.get(question), "task")
    assert.strictEqual(journal.status, "suspended")
    assert.deepStrictEqual(
      journal.runs.map((r) => [r.runId, r.branch, r.entryId === question, r.state]),
      [
        ["run1", "main", true, "done"],
        ["run2", "explain", false, "done"]
      ]
    )
    // The fork copied nothing: both branches go through the one question entry.
    const explain = await journal.path("explain")
    assert.deepStrictEqual(
      explain.map((e) => e.type),
      ["user", "user", "assistant", "assistant"]
    )
    assert.strictEqual(explain[0]?.id, question)
    assert.strictEqual(journal.main[0]?.id, question)
    assert.match(textOf(journal.main.at(-1)?.payload), /`node test.js` passes: ok: 3 tests passed/)
    assert.isTrue(journal.calls.every((c) => c.state === "succeeded"))
  })

  it("kill -9 during a tool call, then resume: the run finishes and the unsafe command did not run twice", async () => {
    const { session, workspace, args } = setup()
    const first = start(args, { approve: true })
    await first.waitFor(/type a task/)
    await step(first, "run the slow check", /→ run_command node slow-check\.js/)
    await first.waitFor(/│ slow check: step 1\/8/)
    first.kill("SIGKILL")
    assert.strictEqual((await first.exited).signal, "SIGKILL")
    const key = ledgerOf(workspace)[0]?.replace(/^started /, "")
    assert.match(key ?? "", /^keel:.+:run1_t1_c1$/)

    const second = start(args)
    await second.waitFor(/↻ resuming run run1/)
    assert.match(await second.waitFor(/run_command/), /✗ run_command node slow-check\.js · failed \(unknown\): outcome unknown/)
    await second.waitFor(/→ read_file ledger\.txt/)
    assert.match(await second.waitFor(/started 1 time and finished 0 times/), /was not run again/)
    await second.waitFor(/■ run done · 3 turns/)
    await step(second, "/status", /session active/)
    second.send("/quit")
    assert.strictEqual((await second.exited).code, 0)

    // The world: one start for the call's key, ever (the killed command's own process is gone too).
    await new Promise((r) => setTimeout(r, 700))
    assert.deepStrictEqual(ledgerOf(workspace), [`started ${key}`])
    const journal = await readBack(session)
    assert.deepStrictEqual(
      journal.runs.map((r) => [r.runId, r.state, r.turns]),
      [["run1", "done", 3]]
    )
    const slow = journal.calls.find((c) => c.tool === "run_command")
    assert.strictEqual(slow?.state, "failed")
    assert.strictEqual(slow?.attempt, 1)
    assert.strictEqual(slow?.outcome?.kind === "failed" ? slow.outcome.reason : undefined, "unknown")
  })

  it("Ctrl-C during a turn cancels the run (journaled, resumable), the next prompt works, Ctrl-C at the prompt leaves cleanly", async () => {
    const { session, workspace, args } = setup()
    const cli = start(args, { approve: true })
    await cli.waitFor(/type a task/)
    await step(cli, "run the slow check", /│ slow check: step 1\/8/)
    cli.kill("SIGINT")
    await cli.waitFor(/\^C cancelling the run/)
    assert.match(await cli.waitFor(/run_command/), /⊘ run_command node slow-check\.js · cancelled/)
    assert.match(await cli.waitFor(/■ run /), /■ run cancelled \(interrupted\)/)
    await step(cli, "explain math.js", /■ run done · 2 turns/)
    cli.kill("SIGINT")
    await cli.waitFor(/bye · the session is suspended/)
    assert.strictEqual((await cli.exited).code, 0)

    const journal = await readBack(session)
    assert.deepStrictEqual(
      journal.runs.map((r) => [r.runId, r.state, r.end?.message]),
      [
        ["run1", "cancelled", "interrupted"],
        ["run2", "done", "the model answered"]
      ]
    )
    assert.strictEqual(journal.calls.find((c) => c.tool === "run_command")?.state, "cancelled")
    assert.strictEqual(journal.status, "suspended")
    // The command's process group was ended with the cancel: it never finished.
    await new Promise((r) => setTimeout(r, 700))
    assert.deepStrictEqual(
      ledgerOf(workspace).map((l) => l.split(" ")[0]),
      ["started"]
    )
  })

  it("a malformed tool call from the model becomes an error result in the journal, and the run still ends done", async () => {
    const { session, args } = setup()
    const cli = start(args)
    await cli.waitFor(/type a task/)
    assert.match(await step(cli, "make a malformed call", /read_file/), /✗ read_file ".*" · failed \(invalidInput\): the arguments are not a JSON object/)
    await cli.waitFor(/■ run done · 2 turns/)
    cli.end()
    assert.strictEqual((await cli.exited).code, 0)

    const journal = await readBack(session)
    const [call] = journal.calls
    assert.strictEqual(journal.calls.length, 1)
    assert.strictEqual(call?.input, '{"path": "math.js"')
    assert.strictEqual(call?.state, "failed")
    assert.strictEqual(call?.outcome?.kind === "failed" ? call.outcome.reason : undefined, "invalidInput")
    assert.strictEqual(journal.runs[0]?.state, "done")
    assert.match(textOf(journal.main.at(-1)?.payload), /were not valid JSON/)
  })

  it("an approval answered with an empty line (or EOF) is a no: the call is rejected, nothing runs", async () => {
    const { session, workspace, args } = setup()
    const cli = start(args)
    await cli.waitFor(/type a task/)
    await step(cli, "run the slow check", /\? allow run_command node slow-check\.js\? \[y\/N\]/)
    await step(cli, "", /not approved/)
    await cli.waitFor(/■ run done/)
    cli.end()
    assert.strictEqual((await cli.exited).code, 0)
    assert.deepStrictEqual(ledgerOf(workspace), [])
    const journal = await readBack(session)
    const call = journal.calls[0]
    // The person at the terminal is the capability's approver: their no is the call's one decision, journaled with their name.
    assert.strictEqual(call?.state, "rejected")
    assert.deepStrictEqual(call?.outcome, { kind: "rejected", by: `${os.userInfo().username}@terminal`, reason: "declined" })
  })

  it("a second CLI on a session in use gets one clear line and exit code 2; the first is unharmed; a folder that is not a session too", async () => {
    const { session, args } = setup()
    const first = start(args)
    await first.waitFor(/type a task/)
    const second = start(args)
    const { code } = await second.exited
    assert.strictEqual(code, 2)
    assert.match(second.transcript(), new RegExp(`keel: the session ${session} is open in another process \\(keel-cli pid ${first.pid} .*\\); only one writer`))
    await step(first, "hello", /■ run done/)
    first.send("/quit")
    assert.strictEqual((await first.exited).code, 0)

    const notSession = path.join(path.dirname(session), "workspace")
    const third = start(["--session", notSession, "--model", "scripted"])
    assert.strictEqual((await third.exited).code, 2)
    assert.match(third.transcript(), /keel: cannot open the session .*JournalNotFound: .* is not a Keel journal/)
  })

  it("a session damaged in its committed part stops the CLI at start with one line and exit code 2", async () => {
    const { session, args } = setup()
    const cli = start(args)
    await cli.waitFor(/type a task/)
    await step(cli, "hello there", /■ run done/)
    cli.send("/quit")
    await cli.exited
    // Flip a byte inside the user entry's record (not the tail: a torn tail is cut, not an error).
    const segments = path.join(session, "segments")
    const file = path.join(segments, fs.readdirSync(segments).find((n) => n.endsWith(".seg")) as string)
    const bytes = fs.readFileSync(file)
    const at = bytes.indexOf("hello there")
    assert.isAbove(at, 0)
    bytes[at + 2] = (bytes[at + 2] as number) ^ 0xff
    fs.writeFileSync(file, bytes)

    const again = start(args)
    assert.strictEqual((await again.exited).code, 2)
    assert.match(again.transcript(), /keel: cannot (open|read) the session .*: JournalCorrupt: journal .* is corrupt at byte \d+/)
  })

  it("without an API key it says so in one line and works offline; --model anthropic|openai without its key falls back too", async () => {
    const { session, workspace } = setup()
    const plain = start(["--session", session, "--workspace", workspace])
    assert.match(await plain.waitFor(/API key/), /^ {2}No API key found: using the offline scripted model/)
    await step(plain, "hello", /■ run done/)
    plain.send("/quit")
    assert.strictEqual((await plain.exited).code, 0)
    for (const [model, key] of [
      ["anthropic", "ANTHROPIC_API_KEY"],
      ["openai", "OPENAI_API_KEY"]
    ]) {
      const cli = start(["--session", session, "--workspace", workspace, "--model", model as string])
      assert.include(await cli.waitFor(/needs/), `--model ${model} needs ${key}, which is not set: using the offline scripted model instead`)
      cli.send("/quit")
      assert.strictEqual((await cli.exited).code, 0)
    }
  })
})
