/**
 * Sections (g) and (h) of the benchmarks: the agent loop (issue 4).
 *
 *   (g) runtime overhead per turn, model and tools excluded: runs of 200
 *       turns with the ScriptedModel (turns return at once) and a no-op
 *       readOnly tool (`Effect.succeed`), each turn proposing one call, the
 *       last answering; beside, on the same session, the tool-call protocol
 *       alone (Executor.runCall of a proposed call of the same tool) and one
 *       durable session.append; and text-only runs (1 turn, no tools).
 *       Both durabilities: fsync and "os".
 *
 *         overhead per turn = (time from asking the model for turn k to
 *         asking it for turn k+1, p50) − (Executor.runCall of one proposed
 *         no-op call, p50)
 *
 *       i.e. what the loop adds around the model and the tool's own protocol:
 *       the turn record (one durable batch: assistant entry + proposed call +
 *       agent.turn.recorded), settling, assembling the context, the model
 *       port. Target: < 1 ms with "os", ≤ 1.5× one durable append with fsync.
 *
 *   (h) resuming a 10,000-turn session: in a fresh process (page cache
 *       dropped), from the start of work (before Session.openFile) to the
 *       moment the model is asked for the first new turn of `agent.run`.
 *       Target: < 200 ms. The session is built once with the records the
 *       agent loop writes (bench/agent-child.ts is the child).
 *
 * The model and the tool cost nothing here, so what is measured is the
 * runtime: session, journal, executor, agent loop.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Schema, type Scope } from "effect"
import * as Agent from "../src/agent/Agent.ts"
import { assemble } from "../src/agent/Context.ts"
import * as Authority from "../src/authority/Authority.ts"
import * as Caveat from "../src/authority/Caveat.ts"
import { crc32c } from "../src/internal/crc32c.ts"
import { decodePayloadBytes, frameHeaderBytes, headerBytes } from "../src/journal/Codec.ts"
import type { ModelShape } from "../src/model/Model.ts"
import * as ScriptedModel from "../src/model/ScriptedModel.ts"
import * as Session from "../src/session/Session.ts"
import * as Executor from "../src/toolcall/Executor.ts"
import * as Tool from "../src/toolcall/Tool.ts"
import { allowAll } from "../test/support/authority.ts"
import { bytes, dropCaches, dur, filesSize, median, num, percentile, type Row, ratio, residency, tempDir, verdict } from "./lib.ts"

const now = () => performance.now()
const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> => Effect.runPromise(Effect.scoped(effect))
const p = (xs: ReadonlyArray<number>, q: number) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    q
  )
const p5090 = (xs: ReadonlyArray<number>) => `p50 ${dur(p(xs, 50))}, p90 ${dur(p(xs, 90))}`

type Durability = "fsync" | "os"

// --------------------------------------------------------------- the tool, the model's turns

/** The trivial tool: readOnly, returns its input (bench/agent-child.ts defines the same one). */
const noop = Tool.make({
  name: "noop",
  description: "returns its input",
  input: Schema.Struct({ n: Schema.Number, text: Schema.String }),
  output: Schema.Struct({ n: Schema.Number, text: Schema.String }),
  semantics: "readOnly",
  timeoutMs: 10_000,
  run: (input) => Effect.succeed(input)
})
const tools = Executor.registry([noop], allowAll)
/** Fixed usage: the ScriptedModel would otherwise count the request's characters (a model cost, not the runtime's). */
const usage = { inputTokens: 10, outputTokens: 5 }
const callTurn = (n: number): ScriptedModel.ScriptedTurn => ({ text: "calling noop", toolCalls: [{ name: "noop", input: { n, text: "ok" } }], usage })
const answer: ScriptedModel.ScriptedTurn = { text: "done", usage }
/** The assistant entry's payload as the loop writes it (Agent.ts `record`). */
const turnPayload = { text: "calling noop", model: "scripted", stopReason: "toolUse" }
const expectSucceeded = (call: { readonly callId: string; readonly state: string }) => {
  if (call.state !== "succeeded") throw new Error(`call ${call.callId} ended ${call.state}`)
}

// --------------------------------------------------------------- (g) long runs

/** One cycle of the loop, turn k → k+1 (each in ms). */
interface Cycle {
  readonly total: number
  readonly model: number
  readonly record: number
  readonly calls: number
  readonly settle: number
  /** `assemble` (src/agent/Context.ts): from its `session.head` call to `turnStarted`, emitted as soon as it returns. */
  readonly assemble: number
  /** Entries `assemble` read through the session (cache hits included), and the time in those reads (part of `assemble`). */
  readonly entries: number
  readonly read: number
  readonly ask: number
}

interface LongRun {
  readonly ms: number
  /** From asking the model for turn k to asking it for turn k+1, k = 1 … turns − 1. */
  readonly deltas: Array<number>
  readonly cycles: Array<Cycle>
}

