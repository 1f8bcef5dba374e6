/**
 * Run by bench/agent.ts (section h) in a fresh process: opens a session that
 * holds many recorded turns, makes the agent and calls `agent.run("next")`
 * with a scripted model that notes when it is asked for the first new turn.
 * Reports, as one JSON line on stdout, the time from the start of work
 * (before `Session.openFile`, after the imports) to that moment, and where it
 * went: open, Agent.make, the run's user entry, and `assemble` (the context of
 * the first new turn: how many entries it read, in how many calls, how long).
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
  /** `assemble` (src/agent/Context.ts) of the first new turn: from its `session.head` call to `turnStarted`, which the loop emits as soon as it returns. */
  assembleStartMs: number
  turnStartedMs: number
  askMs: number
  /** Entries `assemble` read through the session (cache hits included), the calls it made for them, and the time in those reads. */
  assembleEntries: number
  assembleReads: number
  assembleReadMs: number
  /** What the first new turn was given: messages, and entries of the branch left out (over the context budget). */
  messages: number
  omitted: number
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
        const marks = { runStarted: Number.NaN, assembleStart: Number.NaN, turnStarted: Number.NaN, ask: Number.NaN }
        const reads = { entries: 0, calls: 0, ms: 0 }
        let messages = 0
        let omitted = 0
        // The model notes when it is asked: that is the end of the measured span.
        const model = ScriptedModel.make((request) => {
          if (Number.isNaN(marks.ask)) {
            marks.ask = performance.now()
            messages = request.messages.length
            const first = request.messages[0]
            const note = first?.role === "user" ? /^\(The (\d+) earlier entries/.exec(first.text) : null
            omitted = note === null ? 0 : Number(note[1])
          }
          return { text: "ok", usage: { inputTokens: 10, outputTokens: 1 } }
        })
        // The loop builds a turn's context with `assemble` (src/agent/Context.ts), which starts with
        // `session.head(branch)` and reads entries with `session.entries` (or `session.entry`): those
        // calls are timed while the first new turn is being assembled; everything else is the session's own.
        const assembling = () => !Number.isNaN(marks.runStarted) && Number.isNaN(marks.turnStarted)
        const timedRead = <A, E>(read: import("effect").Effect.Effect<A, E>, count: (a: A) => number): import("effect").Effect.Effect<A, E> =>
          Effect.suspend(() => {
            if (!assembling()) return read
            const t = performance.now()
            return Effect.tap(read, (a) =>
              Effect.sync(() => {
                reads.ms += performance.now() - t
                reads.calls++
                reads.entries += count(a)
              })
            )
          })
        const timed: typeof session = {
          ...session,
          head: (branch) =>
            Effect.suspend(() => {
              if (assembling() && Number.isNaN(marks.assembleStart)) marks.assembleStart = performance.now()
              return session.head(branch)
            }),
          entry: (id) => timedRead(session.entry(id), () => 1),
          entries: (ids) => timedRead(session.entries(ids), (entries) => entries.length)
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
          assembleStartMs: at(marks.assembleStart),
          turnStartedMs: at(marks.turnStarted),
          askMs: at(marks.ask),
          assembleEntries: reads.entries,
          assembleReads: reads.calls,
          assembleReadMs: reads.ms,
          messages,
          omitted,
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
