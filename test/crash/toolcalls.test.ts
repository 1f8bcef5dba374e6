import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import { allowAll } from "../support/authority.ts"
import { ChildPool, runScoped } from "./children.ts"
import { addStats, callsOf, checkCalls, emptyStats, makeTools, readLedger, type Sabotage, type ToolCallerConfig } from "./ledger.ts"
import { between, prng } from "./shared.ts"

const SEED = process.env.SEED !== undefined && process.env.SEED !== "" ? Number(process.env.SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
const KILLS = Number(process.env.KILLS_TOOLCALLS ?? 100)
const VERBOSE = process.env.TOOLCALLS_VERBOSE !== undefined && process.env.TOOLCALLS_VERBOSE !== ""
const SABOTAGE = (process.env.TOOLCALLS_SABOTAGE ?? "") as Sabotage

const here = path.dirname(fileURLToPath(import.meta.url))
const toolcaller = path.join(here, "toolcaller.ts")

// ---------------------------------------------------------------------------------------------
// Children

let root = ""
let failed = false
const pool = new ChildPool(toolcaller)

// ---------------------------------------------------------------------------------------------
// Reading and recovering in the parent

/** A failed check: names the seed and the kill so that the failure can be replayed. */
class CheckFailed extends Error {
  override readonly name = "CheckFailed"
}

type Check = (condition: unknown, message: string | (() => string)) => asserts condition

function checker(context: () => string): Check {
  return (condition, message) => {
    if (!condition) throw new CheckFailed(`SEED=${SEED} ${context()}: ${typeof message === "string" ? message : message()}`)
  }
}

const hasJournal = (dir: string) => fs.existsSync(path.join(dir, "segments")) && fs.readdirSync(path.join(dir, "segments")).some((n) => n.endsWith(".seg"))

/**
 * The raw journal and a reader session (writer: false, no recovery) of `dir`; checks the journal
 * against the ledger and the reader's calls against an independent fold of the records.
 */
async function checkFolder(check: Check, dir: string, ledgerFile: string, closedBefore: number) {
  let records: ReadonlyArray<Journal.Committed>
  try {
    records = await runScoped(
      Effect.gen(function* () {
        const journal = yield* Journal.openFile(dir, { writer: false, create: false })
        return yield* journal.read(1)
      })
    )
  } catch (e) {
    check(false, `the journal does not open for reading: ${String(e)}`)
    throw e
  }
  if (records.length === 0) return undefined // killed while it created the folder: nothing was written yet
  const first = records[0]?.event
  check(first?._tag === "session.created", () => `the journal starts with ${JSON.stringify(first)}`)
  const sessionId = first.sessionId
  const { problems, stats } = checkCalls(records, readLedger(ledgerFile), sessionId, closedBefore)
  check(problems.length === 0, () => `${problems.length} problem(s):\n  ${problems.slice(0, 12).join("\n  ")}`)

  let reader: { id: string; states: Map<string, string> }
  try {
    reader = await runScoped(
      Effect.gen(function* () {
        const session = yield* Session.openFile(dir, { writer: false, create: false })
        return {
          id: session.id,
          states: new Map(
            session
              .calls()
              .all()
              .map((c) => [c.callId, c.state])
          )
        }
      })
    )
  } catch (e) {
    check(false, `the session does not open for reading: ${String(e)}`)
    throw e
  }
  check(reader.id === sessionId, () => `the reader's session id ${reader.id} is not the journal's ${sessionId}`)
  const folded = callsOf(records)
  check(reader.states.size === folded.size, () => `the reader has ${reader.states.size} calls, the journal ${folded.size}`)
  for (const call of folded.values()) {
    const last = [...call.started.map((s) => ({ p: s.position, state: "started" })), ...call.outcomes.map((o) => ({ p: o.position, state: o.tag }))].sort(
      (a, b) => a.p - b.p
    )
    const expected = call.compensated > 0 ? "compensated" : (last[last.length - 1]?.state ?? "proposed")
    const got = reader.states.get(call.callId)
    // A reader never recovers: a call still started is "started" (or "inDoubt" if a writer's checkpoint saw it so).
    check(got === expected || (expected === "started" && got === "inDoubt"), () => `the reader has call ${call.callId} ${got}, the journal ${expected}`)
  }
  return { records, stats, sessionId }
}

/**
 * What a retired folder gets: a clean recovery by the parent (a writer, the same tools and
 * ledger), session.context() with every call resolved, then the checks with every attempt closed.
 */
async function finalRecovery(check: Check, dir: string, ledgerFile: string) {
  const tools = Executor.registry(makeTools(ledgerFile), allowAll)
  let resumed: { entries: number; calls: number; open: number }
  try {
    resumed = await runScoped(
      Effect.gen(function* () {
        const session = yield* Session.openFile(dir, { owner: "verifier" })
        yield* Recovery.recover(session, tools)
        const context = yield* session.context()
        const calls = context.flatMap((e) => e.calls)
        return { entries: context.length, calls: calls.length, open: session.calls().unresolved().length }
      })
    )
  } catch (e) {
    check(false, `the session does not resume (open as writer, recover, context): ${String(e)}`)
    throw e
  }
  check(resumed.open === 0, () => `${resumed.open} calls are unresolved after the final recovery`)
  const checked = await checkFolder(check, dir, ledgerFile, Number.POSITIVE_INFINITY)
  check(checked !== undefined, "the journal is empty after the final recovery")
  const { records, stats } = checked
  check(resumed.calls === callsOf(records).size, () => `the context shows ${resumed.calls} calls, the journal has ${callsOf(records).size}`)
  return stats
}

// ---------------------------------------------------------------------------------------------

const summary = {
  seed: SEED,
  sabotage: SABOTAGE,
  kills: 0,
  freshFolders: 0,
  killedBeforeOpen: 0,
  killedDuringRecovery: 0,
  childResumes: 0,
  childFoundInDoubt: 0,
  childFoundUnstarted: 0,
  turnsProposed: 0,
  turnsRan: 0,
  finalRecoveries: 0,
  ...emptyStats(),
  ms: { total: 0, children: 0, checks: 0 }
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "keel-toolcalls-"))
  console.log(`SEED=${SEED} (set SEED=${SEED} to repeat the random choices) folders in ${root}${SABOTAGE === "" ? "" : ` SABOTAGE=${SABOTAGE}`}`)
})