let branchSeq = 0
/** A fresh empty branch (fork at the root), made active: every run starts with an empty context. Not timed. */
const freshBranch = (session: Session.Session, tag: string) =>
  Effect.gen(function* () {
    const name = `${tag}-${branchSeq++}`
    yield* session.fork(0, name)
    yield* session.switchTo(name)
  })

/**
 * One run of `turns` turns on a fresh branch: turns 1 … turns−1 each propose
 * one no-op call, the last answers. With `instrument`, the model, the
 * agent's updates and `assemble` (through the session calls it makes: it
 * starts with `session.head`, then reads entries with `session.entries`) are
 * timed to split each cycle.
 */
const longRun = (session: Session.Session, turns: number, instrument: boolean) =>
  Effect.gen(function* () {
    yield* freshBranch(session, "long")
    const marks = {
      ask: [] as Array<number>,
      modelDone: [] as Array<number>,
      recorded: [] as Array<number>,
      callDone: [] as Array<number>,
      assembleStart: [] as Array<number>,
      turnStarted: [] as Array<number>,
      /** Per assemble (indexed like assembleStart): entries read, ms in the reads. */
      entries: [] as Array<number>,
      read: [] as Array<number>
    }
    const scripted = ScriptedModel.make((_request, index) => {
      marks.ask.push(now())
      return index < turns - 1 ? callTurn(index) : answer
    })
    const model: ModelShape = instrument
      ? {
          name: scripted.name,
          turn: (request, onProgress) => scripted.turn(request, onProgress).pipe(Effect.tap(() => Effect.sync(() => marks.modelDone.push(now()))))
        }
      : scripted
    const timedRead = <A, E>(read: Effect.Effect<A, E>, count: (a: A) => number): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const t = now()
        return Effect.tap(read, (a) =>
          Effect.sync(() => {
            const k = marks.assembleStart.length - 1
            if (k < 0) return
            marks.entries[k] = (marks.entries[k] ?? 0) + count(a)
            marks.read[k] = (marks.read[k] ?? 0) + (now() - t)
          })
        )
      })
    const target: Session.Session = instrument
      ? {
          ...session,
          head: (branch) =>
            Effect.suspend(() => {
              marks.assembleStart.push(now())
              return session.head(branch)
            }),
          entry: (id) => timedRead(session.entry(id), () => 1),
          entries: (ids) => timedRead(session.entries(ids), (entries) => entries.length)
        }
      : session
    const { authority } = yield* Authority.issue([Caveat.tools(["noop"])])
    const agent = yield* Agent.make(target, { authority, model, tools: [noop], budget: { turnsMax: turns } })
    if (instrument) {
      agent.subscribe((update) => {
        if (update._tag === "turnRecorded") marks.recorded.push(now())
        else if (update._tag === "toolCallFinished") marks.callDone.push(now())
        else if (update._tag === "turnStarted") marks.turnStarted.push(now())
      })
    }
    const t = now()
    const outcome = yield* agent.run("go")
    const ms = now() - t
    if (outcome.state !== "done" || outcome.turns !== turns) throw new Error(`a ${turns}-turn run ended ${outcome.state} after ${outcome.turns} turns`)
    const deltas: Array<number> = []
    for (let k = 1; k < marks.ask.length; k++) deltas.push((marks.ask[k] as number) - (marks.ask[k - 1] as number))
    const cycles: Array<Cycle> = []
    if (instrument) {
      // One `session.head` per assemble, one assemble per turn: anything else means the marks do not line up.
      if (marks.assembleStart.length !== turns)
        throw new Error(`instrumentation: ${marks.assembleStart.length} assembles (session.head calls) for ${turns} turns`)
      const at = (xs: Array<number>, k: number) => xs[k] as number
      for (let k = 0; k < turns - 1; k++) {
        cycles.push({
          total: at(marks.ask, k + 1) - at(marks.ask, k),
          model: at(marks.modelDone, k) - at(marks.ask, k),
          record: at(marks.recorded, k) - at(marks.modelDone, k),
          calls: at(marks.callDone, k) - at(marks.recorded, k),
          settle: at(marks.assembleStart, k + 1) - at(marks.callDone, k),
          assemble: at(marks.turnStarted, k + 1) - at(marks.assembleStart, k + 1),
          entries: marks.entries[k + 1] ?? 0,
          read: marks.read[k + 1] ?? 0,
          ask: at(marks.ask, k + 1) - at(marks.turnStarted, k + 1)
        })
      }
    }
    return { ms, deltas, cycles } satisfies LongRun
  })

/** The tool-call protocol alone, as a turn runs it: propose one call (timed apart), then Executor.runCall (timed). */
const protocolLoop = (session: Session.Session, n: number, tag: string) =>
  Effect.gen(function* () {
    yield* freshBranch(session, "proto")
    const propose: Array<number> = []
    const call: Array<number> = []
    const runOptions: Executor.RunOptions = { concurrency: 4, onStart: () => undefined }
    for (let i = 0; i < n; i++) {
      const callId = `${tag}_t${i}_c1`
      const t0 = now()
      yield* session.propose("assistant", turnPayload, [{ callId, tool: noop.name, input: { n: i, text: "ok" } }])
      const t1 = now()
      const done = yield* Executor.runCall(session, tools, callId, runOptions)
      call.push(now() - t1)
      propose.push(t1 - t0)
      expectSucceeded(done)
    }
    return { propose, call }
  })

