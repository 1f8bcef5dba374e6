// Shared by the tool-call and agent crash tests (toolcalls.test.ts, agent.test.ts) and their child
// processes (toolcaller.ts, agentrunner.ts):
// the ledger — a file outside the journal where every tool appends one line per REAL execution, so
// it is the ground truth of the outside world — the tools that write it (one or two per semantics,
// with and without reconcile), and the checks that hold a journal against its ledger.
//
// A ledger line is written with O_APPEND and fsync'd before the tool goes on: a line is in the file
// iff the execution reached the world. One small write(2) per line, so a SIGKILL never tears a line.
import * as fs from "node:fs"
import { Effect, Schema } from "effect"
import type { Committed } from "../../src/journal/Journal.ts"
import * as Tool from "../../src/toolcall/Tool.ts"

/** One real execution of a tool, as the world saw it. */
export interface LedgerLine {
  readonly key: string
  readonly callId: string
  readonly attempt: number
  readonly tool: string
  /** The process that ran it (agent.test.ts: the incarnation), when the tools were told. */
  readonly incarnation?: number
}

/** Appends one line and fsyncs it before resolving (the execution is then a fact of the world). */
export function appendLedger(file: string, line: LedgerLine): Promise<void> {
  return appendJsonLine(file, line)
}

export function readLedger(file: string): Array<LedgerLine> {
  return readJsonLines<LedgerLine>(file)
}

/** Appends `value` as one JSON line (one write(2), O_APPEND) and fsyncs it before resolving. */
export async function appendJsonLine(file: string, value: unknown): Promise<void> {
  const handle = await fs.promises.open(file, "a")
  try {
    await handle.write(JSON.stringify(value) + "\n")
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The JSON lines of `file` ([] if it does not exist). */
export function readJsonLines<A>(file: string): Array<A> {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return []
    throw e
  }
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as A)
}

/**
 * What a call asks of its tool, decided by the proposer's seeded PRNG so the parent can replay it:
 * `before`/`after` ms around the ledger write (per attempt, cycled), `fail` attempts that fail with
 * a retryable error (readOnly/idempotent: after the effect, a response lost after the server
 * committed; compensatable/unsafe: before it, a rate limit), `decline` a non-retryable refusal
 * before the effect (compensatable/unsafe).
 */
export const CallInput = Schema.Struct({
  n: Schema.Int,
  before: Schema.Array(Schema.Int),
  after: Schema.Array(Schema.Int),
  fail: Schema.Int,
  decline: Schema.Boolean
})
export type CallInput = typeof CallInput.Type
const CallOutput = Schema.Struct({ n: Schema.Int, by: Schema.String })

export interface ToolInfo {
  readonly semantics: Tool.Semantics
  readonly reconcile: boolean
  readonly attemptsMax: number
}

/** Every tool of the test, by name: its semantics, whether it reconciles, its attempt budget. */
export const toolTable: Readonly<Record<string, ToolInfo>> = {
  lookup: { semantics: "readOnly", reconcile: false, attemptsMax: 3 },
  put: { semantics: "idempotent", reconcile: false, attemptsMax: 3 },
  book: { semantics: "compensatable", reconcile: true, attemptsMax: 1 },
  hold: { semantics: "compensatable", reconcile: false, attemptsMax: 1 },
  charge: { semantics: "unsafe", reconcile: true, attemptsMax: 1 },
  send: { semantics: "unsafe", reconcile: false, attemptsMax: 1 }
}
export const toolNames = Object.keys(toolTable)

/**
 * Self-tests of the checks: each breaks the child on purpose in a way the crash test must catch
 * (TOOLCALLS_SABOTAGE=<mode> in the parent's environment).
 * - early-ledger:  the world sees attempt 1 before its started record is durable (WAL broken);
 * - rerun-unsafe:  recovery runs in-doubt compensatable/unsafe calls again by calling the tool;
 * - attempt-key:   tools send a key per attempt instead of the call's key;
 * - skip-recover:  the child does not recover in-doubt calls, but says it did.
 */
export type Sabotage = "" | "early-ledger" | "rerun-unsafe" | "attempt-key" | "skip-recover"

/** What the parent sends the child on stdin (one JSON line) once the child has loaded. */
export interface ToolCallerConfig {
  readonly dir: string
  readonly ledger: string
  readonly owner: string
  readonly seed: number
  readonly sabotage: Sabotage
}