afterAll(() => {
  pool.stop()
  const { calls, callsBySemantics, executionsBySemantics, inDoubt, resolved, duplicates } = summary
  console.log(
    `toolcalls summary: ${summary.kills} kills, ${calls} calls ${JSON.stringify(callsBySemantics)}, executions ${JSON.stringify(executionsBySemantics)}, ` +
      `${inDoubt} in doubt → ${resolved.rerun} rerun, ${resolved.reconciledExecuted + resolved.reconciledNotExecuted} reconciled, ${resolved.closedUnknown} closed unknown; duplicates ${duplicates}`
  )
  console.log(`toolcalls summary ${JSON.stringify(summary)}`)
  if (failed) console.log(`kept ${root} for inspection`)
  else fs.rmSync(root, { recursive: true, force: true })
})

describe("kill -9 during tool calls", () => {
  it(`no duplicate effects, WAL, one key per call, one outcome per attempt, always resumable (${KILLS} kills)`, async () => {
    const started = Date.now()
    const rng = prng(SEED ^ 0x70015)
    let context = "toolcalls"
    const check: Check = checker(() => context)
    let folders = 0
    let dir = ""
    let ledgerFile = ""
    let killsHere = 0
    /** Attempts started in an epoch below this must have an outcome: a process of this epoch finished its recovery. */
    let closedBefore = 0
    let sessionId = ""
    const retire = async () => {
      context = `final recovery of ${dir}`
      const t0 = Date.now()
      addStats(summary, await finalRecovery(check, dir, ledgerFile))
      summary.finalRecoveries++
      summary.ms.checks += Date.now() - t0
    }
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        if (dir === "" || killsHere >= 8 || rng() < 0.12) {
          if (dir !== "" && hasJournal(dir)) await retire()
          dir = path.join(root, `session-${folders}`)
          ledgerFile = path.join(root, `session-${folders}.ledger`)
          folders++
          killsHere = 0
          closedBefore = 0
          sessionId = ""
          summary.freshFolders++
        }
        const beforeOpen = rng() < 0.08
        const r = rng()
        const delay = beforeOpen ? between(rng, 0, 80) : r < 0.2 ? between(rng, 0, 8) : between(rng, 8, 180)
        const config: ToolCallerConfig = { dir, ledger: ledgerFile, owner: `k${kill}`, seed: (rng() * 2 ** 32) >>> 0, sabotage: SABOTAGE }
        context = `kill ${kill} (${dir}, ${killsHere} earlier kills here, delay ${delay} ms${beforeOpen ? " before open" : ""})`
        const t0 = Date.now()
        const lines = await pool.runAndKill(config, delay, beforeOpen ? undefined : "open ")
        const t1 = Date.now()
        killsHere++
        summary.kills++
        summary.ms.children += t1 - t0

        // What the child said.
        const open = lines[0]?.split(" ")
        if (open === undefined) {
          check(beforeOpen, "the child said nothing")
          summary.killedBeforeOpen++
        } else {
          check(open[0] === "open" && open.length === 5, () => `first line is ${lines[0]}`)
          const [, id = "", epoch = "0", inDoubt = "0", unstarted = "0"] = open
          check(sessionId === "" || id === sessionId, () => `the child opened session ${id}, the folder holds ${sessionId}`)
          sessionId = id
          summary.childFoundInDoubt += Number(inDoubt)
          summary.childFoundUnstarted += Number(unstarted)
          if (lines.some((l) => l.startsWith("recovered "))) closedBefore = Math.max(closedBefore, Number(epoch))
          else summary.killedDuringRecovery++
          if (lines.some((l) => l.startsWith("context "))) summary.childResumes++
          summary.turnsProposed += lines.filter((l) => l.startsWith("propose ")).length
          summary.turnsRan += lines.filter((l) => l.startsWith("ran ")).length
        }

        // What the journal and the world say.
        const checked = hasJournal(dir) ? await checkFolder(check, dir, ledgerFile, closedBefore) : undefined
        check(checked !== undefined || open === undefined, "the child opened the session, but the folder holds no journal")
        summary.ms.checks += Date.now() - t1
        if (VERBOSE) {
          console.log(`${context}: ran ${t1 - t0} ms, checked in ${Date.now() - t1} ms; ${lines.join(" | ").slice(0, 300)}`)
        }
      }
      if (hasJournal(dir)) await retire()
    } catch (e) {
      failed = true
      throw e
    } finally {
      summary.ms.total = Date.now() - started
    }
    expect(summary.kills).toBe(KILLS)
    expect(summary.duplicates).toBe(0)
  }, 120_000)
})