/** One durable session.append of an entry the size of the loop's assistant entry. */
const appendLoop = (session: Session.Session, n: number) =>
  Effect.gen(function* () {
    yield* freshBranch(session, "append")
    const lat: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = now()
      yield* session.append("note", turnPayload)
      lat.push(now() - t)
    }
    return lat
  })

/** Text-only runs: 1 turn, no tools (user entry + run start, then the turn + run done: 2 durable batches); each on a fresh branch. */
const textLoop = (session: Session.Session, n: number) =>
  Effect.gen(function* () {
    const { authority } = yield* Authority.issue([Caveat.tools(["noop"])])
    const agent = yield* Agent.make(session, { authority, model: ScriptedModel.make(() => ({ text: "hello", usage })), tools: [noop] })
    const lat: Array<number> = []
    for (let i = 0; i < n; i++) {
      yield* freshBranch(session, "text")
      const t = now()
      const outcome = yield* agent.run("hi")
      lat.push(now() - t)
      if (outcome.state !== "done" || outcome.turns !== 1) throw new Error(`a text-only run ended ${outcome.state}`)
    }
    return lat
  })

interface GResult {
  readonly runs: Array<LongRun>
  readonly instrumented: LongRun
  /** `assemble` of the instrumented run's branch (200 entries, all in the session's entry cache), repeated: ms per call. */
  readonly context: { readonly entries: number; readonly ms: Array<number> }
  readonly propose: Array<number>
  readonly call: Array<number>
  readonly append: Array<number>
  readonly text: Array<number>
}

async function measureG(dir: string, durability: Durability, log: (m: string) => void): Promise<GResult> {
  const turns = 200
  const rounds = 3
  const perRound = { protocol: 200, append: 200, text: 50 }
  return run(
    Effect.gen(function* () {
      const session = yield* Session.openFile(nodePath.join(dir, `${durability}-session`), { owner: "bench-g", durability })
      // Warm-up: the same code paths, not measured.
      yield* longRun(session, 50, false)
      yield* protocolLoop(session, 50, "w")
      yield* appendLoop(session, 50)
      yield* textLoop(session, 20)
      const out = {
        runs: [] as Array<LongRun>,
        propose: [] as Array<number>,
        call: [] as Array<number>,
        append: [] as Array<number>,
        text: [] as Array<number>
      }
      const order = ["run", "protocol", "append", "text"] as const
      for (let r = 0; r < rounds; r++) {
        // Rotate the order so drift (disk, CPU frequency, other tenants) hits every variant alike.
        for (let k = 0; k < order.length; k++) {
          const name = order[(k + r) % order.length] as (typeof order)[number]
          if (name === "run") out.runs.push(yield* longRun(session, turns, false))
          else if (name === "protocol") {
            const result = yield* protocolLoop(session, perRound.protocol, `p${r}`)
            out.propose.push(...result.propose)
            out.call.push(...result.call)
          } else if (name === "append") out.append.push(...(yield* appendLoop(session, perRound.append)))
          else out.text.push(...(yield* textLoop(session, perRound.text)))
        }
        const last = out.runs.at(-1)
        log(
          `  ${durability} round ${r + 1}: turn p50 ${dur(p(last?.deltas ?? [], 50))} (run ${dur(last?.ms ?? Number.NaN)}), runCall p50 ${dur(p(out.call, 50))}, append p50 ${dur(p(out.append, 50))}, text-only run p50 ${dur(p(out.text, 50))}`
        )
      }
      const instrumented = yield* longRun(session, turns, true)
      // The context of that branch (the run's 200 entries), assembled again and again: its cost per entry.
      const context = { entries: 0, ms: [] as Array<number> }
      const branch = session.activeBranch()
      context.entries = session.tree().pathTo(yield* session.head(branch)).length
      for (let i = 0; i < 60; i++) {
        const t = now()
        yield* assemble(session, branch, 0)
        if (i >= 10) context.ms.push(now() - t)
      }
      return { ...out, instrumented, context }
    })
  )
}

/** p50 of each step of the cycles (each step's own median; they need not add up to the total's median). */
function breakdown(cycles: ReadonlyArray<Cycle>): string {
  const m = (f: (c: Cycle) => number) => dur(median(cycles.map(f)))
  return (
    `turn record (propose, durable) ${m((c) => c.record)} → tool call (runCall) ${m((c) => c.calls)} → settle/loop ${m((c) => c.settle)} → ` +
    `assemble ${m((c) => c.assemble)} (${num(median(cycles.map((c) => c.entries)))} entries, reading them ${m((c) => c.read)}) → model port ${m((c) => c.ask)}; model itself ${m((c) => c.model)}`
  )
}