/** What agent.test.ts sends its child (agentrunner.ts) on stdin (one JSON line) once the child has loaded. */
export interface AgentRunnerConfig {
  readonly dir: string
  readonly ledger: string
  /** One fsync'd line per model call (AskLine), written before the model answers. */
  readonly asks: string
  /** This process's number (0, 1, …): it names the lease owner, the ledger lines and the ask lines. */
  readonly incarnation: number
  /** Varies the script between seeds; the same for every incarnation on one folder (the script stays a function of the request). */
  readonly salt: number
  /** Seeds the child's own sleeps (approvals). */
  readonly seed: number
  /** Prompts in all: the child starts runs until the session holds this many. */
  readonly runs: number
  /** Exit once every run is done (the last incarnation); otherwise wait to be killed. */
  readonly exit: boolean
  /** Unsafe calls (each asks a person) the script proposes in one turn at most; the others are readOnly or idempotent. */
  readonly unsafePerTurnMax: number
  readonly sabotage: AgentSabotage
}

/**
 * Self-tests of agent.test.ts's checks (AGENT_SABOTAGE=<mode> in the parent's environment):
 * - reask:      an incarnation's first model call for turn t > 1 also asks for turn t − 1 (an off-by-one resume);
 * - early-tool: the world sees the first attempts of a turn's calls before the turn is durable (TurnWal broken).
 */
export type AgentSabotage = "" | "reask" | "early-tool"

/** One model call, as the model saw it: `turn` from the request (assistant messages since the prompt + 1), `runTurn` from the run's fold. */
export interface AskLine {
  readonly incarnation: number
  readonly runId: string
  readonly turn: number
  readonly runTurn: number
}

const sleep = (ms: number) => (ms <= 0 ? Effect.void : Effect.sleep(ms))
const at = (xs: ReadonlyArray<number>, attempt: number) => xs[(attempt - 1) % Math.max(1, xs.length)] ?? 0

/**
 * The tools, writing to `ledger`. With sabotage "early-ledger", attempt 1 is written by the caller (see toolcaller.ts).
 * With `incarnation`, every ledger line names the process that ran it.
 */
