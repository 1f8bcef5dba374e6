/**
 * What the example CLI prints: the agent's update stream as terminal lines
 * (streamed text, tool calls with their outcome and elapsed time, progress
 * of long calls, how a run ended), and short renderings of inputs, outputs
 * and errors.
 *
 * When to use: `new Renderer(write, status)`, then `agent.subscribe((u) =>
 * renderer.update(u))`; `renderer.output` shows a command's live output.
 *
 * Details: lines are stable and greppable, which the tour (main.ts) and the
 * tests rely on: `  → tool input` when a call starts, `  ✓ tool input · summary
 * · 12 ms` (or ✗ failed, ⊘ cancelled, ⏱ timed out) when it ends, `  … tool
 * running 4 s` every 2 s of a long call, `  │ text` for a command's output,
 * `  ■ run done|cancelled|failed|timedOut …` when a run ends.
 *
 * Gotcha: elapsed times are wall-clock times of this terminal (for people),
 * not the journal's.
 */
import type { AgentStatus, AgentUpdate } from "../../src/agent/AgentTypes.ts"
import type { Call } from "../../src/toolcall/ToolCalls.ts"

const clip = (s: string, max: number) => {
  const one = s.replace(/\s+/g, " ").trim()
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

const field = (value: unknown, key: string): unknown => (typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined)

/** "node" for the Node that runs us, the program as given otherwise. */
const programName = (program: unknown) => (program === process.execPath ? "node" : typeof program === "string" ? program : "?")

/** A call's input in a few words: the path, the pattern, the command line. */
export function shortInput(tool: string, input: unknown): string {
  // Arguments that were not JSON are journaled as the raw text the model sent.
  if (typeof input === "string") return clip(JSON.stringify(input), 80)
  switch (tool) {
    case "run_command": {
      const args = field(input, "args")
      return clip([programName(field(input, "program")), ...(Array.isArray(args) ? args.map(String) : [])].join(" "), 80)
    }
    case "read_file":
    case "list_dir":
      return clip(String(field(input, "path") ?? "."), 80)
    case "write_file": {
      const content = field(input, "content")
      return `${clip(String(field(input, "path") ?? "?"), 70)}${typeof content === "string" ? ` (${Buffer.byteLength(content)} bytes)` : ""}`
    }
    case "search": {
      const where = field(input, "path")
      return `${JSON.stringify(field(input, "pattern") ?? "")}${typeof where === "string" ? ` in ${where}` : ""}`
    }
    default:
      return clip(JSON.stringify(input) ?? "", 80)
  }
}

/** A succeeded call's output in a few words. */
export function shortOutput(tool: string, output: unknown): string {
  switch (tool) {
    case "read_file":
      return `${String(field(output, "bytes"))} bytes${field(output, "truncated") === true ? " (truncated)" : ""}`
    case "write_file":
      return `wrote ${String(field(output, "bytes"))} bytes`
    case "list_dir": {
      const entries = field(output, "entries")
      return `${Array.isArray(entries) ? entries.length : 0} entries`
    }
    case "search": {
      const matches = field(output, "matches")
      return `${Array.isArray(matches) ? matches.length : 0} matches in ${String(field(output, "filesSearched"))} files`
    }
    case "run_command": {
      const signal = field(output, "signal")
      return typeof signal === "string" ? `killed by ${signal}` : `exit ${String(field(output, "exitCode"))}`
    }
    default:
      return clip(JSON.stringify(output) ?? "", 60)
  }
}

/** One line for an expected error: its tag and message. */
export function describeError(error: unknown): string {
  const tag = field(error, "_tag")
  const message = error instanceof Error ? error.message : String(field(error, "message") ?? error)
  return typeof tag === "string" ? `${tag}: ${message}` : message
}

export const formatMs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)

/** The symbol and words of a finished call. */
export function outcomeLine(call: Call): string {
  const what = `${call.tool} ${shortInput(call.tool, call.input)}`
  const outcome = call.outcome
  switch (outcome?.kind) {
    case "succeeded":
      return `✓ ${what} · ${shortOutput(call.tool, outcome.output)}${outcome.reconciled ? " (reconciled)" : ""}`
    case "failed":
      return `✗ ${what} · failed (${outcome.reason}): ${clip(outcome.message, 160)}`
    case "cancelled":
      return `⊘ ${what} · cancelled`
    case "timedOut":
      return `⏱ ${what} · timed out`
    default:
      return `? ${what} · ${call.state}`
  }
}

/** What the renderer may look up in the session to say more. */
export interface Lookup {
  /** A few words for a run's first line (e.g. which entry it answers). */
  readonly run?: (runId: string) => string | undefined
  readonly call?: (callId: string) => Call | undefined
}