export async function sectionG(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  const dir = tempDir("g")
  const results = {} as Record<Durability, GResult>
  for (const durability of ["fsync", "os"] as const) {
    log(`(g) agent loop, 200-turn runs + tool-call protocol + appends + text-only runs, durability ${durability}`)
    results[durability] = await measureG(dir, durability, log)
  }
  const early = (r: LongRun) => r.deltas.slice(0, 20)
  const late = (r: LongRun) => r.deltas.slice(-20)
  for (const durability of ["fsync", "os"] as const) {
    const g = results[durability]
    const deltas = g.runs.flatMap((r) => r.deltas)
    const turn = { p50: p(deltas, 50), p90: p(deltas, 90), mean: median(g.runs.map((r) => r.ms / 200)), max: Math.max(...deltas) }
    const call = p(g.call, 50)
    const append = p(g.append, 50)
    const overhead = turn.p50 - call
    const fsync = durability === "fsync"
    rows.push({
      id: fsync ? "g1" : "g2",
      measure: fsync
        ? `Agent loop overhead per turn, fsync: ${g.runs.length} runs × 200 turns (ScriptedModel, immediate; 1 call of a no-op readOnly tool per turn, the last answers), each on an empty branch. overhead = turn p50 (model asked for turn k → asked for k+1) − Executor.runCall p50 (same no-op call, same session): the turn record (1 durable batch), settling, assemble (the context), the model port`
        : `  same, durability "os" (write, no fsync); same definition of overhead`,
      result: `overhead ${dur(overhead)} (turn ${p5090(deltas)}, mean per turn ${dur(turn.mean)}, max ${dur(turn.max)}; runCall ${p5090(g.call)})`,
      baseline: `1 durable session.append (${fsync ? "fsync" : '"os"'}), same session: ${p5090(g.append)}`,
      ratio: `${ratio(overhead / append)} one append (beyond the turn record's own append: ${dur(overhead - append)})`,
      target: fsync ? "≤ 1.5× one durable append" : "< 1 ms",
      status: verdict(fsync ? overhead / append <= 1.5 : overhead < 1)
    })
  }
  for (const durability of ["fsync", "os"] as const) {
    const g = results[durability]
    const call = p(g.call, 50)
    const append = p(g.append, 50)
    const e = g.runs.flatMap(early)
    const l = g.runs.flatMap(late)
    rows.push({
      id: durability === "fsync" ? "g3" : "g3b",
      measure: `  overhead vs context length, ${durability}: cycles into turns 2–21 (context of 2–21 entries) vs turns 181–200 (181–200 entries)`,
      result: `early: turn p50 ${dur(p(e, 50))} → overhead ${dur(p(e, 50) - call)}; late: turn p50 ${dur(p(l, 50))} → overhead ${dur(p(l, 50) - call)}`,
      baseline: `1 append ${dur(append)}; runCall ${dur(call)}`,
      ratio: `early ${ratio((p(e, 50) - call) / append)}, late ${ratio((p(l, 50) - call) / append)} one append`,
      target: durability === "fsync" ? "(≤ 1.5×)" : "(< 1 ms)",
      status: "info"
    })
  }
  for (const durability of ["fsync", "os"] as const) {
    const c = results[durability].instrumented.cycles
    rows.push({
      id: durability === "fsync" ? "g4" : "g4b",
      measure: `  where a turn goes, ${durability} (instrumented 200-turn run, p50 of each step over turns 1–199; last 20 turns in brackets)`,
      result: `${breakdown(c)} [late: ${breakdown(c.slice(-20))}]`,
      baseline: `cycle p50 ${dur(median(c.map((x) => x.total)))} [late ${dur(median(c.slice(-20).map((x) => x.total)))}]`,
      ratio: `in-loop overhead (cycle − tool call) p50 ${dur(median(c.map((x) => x.total - x.calls)))} [late ${dur(median(c.slice(-20).map((x) => x.total - x.calls)))}]`,
      target: "—",
      status: "info"
    })
  }
  for (const durability of ["fsync", "os"] as const) {
    const g = results[durability]
    const append = p(g.append, 50)
    const text = p(g.text, 50)
    rows.push({
      id: durability === "fsync" ? "g5" : "g5b",
      measure: `${durability === "fsync" ? "" : "  "}Text-only run, ${durability}: agent.run (user entry + run start, then turn + run done: 2 durable batches), 1 turn, no tools, n=${g.text.length}`,
      result: `${p5090(g.text)} per run; overhead above 2 appends ${dur(text - 2 * append)}`,
      baseline: `2 × session.append p50 = ${dur(2 * append)}`,
      ratio: `${ratio(text / (2 * append))} 2 appends`,
      target: "—",
      status: "info"
    })
  }
  const f = results.fsync
  const o = results.os
  const osDeltas = o.runs.flatMap((r) => r.deltas)
  const osOverhead = p(osDeltas, 50) - p(o.call, 50)
  const perEntry = (g: GResult) => (median(g.context.ms) / Math.max(1, g.context.entries)) * 1000
  rows.push({
    id: "g6",
    measure: "  tool-call protocol alone (no-op readOnly tool): session.propose of 1 call, then Executor.runCall (started + succeeded, each durable)",
    result: `runCall fsync ${p5090(f.call)}; "os" ${p5090(o.call)}`,
    baseline: `propose (entry + 1 call, the turn record's batch without agent.turn.recorded): fsync ${p5090(f.propose)}; "os" ${p5090(o.propose)}`,
    ratio: `runCall ${ratio(p(f.call, 50) / p(f.append, 50))} / ${ratio(p(o.call, 50) / p(o.append, 50))} one append`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "g7",
    measure: `  assemble of a ${o.context.entries}-entry branch (the instrumented run's; its entries in the session's cache, as in the loop), in-process, warm, n=${o.context.ms.length}`,
    result: `"os" p50 ${dur(median(o.context.ms))} = ${num(perEntry(o), 1)} µs/entry; fsync session p50 ${dur(median(f.context.ms))} = ${num(perEntry(f), 1)} µs/entry`,
    baseline: `"os" overhead per turn (g2) ${dur(osOverhead)}`,
    ratio: `${num(1000 / Math.max(perEntry(o), 0.001), 0)} entries per 1 ms`,
    target: "—",
    status: "info"
  })
}