export function makeTools(ledger: string, sabotage: Sabotage = "", incarnation?: number): Array<Tool.AnyTool> {
  return toolNames.map((name) => {
    const info = toolTable[name] as ToolInfo
    const rerunnable = info.semantics === "readOnly" || info.semantics === "idempotent"
    const keyOf = (ctx: Tool.ToolContext) => (sabotage === "attempt-key" ? `${ctx.idempotencyKey}:${ctx.attempt}` : ctx.idempotencyKey)
    const execute = (ctx: Tool.ToolContext) =>
      sabotage === "early-ledger" && ctx.attempt === 1
        ? Effect.void
        : Effect.promise(() =>
            appendLedger(ledger, {
              key: keyOf(ctx),
              callId: ctx.callId,
              attempt: ctx.attempt,
              tool: name,
              ...(incarnation === undefined ? {} : { incarnation })
            })
          )
    const reconcile = (input: CallInput, ctx: Tool.ToolContext) =>
      Effect.sync(() =>
        readLedger(ledger).some((l) => l.key === ctx.idempotencyKey)
          ? { executed: true as const, output: { n: input.n, by: name } }
          : { executed: false as const }
      )
    return Tool.make({
      name,
      description: `${info.semantics} test tool`,
      input: CallInput,
      output: CallOutput,
      semantics: info.semantics,
      timeoutMs: 10_000,
      retry: rerunnable ? { attemptsMax: info.attemptsMax, baseMs: 2, capMs: 10 } : {},
      run: (input, ctx) =>
        Effect.gen(function* () {
          yield* sleep(at(input.before, ctx.attempt))
          if (!rerunnable && input.decline) return yield* new Tool.ToolFailure({ message: "declined", retryable: false })
          if (!rerunnable && ctx.attempt <= input.fail) return yield* new Tool.ToolFailure({ message: "rate limited", retryable: true })
          yield* execute(ctx)
          yield* sleep(at(input.after, ctx.attempt))
          if (rerunnable && ctx.attempt <= input.fail) return yield* new Tool.ToolFailure({ message: "connection reset after commit", retryable: true })
          return { n: input.n, by: name }
        }),
      ...(info.semantics === "compensatable" ? { compensate: () => Effect.void } : {}),
      ...(info.reconcile ? { reconcile } : {})
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Checking a journal against its ledger

/** How an attempt found without an outcome after a crash was resolved. */
export type Resolution = "rerun" | "reconciledExecuted" | "reconciledNotExecuted" | "closedUnknown"

export interface FolderStats {
  calls: number
  callsBySemantics: Record<string, number>
  executionsBySemantics: Record<string, number>
  attempts: number
  retries: number
  inDoubt: number
  resolved: Record<Resolution, number>
  /** Calls proposed in one process and first started by a later one (recovery ran them). */
  startedByRecovery: number
  outcomes: Record<string, number>
  duplicates: number
}

export const emptyStats = (): FolderStats => ({
  calls: 0,
  callsBySemantics: {},
  executionsBySemantics: {},
  attempts: 0,
  retries: 0,
  inDoubt: 0,
  resolved: { rerun: 0, reconciledExecuted: 0, reconciledNotExecuted: 0, closedUnknown: 0 },
  startedByRecovery: 0,
  outcomes: {},
  duplicates: 0
})

const bump = (record: Record<string, number>, key: string, by = 1) => {
  record[key] = (record[key] ?? 0) + by
}

export function addStats(into: FolderStats, from: FolderStats): void {
  into.calls += from.calls
  for (const [k, v] of Object.entries(from.callsBySemantics)) bump(into.callsBySemantics, k, v)
  for (const [k, v] of Object.entries(from.executionsBySemantics)) bump(into.executionsBySemantics, k, v)
  into.attempts += from.attempts
  into.retries += from.retries
  into.inDoubt += from.inDoubt
  for (const [k, v] of Object.entries(from.resolved)) into.resolved[k as Resolution] += v
  into.startedByRecovery += from.startedByRecovery
  for (const [k, v] of Object.entries(from.outcomes)) bump(into.outcomes, k, v)
  into.duplicates += from.duplicates
}

interface Started {
  readonly attempt: number
  readonly key: string
  readonly epoch: number
  readonly position: number
}

interface Outcome {
  readonly tag: string
  readonly attempt: number
  readonly epoch: number
  readonly position: number
  readonly reason: string
  readonly reconciled: boolean
  readonly retryable: boolean
}

export interface CallView {
  readonly callId: string
  readonly tool: string
  readonly epoch: number
  readonly started: Array<Started>
  readonly outcomes: Array<Outcome>
  compensated: number
}

/** The tool calls of a journal, folded independently of src/ (the checks must not trust the code they check). */
export function callsOf(records: ReadonlyArray<Committed>): Map<string, CallView> {
  const calls = new Map<string, CallView>()
  for (const r of records) {
    const e = r.event
    if (e._tag === "tool.call.proposed") {
      calls.set(e.callId, { callId: e.callId, tool: e.tool, epoch: r.epoch, started: [], outcomes: [], compensated: 0 })
      continue
    }
    if (!("callId" in e)) continue
    // Authority records (the check before a start) are not outcomes, except a call closed by it.
    if (
      e._tag === "tool.call.authorized" ||
      e._tag === "tool.call.awaitingApproval" ||
      e._tag === "tool.call.approved" ||
      e._tag === "tool.call.decisionIgnored"
    ) {
      continue
    }
    const call = calls.get(e.callId)
    if (call === undefined) throw new Error(`record ${r.position} (${e._tag}) names call ${e.callId}, never proposed`)
    if (e._tag === "tool.call.started") call.started.push({ attempt: e.attempt, key: e.key, epoch: r.epoch, position: r.position })
    else if (e._tag === "tool.call.compensated") call.compensated++
    else
      call.outcomes.push({
        tag: e._tag.slice("tool.call.".length),
        attempt: "attempt" in e ? e.attempt : 0,
        epoch: r.epoch,
        position: r.position,
        reason: e._tag === "tool.call.failed" ? e.reason : "",
        reconciled: e._tag === "tool.call.succeeded" ? e.reconciled : false,
        retryable: e._tag === "tool.call.failed" ? e.retryable : false
      })
  }
  return calls
}

/**
 * Checks a journal against its ledger. `closedBefore`: every attempt started in an epoch below it
 * must have its outcome (a process with that epoch finished its recovery; Infinity after the final
 * recovery). Returns the problems found (empty = all good) and the counts of this folder.
 */
export function checkCalls(
  records: ReadonlyArray<Committed>,
  ledger: ReadonlyArray<LedgerLine>,
  sessionId: string,
  closedBefore: number
): { problems: Array<string>; stats: FolderStats } {
  const problems: Array<string> = []
  const stats = emptyStats()
  const fail = (message: string) => problems.push(message)
  const calls = callsOf(records)
  const keyOf = (callId: string) => Tool.idempotencyKey(sessionId, callId)

  // The world: executions per key, and their attempts.
  const byCall = new Map<string, Array<LedgerLine>>()
  for (const line of ledger) {
    const list = byCall.get(line.callId) ?? []
    list.push(line)
    byCall.set(line.callId, list)
    const call = calls.get(line.callId)
    if (call === undefined) {
      fail(`ledger: ${line.tool} executed call ${line.callId}, which the journal never proposed`)
      continue
    }
    if (line.tool !== call.tool) fail(`ledger: call ${line.callId} executed tool ${line.tool}, proposed as ${call.tool}`)
    // KeyStableInv: every execution of a call carries the call's key, whatever the attempt.
    if (line.key !== keyOf(line.callId))
      fail(`KeyStable: call ${line.callId} attempt ${line.attempt} executed with key ${line.key}, expected ${keyOf(line.callId)}`)
    // WalInv: an execution the world saw has a durable started record for that call and attempt.
    if (!call.started.some((s) => s.attempt === line.attempt)) {
      fail(`WAL: call ${line.callId} (${line.tool}) attempt ${line.attempt} executed, but the journal has no started record for it`)
    }
    bump(stats.executionsBySemantics, toolTable[line.tool]?.semantics ?? "unknown")
  }

  for (const call of calls.values()) {
    const info = toolTable[call.tool]
    const name = `call ${call.callId} (${call.tool})`
    if (info === undefined) {
      fail(`${name}: unknown tool`)
      continue
    }
    stats.calls++
    bump(stats.callsBySemantics, info.semantics)
    const rerunnable = info.semantics === "readOnly" || info.semantics === "idempotent"
    const lines = byCall.get(call.callId) ?? []
    // At most once: a compensatable or unsafe call is never executed twice, never started twice.
    if (!rerunnable && lines.length > 1) {
      stats.duplicates++
      fail(`AtMostOnce: ${info.semantics} ${name} executed ${lines.length} times: ${JSON.stringify(lines.map((l) => l.attempt))}`)
    }
    if (!rerunnable && call.started.length > 1) fail(`AtMostOnce: ${info.semantics} ${name} was started ${call.started.length} times`)

    // Attempts 1, 2, … in order, each with the call's key, within the tool's budget (retries and re-runs share it).
    for (const [i, s] of call.started.entries()) {
      if (s.attempt !== i + 1) fail(`${name}: started attempt ${s.attempt} is its ${i + 1}th start`)
      if (s.key !== keyOf(call.callId)) fail(`KeyStable: ${name} attempt ${s.attempt} started with key ${s.key}`)
      if (s.attempt > info.attemptsMax) fail(`Attempts: ${name} started attempt ${s.attempt}, over its budget of ${info.attemptsMax}`)
    }
    stats.attempts += call.started.length
    if (call.started.length > 0 && call.started[0]?.epoch !== call.epoch) stats.startedByRecovery++
    if (call.started.length === 0 && call.epoch < closedBefore && !call.outcomes.some((o) => o.attempt === 0)) {
      fail(`Recovery: ${name} was proposed in epoch ${call.epoch} and never started, though a later process finished recovery`)
    }

    // Pairing: one outcome per started attempt, and no outcome for an attempt never started.
    for (const o of call.outcomes) {
      bump(stats.outcomes, o.tag === "failed" ? `failed:${o.reason}` : o.tag)
      if (o.attempt === 0) {
        // The approval gate may close a call before it starts (a request withdrawn: e.g. an answer journaled,
        // its decision lost in a kill, is not applied twice); it then never starts. Anything else is a bug here.
        if (o.tag === "rejected" || o.tag === "expired" || o.tag === "denied") {
          if (call.started.length > 0) fail(`Authority: ${name} was ${o.tag} before its start and still started`)
        } else fail(`${name}: rejected before start (${o.reason}), but every input here is valid`)
        continue
      }
      if (!call.started.some((s) => s.attempt === o.attempt)) fail(`Pairing: ${name} has a ${o.tag} outcome for attempt ${o.attempt}, never started`)
    }
    for (const s of call.started) {
      const outcomes = call.outcomes.filter((o) => o.attempt === s.attempt)
      const next = call.started.find((n) => n.attempt === s.attempt + 1)
      if (outcomes.length > 1) fail(`Pairing: ${name} attempt ${s.attempt} has ${outcomes.length} outcomes: ${outcomes.map((o) => o.tag).join(", ")}`)
      const outcome = outcomes[0]
      if (outcome === undefined) {
        if (next !== undefined) {
          fail(
            `Pairing: ${name} attempt ${s.attempt} (epoch ${s.epoch}) has no outcome, yet attempt ${next.attempt} started (epoch ${next.epoch}): a re-run must close the lost attempt first`
          )
        } else if (s.epoch < closedBefore) {
          fail(`Pairing: ${name} attempt ${s.attempt} started in epoch ${s.epoch} has no outcome, though a process of epoch ${closedBefore} finished recovery`)
        }
      } else if (next !== undefined && !(outcome.tag === "failed" && (outcome.reason === "unknown" || outcome.reason === "error"))) {
        fail(`${name}: attempt ${next.attempt} started after attempt ${s.attempt} ended ${outcome.tag}`)
      }
      if (next !== undefined && !rerunnable) fail(`AtMostOnce: ${info.semantics} ${name} started again (attempt ${next.attempt})`)
      const ranHere = lines.some((l) => l.attempt === s.attempt)

      // Was this attempt in doubt (its process died before its outcome)? Then a later process resolved it.
      const inDoubt = (outcome !== undefined && outcome.epoch > s.epoch) || (outcome === undefined && next !== undefined && next.epoch > s.epoch)
      if (!inDoubt) {
        if (next !== undefined && outcome !== undefined && next.epoch === s.epoch) stats.retries++
        if (outcome === undefined) continue
        // An outcome written by the process that ran the attempt: it must match what the world saw.
        if (outcome.tag === "succeeded" && !ranHere) fail(`Outcome: ${name} attempt ${s.attempt} succeeded, but the ledger has no execution of it`)
        if (outcome.tag === "succeeded" && outcome.reconciled) fail(`Outcome: ${name} attempt ${s.attempt} was reconciled by the process that ran it`)
        if (outcome.tag === "failed" && rerunnable && !ranHere) fail(`Outcome: ${name} attempt ${s.attempt} failed after its effect, but the ledger has none`)
        if (outcome.tag === "failed" && !rerunnable && ranHere) fail(`Outcome: ${name} attempt ${s.attempt} failed before its effect, but the ledger has one`)
        if (outcome.tag === "failed" && outcome.reason === "unknown") fail(`Outcome: ${name} attempt ${s.attempt} closed unknown by the process that ran it`)
        continue
      }
      stats.inDoubt++
      if (next !== undefined && next.epoch > s.epoch) {
        stats.resolved.rerun++
        if (!rerunnable) fail(`Recovery: ${info.semantics} ${name} in doubt at attempt ${s.attempt} was re-run`)
        if (outcome !== undefined && !(outcome.tag === "failed" && outcome.reason === "unknown" && outcome.retryable)) {
          fail(`Recovery: ${name} re-run after a ${outcome.tag} (${outcome.reason}) of the lost attempt, not a failed "unknown" (retryable)`)
        }
        continue
      }
      const o = outcome as Outcome
      const executed = lines.some((l) => l.key === keyOf(call.callId))
      if (o.tag === "succeeded" && o.reconciled) {
        stats.resolved.reconciledExecuted++
        if (!info.reconcile) fail(`Recovery: ${name} was reconciled, but its tool cannot reconcile`)
        if (!executed) fail(`Reconcile: ${name} reconciled as executed, but the ledger has no execution`)
      } else if (o.tag === "failed" && o.reason === "error") {
        stats.resolved.reconciledNotExecuted++
        if (!info.reconcile) fail(`Recovery: ${name} was reconciled (failed "error"), but its tool cannot reconcile`)
        if (executed) fail(`Reconcile: ${name} reconciled as not executed, but the ledger has its execution`)
      } else if (o.tag === "failed" && o.reason === "unknown" && o.retryable) {
        // The lost attempt closed for a re-run whose start is not durable yet: the next recovery owes it.
        stats.resolved.rerun++
        if (!rerunnable) fail(`Recovery: ${info.semantics} ${name} in doubt at attempt ${s.attempt} was closed for a re-run`)
        if (o.epoch < closedBefore)
          fail(`Recovery: ${name} attempt ${s.attempt} was closed for a re-run that never started, though a process of epoch ${closedBefore} finished recovery`)
      } else if (o.tag === "failed" && o.reason === "unknown") {
        stats.resolved.closedUnknown++
        if (info.reconcile) fail(`Recovery: ${name} closed unknown, but its tool can reconcile (and never fails to)`)
        if (rerunnable && s.attempt < info.attemptsMax)
          fail(`Recovery: ${info.semantics} ${name} closed unknown at attempt ${s.attempt}, with attempts left to re-run it`)
      } else fail(`Recovery: ${name} in doubt at attempt ${s.attempt} was resolved as ${o.tag} (${o.reason}, reconciled ${o.reconciled})`)
    }
  }
  return { problems, stats }
}
