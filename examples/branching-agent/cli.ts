/**
 * The example branching-session agent: an interactive terminal agent over a
 * Keel session, with workspace tools and a real or offline model.
 *
 *   node examples/branching-agent/cli.ts [--session <dir>] [--workspace <dir>] [--model scripted|anthropic|openai] [--yes]
 *
 * When to use: to talk to an agent whose every step is journaled: fork the
 * conversation at any entry, switch branches, kill the process and start it
 * again on the same --session (the unfinished run continues; no tool call
 * runs twice), Ctrl-C a turn and go on.
 *
 * Details:
 * - Lines from stdin (a TTY or a pipe) are prompts; lines starting with `/`
 *   are commands: /tree, /fork [entry] [name], /switch <branch>, /branches,
 *   /label <entry> <text>, /status, /resume, /help, /quit.
 * - The model: --model, else ANTHROPIC_API_KEY, else OPENAI_API_KEY, else the
 *   offline scripted model (models.ts).
 * - --session defaults to a new folder in the temp folder (printed, to come
 *   back to it); --workspace defaults to the current folder for a real model
 *   and to `<session>-workspace` for the scripted one. The scripted model's
 *   workspace is seeded with the demo project when it is empty.
 * - Unsafe tool calls (run_command) ask `y/N` here; empty input, EOF and
 *   anything but y/yes mean no. --yes answers yes (scripted runs).
 * - Ctrl-C during a run interrupts it (journaled `cancelled`, the session
 *   stays resumable) and returns to the prompt; at the prompt it leaves.
 *   Leaving suspends the session; `kill -9` does not, and the next start
 *   recovers by replay, then `agent.resume` finishes the unfinished run.
 * - Expected errors print one line and lose nothing. The exit code is 2 when
 *   the session cannot be opened (locked by another writer, corrupt, not a
 *   session), 0 otherwise.
 *
 * Gotcha: with a pipe, a y/N question takes the next line of input as its
 * answer, so a scripted stdin must hold the answers where they are asked
 * (or use --yes).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { Cause, Effect, Exit, Fiber } from "effect"
import * as Agent from "../../src/agent/Agent.ts"
import type { Answer, Question } from "../../src/agent/AgentTypes.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import * as Session from "../../src/session/Session.ts"
import { drawTree } from "../../src/session/TreeView.ts"
import { seedWorkspace } from "./demoScript.ts"
import { chooseModel, type ModelChoice } from "./models.ts"
import { describeError, entrySummary, Renderer, shortInput } from "./render.ts"
import { type Input, openTerminal, type Terminal } from "./terminal.ts"
import { commandSandbox, workspaceTools } from "./tools.ts"

const usage = `usage: node examples/branching-agent/cli.ts [--session <dir>] [--workspace <dir>] [--model scripted|anthropic|openai] [--yes]

  --session <dir>     the session folder (created if missing, resumed if not; default: a new temp folder)
  --workspace <dir>   the folder the tools work in (default: the current folder; <session>-workspace for the scripted model)
  --model <name>      scripted | anthropic | openai (default: by API key found, else scripted)
  --yes               answer y to every approval question

Commands: /tree  /fork [entry] [name]  /switch <branch>  /branches  /label <entry> <text>  /status  /grants  /resume  /help  /quit`

const commandHelp = [
  "  /tree                   the session tree, branch heads and where you are",
  "  /fork [entry] [name]    a new branch at an entry (default: the current head)",
  "  /switch <branch>        continue on another branch",
  "  /branches               the branches and their heads",
  "  /label <entry> <text>   name an entry",
  "  /status                 the agent's state, counters and current call",
  "  /grants                 what the session's capability allows (tools, scopes, who approves commands)",
  "  /resume                 finish a run left unfinished (done on start too)",
  "  /quit                   leave (the session is suspended; start again with --session to resume)",
  "  anything else           a prompt for the agent; Ctrl-C cancels a running turn"
]

interface Options {
  readonly session: string
  readonly sessionGiven: boolean
  readonly workspace: string | undefined
  readonly model: ModelChoice | undefined
  readonly yes: boolean
}

function parseOptions(argv: ReadonlyArray<string>): Options | string {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        session: { type: "string" },
        workspace: { type: "string" },
        model: { type: "string" },
        yes: { type: "boolean", short: "y" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    })
    if (values.help === true) return usage
    const model = values.model
    if (model !== undefined && model !== "scripted" && model !== "anthropic" && model !== "openai") return `unknown model "${model}"\n${usage}`
    return {
      session: path.resolve(values.session ?? fs.mkdtempSync(path.join(os.tmpdir(), "keel-session-"))),
      sessionGiven: values.session !== undefined,
      workspace: values.workspace === undefined ? undefined : path.resolve(values.workspace),
      model,
      yes: values.yes === true
    }
  } catch (e) {
    return `${e instanceof Error ? e.message : String(e)}\n${usage}`
  }
}

const systemPrompt = (workspace: string) =>
  [
    `You are a careful coding agent working in the folder ${workspace} (the workspace).`,
    "Look before you change anything: list, read and search first. Paths are relative to the workspace.",
    "run_command runs one program with arguments, without a shell, and needs the user's approval.",
    "Keep answers short and say what you changed."
  ].join(" ")

/** The approval window of a command: a countdown on the terminal, then the call is rejected (silence means no). */
const approvalTimeoutMs = 60_000