// --------------------------------------------------------------- (h) resume a 10,000-turn session

const resumeTurns = 10_000
const turnsPerRun = 1000
const bigText = (n: number) => `Turn ${n}: let me look at the next file and check what it says about the build. `.padEnd(120, ".")

/**
 * Writes `resumeTurns` turns in runs of `turnsPerRun`, with exactly the
 * records the agent loop writes (Agent.ts: user entry + agent.run.started;
 * per turn session.propose with the turn record, then Executor.runCall; the
 * last turn of a run answers, with agent.run.done), without asking a model or
 * assembling contexts (that would make the build quadratic).
 */
export async function buildTurns(dir: string, log: (m: string) => void): Promise<{ ms: number; records: number; head: number }> {
  const t0 = now()
  let head = 0
  await run(
    Effect.gen(function* () {
      const session = yield* Session.openFile(dir, { owner: "bench-h-build", durability: "os" })
      const budget = { ...Agent.defaultBudget, turnsMax: turnsPerRun }
      const runOptions: Executor.RunOptions = { concurrency: 4 }
      let written = 0
      for (let r = 0; written < resumeTurns; r++) {
        const runId = `run${session.runs().size + 1}`
        yield* session.append("user", { text: `task ${r + 1}: go through the repository and summarise it` }, { run: { runId, budget } })
        for (let turn = 1; turn <= turnsPerRun && written < resumeTurns; turn++) {
          const final = turn === turnsPerRun || written + 1 === resumeTurns
          const calls = final ? [] : [{ callId: `${runId}_t${turn}_c1`, tool: noop.name, input: { n: written, text: bigText(written) } }]
          yield* session.propose("assistant", { text: bigText(written), model: "scripted", stopReason: final ? "end" : "toolUse" }, calls, {
            turn: { runId, turn, inputTokens: 1000 + turn, outputTokens: 50, final }
          })
          for (const call of calls) expectSucceeded(yield* Executor.runCall(session, tools, call.callId, runOptions))
          written++
        }
        if (session.runs().active() !== undefined) throw new Error(`run ${runId} did not end`)
        log(`  ${num(written)} turns`)
      }
      head = session.fence().head
    })
  ) // closing the scope suspends the session and writes the checkpoint
  return { ms: now() - t0, records: head, head }
}

interface ResumeReport {
  readonly ok: boolean
  readonly error?: string
  readonly bootMs: number
  readonly importMs: number
  readonly openMs: number
  readonly makeMs: number
  readonly runStartedMs: number
  readonly assembleStartMs: number
  readonly turnStartedMs: number
  readonly askMs: number
  readonly assembleEntries: number
  readonly assembleReads: number
  readonly assembleReadMs: number
  readonly messages: number
  readonly omitted: number
  readonly turnsBefore: number
  readonly runsBefore: number
  readonly head: number
  readonly outcome: string
  readonly closeMs: number
  readonly processMs: number
  readonly wallMs: number
}

const root = fileURLToPath(new URL("..", import.meta.url))
const nodeBinCandidate = nodePath.join(root, "node_modules", ".bin", "node")
const nodeBin = fs.existsSync(nodeBinCandidate) ? nodeBinCandidate : process.execPath
const childScript = fileURLToPath(new URL("./agent-child.ts", import.meta.url))

function resumeInChild(dir: string): ResumeReport {
  const t = now()
  const child = spawnSync(nodeBin, [childScript, dir], { cwd: root, encoding: "utf8", timeout: 120_000 })
  const wallMs = now() - t
  const line = (child.stdout ?? "").trim().split("\n").pop() ?? ""
  try {
    return { ...(JSON.parse(line) as ResumeReport), wallMs }
  } catch {
    return { ok: false, error: `exit ${child.status}: ${(child.stderr ?? "").slice(0, 300)}`, wallMs } as ResumeReport
  }
}

