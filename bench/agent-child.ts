/**
 * Run by bench/agent.ts (section h) in a fresh process: opens a session that
 * holds many recorded turns, makes the agent and calls `agent.run("next")`
 * with a scripted model that notes when it is asked for the first new turn.
 * Reports, as one JSON line on stdout, the time from the start of work
 * (before `Session.openFile`, after the imports) to that moment, and where it
 * went.
 *
 *   node bench/agent-child.ts <dir>
 *
 * The session is opened as a writer with the default durability (fsync), as
 * a real resume would; the run ends at once (the model answers with text), so
 * the session stays resumable for the next child.
 */
const processStartToScript = performance.now() // performance.now() counts from process start
const { Effect, Schema } = await import("effect")
const Authority = await import("../src/authority/Authority.ts")
const Caveat = await import("../src/authority/Caveat.ts")
const Agent = await import("../src/agent/Agent.ts")
const ScriptedModel = await import("../src/model/ScriptedModel.ts")
const Session = await import("../src/session/Session.ts")
const Tool = await import("../src/toolcall/Tool.ts")
const imported = performance.now()

const [dir] = process.argv.slice(2)
if (dir === undefined) {
  process.stderr.write("usage: agent-child.ts <dir>\n")
  process.exit(2)
}

/** The tool the session's turns called (bench/agent.ts defines the same one). */
const noop = Tool.make({
  name: "noop",
  description: "returns its input",
  input: Schema.Struct({ n: Schema.Number, text: Schema.String }),
  output: Schema.Struct({ n: Schema.Number, text: Schema.String }),
  semantics: "readOnly",
  timeoutMs: 10_000,
  run: (input) => Effect.succeed(input)
})

interface Report {
  ok: true
  bootMs: number
  importMs: number
  /** Each from the start of work (before Session.openFile). */
  openMs: number
  makeMs: number
  runStartedMs: number
  contextStartMs: number
  contextEndMs: number
  turnStartedMs: number
  askMs: number
  /** What the first new turn was given. */
  contextEntries: number
  messages: number
  turnsBefore: number
  runsBefore: number
  head: number
  outcome: string
  closeMs: number
  processMs: number
}

try {
  let report: Omit<Report, "closeMs" | "processMs"> | undefined
  let workDone = 0
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const start = performance.now()
        const session = yield* Session.openFile(dir, { owner: "bench-h" })
        const opened = performance.now()
        const runsBefore = session.runs().size
        const turnsBefore = session
          .runs()
          .all()
          .reduce((n, r) => n + r.turns, 0)
        const head = session.fence().head
        const marks = { runStarted: Number.NaN, contextStart: Number.NaN, contextEnd: Number.NaN, turnStarted: Number.NaN, ask: Number.NaN }
        let contextEntries = 0
        let messages = 0
        // The model notes when it is asked: that is the end of the measured span.
        const model = ScriptedModel.make((request) => {
          if (Number.isNaN(marks.ask)) {
            marks.ask = performance.now()
            messages = request.messages.length
          }
          return { text: "ok", usage: { inputTokens: 10, outputTokens: 1 } }
        })
        // Times session.context (the entries root → head read back for the model); everything else is the session's own.
        const timed: typeof session = {
          ...session,
          context: (branch) =>
            Effect.suspend(() => {
              if (Number.isNaN(marks.contextStart)) marks.contextStart = performance.now()
              return session.context(branch).pipe(
                Effect.tap((entries) =>
                  Effect.sync(() => {
                    if (Number.isNaN(marks.contextEnd)) {
                      marks.contextEnd = performance.now()
                      contextEntries = entries.length
                    }
                  })
                )
              )
            })
        }
        const { authority } = yield* Authority.issue([Caveat.tools(["noop"])])
        const agent = yield* Agent.make(timed, { authority, model, tools: [noop], budget: { turnsMax: 1000 } })
        const made = performance.now()
        agent.subscribe((update) => {
          if (update._tag === "runStarted" && Number.isNaN(marks.runStarted)) marks.runStarted = performance.now()
          if (update._tag === "turnStarted" && Number.isNaN(marks.turnStarted)) marks.turnStarted = performance.now()
        })
        const outcome = yield* agent.run("next")
        const at = (t: number) => t - start
        report = {
          ok: true,
          bootMs: processStartToScript,
          importMs: imported - processStartToScript,
          openMs: at(opened),
          makeMs: at(made),
          runStartedMs: at(marks.runStarted),
          contextStartMs: at(marks.contextStart),
          contextEndMs: at(marks.contextEnd),
          turnStartedMs: at(marks.turnStarted),
          askMs: at(marks.ask),
          contextEntries,
          messages,
          turnsBefore,
          runsBefore,
          head,
          outcome: `${outcome.state} after ${outcome.turns} turn(s)`
        }
        workDone = performance.now()
      })
    )
  )
  const closed = performance.now()
  if (report === undefined) throw new Error("no report")
  process.stdout.write(`${JSON.stringify({ ...report, closeMs: closed - workDone, processMs: closed })}\n`)
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(e).slice(0, 500) })}\n`)
  process.exit(1)
}