const say = (text: string) => process.stdout.write(`${text}\n`)
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`

/** The whole CLI; resolves to the exit code. */
const program = (options: Options, terminal: Terminal) =>
  Effect.gen(function* () {
    const chosen = yield* Effect.promise(() => chooseModel(options.model, process.env))
    const workspace = options.workspace ?? (chosen.kind === "scripted" ? `${options.session}-workspace` : process.cwd())
    if (chosen.kind === "scripted" && (!fs.existsSync(workspace) || fs.readdirSync(workspace).length === 0)) seedWorkspace(workspace)
    if (!fs.existsSync(workspace)) {
      say(`keel: the workspace ${workspace} does not exist`)
      return 2
    }
    const fresh = !fs.existsSync(options.session) || fs.readdirSync(options.session).length === 0

    const opened = yield* Effect.result(Session.openFile(options.session, { owner: `keel-cli pid ${process.pid} on ${os.hostname()}` }))
    if (opened._tag === "Failure") {
      const error = opened.failure
      say(
        error._tag === "SessionLocked"
          ? `keel: the session ${options.session} is open in another process (${error.owner}); only one writer at a time. Nothing was changed.`
          : `keel: cannot open the session ${options.session}: ${describeError(error)}. Nothing was changed.`
      )
      // Every open failure is fatal here: without the session there is nothing to run.
      return 2
    }
    const session = opened.success
    // Who may approve commands: the person at this terminal. The capability is issued by this app for the session.
    const me = `${os.userInfo().username}@terminal`
    const grant = yield* Effect.promise(() => sessionGrant(options.session, me))

    let renderer: Renderer | undefined
    const tools = workspaceTools(workspace, { onOutput: (callId, _stream, text) => renderer?.output(callId, text) })
    const ask = (question: Question): Effect.Effect<Answer> =>
      Effect.callback<Answer>((resume) => {
        const r = renderer as Renderer
        const left = () => Math.max(0, Math.ceil((question.deadline - Date.now()) / 1000))
        r.line(`  ? allow ${question.tool} ${shortInput(question.tool, question.input)}? [y/N] · no answer in ${left()} s is no`)
        if (options.yes) {
          r.line("  › y (--yes)")
          resume(Effect.succeed({ approve: true, by: me, note: "--yes" }))
          return
        }
        terminal.prompt(`  (${left()} s) › `)
        // The countdown: the deadline is the journal's (a restart keeps it); at zero the runtime rejects the call.
        const ticker = terminal.interactive ? setInterval(() => terminal.prompt(`  (${left()} s) › `), 1000) : undefined
        const withdraw = terminal.take((input) => {
          if (ticker !== undefined) clearInterval(ticker)
          const approve = input._tag === "line" && /^\s*y(es)?\s*$/i.test(input.text)
          if (!terminal.interactive) r.line(`  › ${input._tag === "line" ? input.text : `(${input._tag})`}`)
          if (!approve) r.line("  (not approved: the call is rejected and the model is told)")
          resume(Effect.succeed({ approve, by: me }))
        })
        return Effect.sync(() => {
          if (ticker !== undefined) clearInterval(ticker)
          withdraw()
        })
      })
    const agent = yield* Agent.make(session, {
      authority: grant.authority,
      model: chosen.model,
      tools,
      system: systemPrompt(workspace),
      ask,
      heartbeatMs: 1000
    })
    const view = new Renderer(
      (text) => process.stdout.write(text),
      () => agent.status(),
      {
        run: (runId) => {
          const run = session.runs().get(runId)
          return run === undefined ? undefined : `answers entry ${run.entryId} on ${run.branch}`
        },
        call: (callId) => session.calls().get(callId)
      }
    )
    renderer = view
    agent.subscribe((u) => view.update(u))

    say(`keel · ${fresh ? "new session" : "session"} ${options.session} · model ${chosen.model.name} · workspace ${workspace}`)
    if (chosen.notice !== undefined) say(`  ${chosen.notice}`)
    const sandbox = yield* Effect.result(commandSandbox())
    say(
      sandbox._tag === "Success" && sandbox.success.kind === "bwrap"
        ? "  commands run in a bubblewrap sandbox (read-only system, the workspace writable, no network); each needs your approval"
        : `  commands run without an OS sandbox (${sandbox._tag === "Success" ? (sandbox.success.note ?? "none here") : sandbox.failure.message}); each needs your approval`
    )
    if (fresh) {
      const hint = chosen.kind === "scripted" ? ' (try "fix the failing test")' : ""
      say(`  type a task${hint}, or /help${options.sessionGiven ? "" : `; come back to this session with --session ${options.session}`}`)
    } else {
      // Reading the branch is also the check that the journal's committed part is intact (a
      // checkpoint lets open skip it): a damaged session stops here, before anything is written.
      const where = yield* Effect.result(whereYouAre(session, view))
      if (where._tag === "Failure") {
        say(`keel: cannot read the session ${options.session}: ${describeError(where.failure)}. No committed data was changed.`)
        return 2
      }
    }

    /** Runs a turn loop as a child fiber that Ctrl-C interrupts; prints how it ended if the agent did not. */
    const interruptible = (run: Effect.Effect<unknown, unknown>) =>
      Effect.gen(function* () {
        view.lastEnded = undefined
        const fiber = yield* Effect.forkChild(run)
        let presses = 0
        const release = terminal.onInterrupt(() => {
          presses++
          if (presses === 1) {
            view.line("  ^C cancelling the run…")
            Effect.runFork(Fiber.interrupt(fiber))
          } else {
            view.line("  ^C again: leaving now; the next start recovers the session")
            process.exit(130)
          }
        })
        const exit = yield* Fiber.await(fiber)
        release()
        view.endLine()
        if (Exit.isSuccess(exit)) return
        if (Cause.hasInterruptsOnly(exit.cause)) {
          if (view.lastEnded === undefined) view.line("  ■ run cancelled · the session is resumable")
          return
        }
        const error = Cause.findErrorOption(exit.cause)
        view.line(`  ✗ ${error._tag === "Some" ? describeError(error.value) : Cause.pretty(exit.cause).split("\n")[0]}`)
      })

    yield* interruptible(agent.resume)

    for (;;) {
      terminal.prompt("› ")
      const input: Input = yield* Effect.callback<Input>((resume) => {
        const withdraw = terminal.take((i) => resume(Effect.succeed(i)))
        return Effect.sync(withdraw)
      })
      if (input._tag === "eof") break
      if (input._tag === "interrupt") {
        view.line("^C")
        break
      }
      const line = input.text.trim()
      if (line.length === 0) continue
      if (!terminal.interactive) view.line(`› ${line}`)
      if (!line.startsWith("/")) {
        yield* interruptible(agent.run(line))
        continue
      }
      const [name = "", ...rest] = line.slice(1).split(/\s+/)
      if (name === "quit" || name === "exit") break
      if (name === "resume") {
        // A run whose cancel found a call in doubt stays unfinished: this finishes it.
        yield* interruptible(agent.resume.pipe(Effect.tap((o) => Effect.sync(() => o === undefined && view.line("  nothing to resume")))))
        continue
      }
      if (name === "grants") {
        for (const l of grant.authority.describe()) view.line(`  ${l}`)
        const uses = session
          .calls()
          .all()
          .filter((c) => c.capability !== undefined).length
        view.line(`  ${plural(uses, "call", "calls")} authorized so far in this session · approvals: ${me} · issuer key ${grant.keyFile}`)
        continue
      }
      const result = yield* Effect.result(command(name, rest, session, agent, view))
      if (result._tag === "Failure") view.line(`  ✗ ${describeError(result.failure)}`)
    }
    view.line(`  bye · the session is suspended; resume it with --session ${options.session}`)
    return 0
  })

/** A slash command; typed errors come back to the loop, which prints them. */
const command = (name: string, args: ReadonlyArray<string>, session: Session.Session, agent: Agent.Agent, view: Renderer) =>
  Effect.gen(function* () {
    switch (name) {
      case "tree": {
        for (const l of yield* treeLines(session)) view.line(`  ${l}`)
        view.line(`  you are on ${session.activeBranch()} at entry ${yield* session.head()} (● entry, ◀ branch head, * active)`)
        return
      }
      case "branches": {
        for (const b of session.branches()) view.line(`  ${b.name === session.activeBranch() ? "*" : " "} ${b.name} · head ${b.head}`)
        return
      }
      case "fork": {
        const at = args.find((a) => /^\d+$/.test(a))
        const names = args.filter((a) => a !== at)
        if (names.length > 1) return view.line("  usage: /fork [entry] [name]")
        const entry = at === undefined ? yield* session.head() : Number(at)
        const taken = new Set(session.branches().map((b) => b.name))
        let n = taken.size
        while (taken.has(`fork-${n}`)) n++
        const branch = names[0] ?? `fork-${n}`
        yield* session.fork(entry, branch)
        view.line(`  forked "${branch}" at entry ${entry} · /switch ${branch} to continue there`)
        return
      }
      case "switch": {
        const branch = args[0]
        if (branch === undefined || args.length > 1) return view.line("  usage: /switch <branch>")
        yield* session.switchTo(branch)
        const head = yield* session.head()
        const top = head === 0 ? "the root" : yield* Effect.map(session.entry(head), (e) => `entry ${head} (${entrySummary(e.type, e.payload, [])})`)
        view.line(`  on ${branch} at ${top}`)
        return
      }
      case "label": {
        const [at, ...words] = args
        if (at === undefined || !/^\d+$/.test(at) || words.length === 0) return view.line("  usage: /label <entry> <text>")
        yield* session.label(Number(at), words.join(" "))
        view.line(`  labelled entry ${at} "${words.join(" ")}"`)
        return
      }
      case "status": {
        const s = agent.status()
        view.line(`  agent ${s.state}${s.runId !== undefined ? ` · run ${s.runId}` : ""} · branch ${s.branch} · model ${s.model}`)
        view.line(`  turns ${s.turns} · tool calls ${s.toolCalls} · tokens in ${s.inputTokens} out ${s.outputTokens}`)
        if (s.currentCall !== undefined) view.line(`  running ${s.currentCall.tool} (${s.currentCall.callId})`)
        view.line(
          `  session ${session.status()} · epoch ${session.fence().epoch} · ${plural(session.branches().length, "branch", "branches")} · head ${yield* session.head()}`
        )
        return
      }
      case "help":
        for (const l of commandHelp) view.line(l)
        return
      default:
        view.line(`  unknown command /${name} (try /help)`)
    }
  })

/** An entry in one line, with the tools it called. */
const summaryOf = (session: Session.Session, e: Session.Entry) => {
  const tools = session.calls().ofEntry(e.id)
  return entrySummary(
    e.type,
    e.payload,
    tools.map((c) => c.tool)
  )
}

/** The tree drawn with entry summaries; at most the first treeEntriesMax entries. */
const treeEntriesMax = 2000

const treeLines = (session: Session.Session) =>
  Effect.gen(function* () {
    const tree = session.tree()
    const ids: Array<number> = []
    for (let id = 1; id <= tree.head && ids.length < treeEntriesMax; id++) if (tree.isEntry(id)) ids.push(id)
    const nodes = yield* Effect.forEach(ids, (id) =>
      Effect.map(session.entry(id), (e) => ({
        id,
        parentId: e.parentId,
        label: e.label,
        summary: summaryOf(session, e)
      }))
    )
    const lines = drawTree(nodes, session.branches(), session.activeBranch())
    if (ids.length === treeEntriesMax) lines.push(`… (only the first ${treeEntriesMax} entries are drawn)`)
    return lines
  })

/** On start with an existing session: the branch, its head and its last entries. */
const whereYouAre = (session: Session.Session, view: Renderer) =>
  Effect.gen(function* () {
    const entries = yield* session.path()
    view.line(
      `  resumed (lease epoch ${session.fence().epoch}) · on ${session.activeBranch()} at entry ${yield* session.head()} · ` +
        `${plural(session.branches().length, "branch", "branches")} · ${plural(entries.length, "entry", "entries")} on this branch`
    )
    for (const e of entries.slice(-3)) {
      view.line(`    ${e.id} ${summaryOf(session, e)}`)
    }
  })

// ------------------------------------------------------------------------------------------------

const parsed = parseOptions(process.argv.slice(2))
if (typeof parsed === "string") {
  say(parsed)
  process.exitCode = parsed === usage ? 0 : 2
} else {
  const terminal = openTerminal()
  const exit = await Effect.runPromiseExit(Effect.scoped(program(parsed, terminal)))
  terminal.close()
  if (Exit.isSuccess(exit)) process.exitCode = exit.value
  else {
    say(`keel: ${Cause.pretty(exit.cause)}`)
    process.exitCode = 1
  }
}

/**
 * The session's capability, issued by this app: the workspace tools, writes
 * scoped to the workspace, and every command approved by `me`. The issuer's
 * key is kept beside the journal (`issuer.key`, mode 600) so a resumed session
 * verifies its calls with the same key; delete it and the old grant is void.
 */
async function sessionGrant(dir: string, me: string) {
  const keyFile = path.join(dir, "issuer.key")
  if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex"), { mode: 0o600 })
  const seed = new Uint8Array(Buffer.from(fs.readFileSync(keyFile, "utf8").trim(), "hex"))
  const caveats = [
    Caveat.tools(["read_file", "write_file", "list_dir", "search", "run_command"]),
    Caveat.pathUnder("path", ".", { tools: ["write_file"] }),
    Caveat.needsApproval([me], { tools: ["run_command"] })
  ]
  const grant = await Effect.runPromise(Authority.issue(caveats, { seed, keyId: "keel-cli", approvalTimeoutMs }))
  return { ...grant, keyFile }
}