const segmentFiles = (dir: string) =>
  fs
    .readdirSync(nodePath.join(dir, "segments"))
    .filter((n) => n.endsWith(".seg"))
    .sort()
    .map((n) => nodePath.join(dir, "segments", n))

/** p50 of each phase, as consecutive spans from the start of work. */
function phases(reports: ReadonlyArray<ResumeReport>): string {
  const m = (f: (r: ResumeReport) => number) => dur(median(reports.map(f)))
  return (
    `open ${m((r) => r.openMs)} → Agent.make ${m((r) => r.makeMs - r.openMs)} → user entry durable ${m((r) => r.runStartedMs - r.makeMs)} → ` +
    `loop start ${m((r) => r.assembleStartMs - r.runStartedMs)} → assemble ${m((r) => r.turnStartedMs - r.assembleStartMs)} ` +
    `(${num(median(reports.map((r) => r.assembleEntries)))} entries read in ${num(median(reports.map((r) => r.assembleReads)))} call(s), reading ${m((r) => r.assembleReadMs)}; ` +
    `${num(median(reports.map((r) => r.messages)))} messages, ${num(median(reports.map((r) => r.omitted)))} entries left out) → model port ${m((r) => r.askMs - r.turnStartedMs)}`
  )
}

interface Attribution {
  /** assemble of the active branch on a fresh reader (empty entry cache): entries it read, ms; then again (entries cached). */
  readonly assembleEntries: number
  readonly assembleMs: number
  readonly assembleCachedMs: number
  /** session.path of the whole branch on a fresh reader (every entry read from the journal), then again (cached). */
  readonly entries: number
  readonly pathMs: number
  readonly pathCachedMs: number
  readonly openMs: number
  readonly frames: number
  readonly crcMs: number
  readonly parseMs: number
  readonly decodeMs: number
  readonly checkpointBytes: number
  readonly checkpointCrcMs: number
  readonly checkpointParseMs: number
}

const best = (n: number, f: () => number) => Math.min(...Array.from({ length: n }, f))

/**
 * Where the resume's time goes, measured in this process (warm page cache):
 * a fresh reader opens the session and runs `assemble` (what the loop does
 * for a turn) with an empty entry cache, then again with the entries cached;
 * another fresh reader reads the whole branch (`session.path`), every entry
 * from the journal. The frames of all entries are decoded again outside the
 * journal (crc32c, JSON.parse, the codec's decodePayloadBytes) to split the
 * per-entry cost; the checkpoint's crc32c and JSON.parse are timed alone.
 */
async function attribute(dir: string): Promise<Attribution> {
  const out = {
    assembleEntries: 0,
    assembleMs: Number.POSITIVE_INFINITY,
    assembleCachedMs: Number.POSITIVE_INFINITY,
    entries: 0,
    pathMs: Number.POSITIVE_INFINITY,
    pathCachedMs: Number.POSITIVE_INFINITY,
    openMs: Number.POSITIVE_INFINITY
  }
  await run(
    Effect.gen(function* () {
      for (let i = 0; i < 3; i++) {
        let t = now()
        const session = yield* Session.openFile(dir, { writer: false })
        out.openMs = Math.min(out.openMs, now() - t)
        let read = 0
        const counted: Session.Session = {
          ...session,
          entry: (id) => Effect.tap(session.entry(id), () => Effect.sync(() => read++)),
          entries: (ids) => Effect.tap(session.entries(ids), (entries) => Effect.sync(() => (read += entries.length)))
        }
        const branch = session.activeBranch()
        // keepFrom = the head (the loop passes its run's user entry, the head or close to it): the walk stops at the budget.
        const head = yield* session.head(branch)
        t = now()
        yield* assemble(counted, branch, head)
        out.assembleMs = Math.min(out.assembleMs, now() - t)
        out.assembleEntries = read
        t = now()
        yield* assemble(counted, branch, head)
        out.assembleCachedMs = Math.min(out.assembleCachedMs, now() - t)
        const other = yield* Session.openFile(dir, { writer: false })
        t = now()
        const entries = yield* other.path()
        out.pathMs = Math.min(out.pathMs, now() - t)
        out.entries = entries.length
        t = now()
        yield* other.path()
        out.pathCachedMs = Math.min(out.pathCachedMs, now() - t)
      }
    })
  )
  // The frames that hold an entry (what session.path reads).
  const payloads: Array<Uint8Array> = []
  for (const file of segmentFiles(dir)) {
    const data = new Uint8Array(fs.readFileSync(file))
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    for (let offset = headerBytes; offset + frameHeaderBytes <= data.length; ) {
      const n = view.getUint32(offset, true)
      const payload = data.subarray(offset + frameHeaderBytes, offset + frameHeaderBytes + n)
      const record = JSON.parse(new TextDecoder().decode(payload)) as { r: Array<{ _tag: string }> }
      if (record.r.some((e) => e._tag === "entry.appended")) payloads.push(payload)
      offset += frameHeaderBytes + n
    }
  }
  const decoder = new TextDecoder()
  const crcMs = best(3, () => {
    const t = now()
    for (const x of payloads) crc32c(x)
    return now() - t
  })
  const parseMs = best(3, () => {
    const t = now()
    for (const x of payloads) JSON.parse(decoder.decode(x))
    return now() - t
  })
  const migrations = new Map()
  const decodeMs = best(3, () => {
    const t = now()
    for (const x of payloads) decodePayloadBytes(x, migrations)
    return now() - t
  })
  const checkpointFile = nodePath.join(dir, "checkpoint")
  const checkpoint = fs.existsSync(checkpointFile) ? new Uint8Array(fs.readFileSync(checkpointFile)) : new Uint8Array(4)
  const checkpointCrcMs = best(3, () => {
    const t = now()
    crc32c(checkpoint.subarray(4))
    return now() - t
  })
  const checkpointParseMs = best(3, () => {
    const t = now()
    JSON.parse(decoder.decode(checkpoint.subarray(4)))
    return now() - t
  })
  return { ...out, frames: payloads.length, crcMs, parseMs, decodeMs, checkpointBytes: checkpoint.length, checkpointCrcMs, checkpointParseMs }
}