export class Renderer {
  private readonly write: (text: string) => void
  private readonly status: () => AgentStatus
  private readonly lookup: Lookup
  /** Text of the current line was written without its newline yet. */
  private lineOpen = false
  private streamedTurn = false
  private readonly startedAt = new Map<string, number>()
  private readonly partial = new Map<string, string>()
  private lastProgressShown = 0
  /** The run whose end this renderer printed last (the CLI prints a cancel itself when the agent did not). */
  lastEnded: string | undefined

  constructor(write: (text: string) => void, status: () => AgentStatus, lookup: Lookup = {}) {
    this.write = write
    this.status = status
    this.lookup = lookup
  }

  /** Prints a whole line, closing streamed text first. */
  line(text: string): void {
    this.endLine()
    this.write(`${text}\n`)
  }

  endLine(): void {
    if (!this.lineOpen) return
    this.write("\n")
    this.lineOpen = false
  }

  update(u: AgentUpdate): void {
    switch (u._tag) {
      case "runStarted": {
        this.startedAt.clear()
        const info = this.lookup.run?.(u.runId)
        this.line(`  ${u.resumed ? "↻ resuming run" : "┄ run"} ${u.runId}${info === undefined ? "" : ` · ${info}`}`)
        if (u.resumed) this.line("    (left unfinished by an earlier process: calls in doubt are resolved first, none runs twice)")
        return
      }
      case "turnStarted":
        this.streamedTurn = false
        if (u.attempt > 1) this.line(`  ⟳ turn ${u.turn}, attempt ${u.attempt}`)
        return
      case "textDelta":
        if (u.text.length === 0) return
        this.write(u.text)
        this.lineOpen = !u.text.endsWith("\n")
        this.streamedTurn = true
        return
      case "modelRetry":
        this.line(`  ⟳ model: ${describeError(u.error)}; retrying in ${formatMs(u.delayMs)}`)
        return
      case "turnRecorded":
        if (!this.streamedTurn && u.text.length > 0) this.line(u.text)
        this.endLine()
        this.streamedTurn = false
        return
      case "toolCallStarted":
        this.startedAt.set(u.callId, performance.now())
        this.lastProgressShown = 0
        this.line(`  → ${u.tool} ${shortInput(u.tool, u.input)}${u.attempt > 1 ? ` (attempt ${u.attempt}, same key)` : ""}`)
        return
      case "toolCallFinished": {
        this.flushOutput(u.call.callId)
        const since = this.startedAt.get(u.call.callId)
        this.startedAt.delete(u.call.callId)
        this.line(`  ${outcomeLine(u.call)}${since !== undefined ? ` · ${formatMs(performance.now() - since)}` : ""}`)
        return
      }
      case "waiting":
        return
      case "heartbeat": {
        const current = this.status().currentCall
        if (current === undefined) return
        const elapsed = u.at - current.since
        if (elapsed < 2000 || elapsed - this.lastProgressShown < 2000) return
        this.lastProgressShown = elapsed
        this.line(`  … ${current.tool} running ${Math.round(elapsed / 1000)} s`)
        return
      }
      case "runEnded": {
        const o = u.outcome
        this.lastEnded = o.runId
        // Calls ended by the run's end (a cancel) report no finish of their own: show their outcome here.
        for (const callId of [...this.startedAt.keys()]) {
          const call = this.lookup.call?.(callId)
          if (call !== undefined && call.outcome !== undefined) this.update({ _tag: "toolCallFinished", runId: o.runId, call })
        }
        const turns = `${o.turns} turn${o.turns === 1 ? "" : "s"}`
        const line =
          o.state === "done"
            ? `  ■ run done · ${turns}`
            : o.state === "cancelled"
              ? `  ■ run cancelled (${o.message}) · ${turns} · the session is resumable`
              : `  ■ run ${o.state} (${o.reason}): ${clip(o.message, 200)} · ${turns}`
        this.line(line)
        return
      }
    }
  }

  /** A command's live output, line by line, under its call. */
  output(callId: string, text: string): void {
    const lines = ((this.partial.get(callId) ?? "") + text).split("\n")
    this.partial.set(callId, lines.pop() ?? "")
    for (const l of lines) this.line(`  │ ${clip(l, 200)}`)
  }

  private flushOutput(callId: string): void {
    const rest = this.partial.get(callId)
    this.partial.delete(callId)
    if (rest !== undefined && rest.length > 0) this.line(`  │ ${clip(rest, 200)}`)
  }
}

/** For the tree: an entry's text in one short line. */
export function entrySummary(type: string, payload: unknown, tools: ReadonlyArray<string>): string {
  const text = field(payload, "text")
  const body = typeof text === "string" ? text : JSON.stringify(payload)
  const calls = tools.length > 0 ? ` → ${tools.join(", ")}` : ""
  return `${type}: ${clip(body ?? "", 64)}${calls}`
}
