/**
 * Run by bench/main.ts in a fresh process (cold module cache, cold page cache):
 * opens a session folder and reports, as one JSON line on stdout, the time
 * from `Session.openFile` until the active branch is usable (head known and
 * the root→head entry ids computed).
 *
 *   node bench/open-child.ts <dir> reader|writer [materialize]
 *
 * `materialize` also times `session.path()`, which reads every entry of the
 * branch back from the segment files.
 */
const processStartToScript = performance.now() // performance.now() counts from process start
const { Effect } = await import("effect")
const Session = await import("../src/session/Session.ts")
const imported = performance.now()

const [dir, mode, extra] = process.argv.slice(2)
if (dir === undefined || (mode !== "reader" && mode !== "writer")) {
  process.stderr.write("usage: open-child.ts <dir> reader|writer [materialize]\n")
  process.exit(2)
}

interface Report {
  ok: true
  mode: string
  bootMs: number
  importMs: number
  openMs: number
  readyMs: number
  head: number
  pathLength: number
  branches: number
  materializeMs?: number
  materialized?: number
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
        const session = yield* Session.openFile(dir, { owner: "bench-child", writer: mode === "writer" })
        const opened = performance.now()
        const head = yield* session.head()
        const ids = session.tree().pathTo(head)
        const ready = performance.now()
        report = {
          ok: true,
          mode,
          bootMs: processStartToScript,
          importMs: imported - processStartToScript,
          openMs: opened - start,
          readyMs: ready - start,
          head,
          pathLength: ids.length,
          branches: session.branches().length
        }
        if (extra === "materialize") {
          const entries = yield* session.path()
          report.materializeMs = performance.now() - ready
          report.materialized = entries.length
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