export async function sectionH(rows: Array<Row>, log: (message: string) => void): Promise<void> {
  const dir = nodePath.join(tempDir("h"), "session")
  log(`(h) building a ${num(resumeTurns)}-turn session (durability "os") in ${dir}`)
  const built = await buildTurns(dir, log)
  const size = filesSize(nodePath.join(dir, "segments"))
  const checkpoint = nodePath.join(dir, "checkpoint")
  const checkpointBytes = fs.existsSync(checkpoint) ? fs.statSync(checkpoint).size : 0
  rows.push({
    id: "h0",
    measure: `setup: ${num(resumeTurns)} turns in ${resumeTurns / turnsPerRun} runs of ${turnsPerRun} (the loop's records, written straight through the session; 1 no-op call per turn but the last of each run), "os"`,
    result: `${dur(built.ms)}; ${num(built.records)} records, ${bytes(size.bytes)} in ${size.files} segment(s), checkpoint ${bytes(checkpointBytes)}`,
    baseline: "—",
    ratio: "—",
    target: "—",
    status: "info"
  })

  const reps = { checkpoint: 5, rebuild: 3, warm: 3 }
  const methods = new Set<string>()
  const residencies: Array<number> = []
  const cold = () => {
    const files = [...segmentFiles(dir), ...(fs.existsSync(checkpoint) ? [checkpoint] : [])]
    methods.add(dropCaches(files))
    const res = residency(files)
    if (res !== undefined) residencies.push(res)
  }
  const results = { checkpoint: [] as Array<ResumeReport>, rebuild: [] as Array<ResumeReport>, warm: [] as Array<ResumeReport> }
  const record = (key: keyof typeof results, report: ResumeReport, i: number) => {
    if (report.ok) results[key].push(report)
    log(
      `  ${key} #${i + 1}: ${report.ok ? `first new turn asked after ${dur(report.askMs)} (open ${dur(report.openMs)}, assemble ${dur(report.turnStartedMs - report.assembleStartMs)}: ${num(report.assembleEntries)} entries read; ${report.turnsBefore} turns before; ${report.outcome})` : `ERROR ${report.error}`}`
    )
  }
  resumeInChild(dir) // one unmeasured child: the first open after the "os" build, and a checkpoint by a clean writer close
  for (let i = 0; i < reps.checkpoint; i++) {
    cold()
    record("checkpoint", resumeInChild(dir), i)
  }
  for (let i = 0; i < reps.warm; i++) record("warm", resumeInChild(dir), i)
  for (let i = 0; i < reps.rebuild; i++) {
    fs.rmSync(checkpoint, { force: true })
    cold()
    record("rebuild", resumeInChild(dir), i)
  }
  // Same-run floor: reading every segment byte cold, nothing else.
  cold()
  const t = now()
  let read = 0
  for (const file of segmentFiles(dir)) read += fs.readFileSync(file).length
  const readAllMs = now() - t

  const method = [...methods].join("+")
  const maxRes = residencies.length > 0 ? Math.max(...residencies) : undefined
  const coldText =
    method === "drop_caches"
      ? `page cache dropped (drop_caches) before each${maxRes !== undefined ? `, session data resident before open ≤ ${(maxRes * 100).toFixed(1)}%` : ""}`
      : method === "fadvise"
        ? `drop_caches refused; session files evicted with fadvise(DONTNEED)${maxRes !== undefined ? `, resident ≤ ${(maxRes * 100).toFixed(1)}%` : ""}`
        : "caches NOT dropped (warm)"
  const summary = (list: ReadonlyArray<ResumeReport>) => {
    const ask = list.map((r) => r.askMs)
    return {
      p50: median(ask),
      max: Math.max(...ask),
      min: Math.min(...ask),
      boot: median(list.map((r) => r.bootMs + r.importMs)),
      wall: median(list.map((r) => r.wallMs))
    }
  }
  const c = results.checkpoint
  if (c.length === 0) {
    rows.push({
      id: "h1",
      measure: "Resume → first new turn",
      result: "ERROR: no successful child",
      baseline: "—",
      ratio: "—",
      target: "< 200 ms",
      status: "ERROR"
    })
  } else {
    const s = summary(c)
    rows.push({
      id: "h1",
      measure: `Resume a ${num(c[0]?.turnsBefore ?? resumeTurns)}-turn session → model asked for the first new turn: fresh process, cold cache, with checkpoint; Session.openFile (writer, fsync), Agent.make, agent.run("next"), n=${c.length}`,
      result: `p50 ${dur(s.p50)}, max ${dur(s.max)} (min ${dur(s.min)}), from the start of work (before open); node boot+import ${dur(s.boot)}, process wall ${dur(s.wall)}`,
      baseline: `open alone p50 ${dur(median(c.map((r) => r.openMs)))}; cold read of all segment bytes ${dur(readAllMs)} (${bytes(read)})`,
      ratio: `${ratio(s.p50 / 200)} target`,
      target: "< 200 ms (p50)",
      status: verdict(s.p50 < 200)
    })
    rows.push({
      id: "h2",
      measure: "  where the time goes (p50 of each step, from the start of work)",
      result: phases(c),
      baseline: `close after the run (suspend + checkpoint) ${dur(median(c.map((r) => r.closeMs)))}`,
      ratio: "—",
      target: "—",
      status: "info"
    })
  }
  const w = results.warm
  if (w.length > 0) {
    rows.push({
      id: "h3",
      measure: `  same, warm page cache (fresh process, checkpoint), n=${w.length}`,
      result: `p50 ${dur(summary(w).p50)}, max ${dur(summary(w).max)}; ${phases(w)}`,
      baseline: c.length > 0 ? `cold (h1) p50 ${dur(summary(c).p50)}` : "—",
      ratio: "—",
      target: "(< 200 ms)",
      status: "info"
    })
  }
  const rb = results.rebuild
  if (rb.length > 0) {
    rows.push({
      id: "h4",
      measure: `  same without a checkpoint (deleted: the open replays the whole log), cold, n=${rb.length}`,
      result: `p50 ${dur(summary(rb).p50)}, max ${dur(summary(rb).max)}; ${phases(rb)}`,
      baseline: c.length > 0 ? `with checkpoint (h1) p50 ${dur(summary(c).p50)}` : "—",
      ratio: c.length > 0 ? ratio(summary(rb).p50 / summary(c).p50) : "—",
      target: "(< 200 ms)",
      status: "info"
    })
  }
  rows.push({
    id: "h5",
    measure: `  cache state for h1, h4: ${coldText}; each child adds 1 run of 1 turn to the session`,
    result: "—",
    baseline: "—",
    ratio: "—",
    target: "—",
    status: "info"
  })
  const a = await attribute(dir)
  rows.push({
    id: "h6",
    measure: `  reading entries, in-process, warm page cache, fresh reader (empty entry cache), best of 3: assemble (the loop's context of a turn), and session.path of the whole branch, split by what each entry read costs`,
    result: `assemble ${dur(a.assembleMs)} reading ${num(a.assembleEntries)} entries = ${num((a.assembleMs / Math.max(1, a.assembleEntries)) * 1000, 1)} µs/entry (again, cached: ${dur(a.assembleCachedMs)}); session.path of all ${num(a.entries)} entries ${dur(a.pathMs)} = ${num((a.pathMs / Math.max(1, a.entries)) * 1000, 1)} µs/entry (again, cached: ${dur(a.pathCachedMs)})`,
    baseline: `the same ${num(a.frames)} frames decoded outside the journal: crc32c ${dur(a.crcMs)}, utf-8 + JSON.parse ${dur(a.parseMs)}, decodePayloadBytes (parse + Schema validation of every event) ${dur(a.decodeMs)}`,
    ratio: `decode ${((a.decodeMs / a.pathMs) * 100).toFixed(0)}%, crc ${((a.crcMs / a.pathMs) * 100).toFixed(0)}% of uncached path`,
    target: "—",
    status: "info"
  })
  rows.push({
    id: "h7",
    measure: "  open with the checkpoint, in-process, warm (best of 3): a read-only open, and the checkpoint's own costs",
    result: `open (reader) ${dur(a.openMs)}; checkpoint ${bytes(a.checkpointBytes)}: crc32c ${dur(a.checkpointCrcMs)}, utf-8 + JSON.parse ${dur(a.checkpointParseMs)}`,
    baseline: c.length > 0 ? `cold writer open in the child (h1) p50 ${dur(median(c.map((r) => r.openMs)))}` : "—",
    ratio: "—",
    target: "—",
    status: "info"
  })
}
