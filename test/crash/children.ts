// Child processes for the crash tests: a Node that runs .ts, spawned with piped stdio, its stdout
// collected line by line ("ready" marks a child that has loaded and waits for its config).
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, "../..")

/** A Node that runs .ts directly: the one running vitest if it strips types (≥ 22.18), else the project's Node 24. */
export function nodeBinary(): string {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath
  const local = path.join(repo, "node_modules", ".bin", "node")
  if (!fs.existsSync(local)) throw new Error(`${process.execPath} (${process.version}) cannot run .ts files and ${local} does not exist`)
  return local
}

// ---------------------------------------------------------------------------------------------
// Children

export interface Child {
  readonly proc: ChildProcess
  readonly lines: Array<string>
  readonly stderr: () => string
  readonly ready: Promise<void>
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  onLine: (() => void) | undefined
}

/** Spawns `script` as a child on a Node that runs .ts; lines it prints are collected, "ready" resolves `ready`. */
export function startChild(script: string, live: Set<ChildProcess>): Child {
  const proc = spawn(nodeBinary(), [script], {
    cwd: repo,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_COMPILE_CACHE: path.join(os.tmpdir(), "keel-crash-compile-cache") }
  })
  live.add(proc)
  const lines: Array<string> = []
  let partial = ""
  let err = ""
  let markReady: () => void = () => undefined
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    ready,
    closed: new Promise((resolve) =>
      proc.on("close", (code, signal) => {
        live.delete(proc)
        resolve({ code, signal })
      })
    ),
    onLine: undefined
  }
  proc.stdout?.setEncoding("utf8")
  proc.stdout?.on("data", (chunk: string) => {
    partial += chunk
    let nl = partial.indexOf("\n")
    while (nl >= 0) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      if (line === "ready") markReady()
      else lines.push(line)
      nl = partial.indexOf("\n")
    }
    child.onLine?.()
  })
  proc.stderr?.setEncoding("utf8")
  proc.stderr?.on("data", (chunk: string) => (err += chunk))
  proc.stdin?.on("error", () => undefined) // a child that died before reading its config
  return child
}

/**
 * Children of one script, two kept loading ahead: starting Node and loading
 * Effect is most of a child's cost, so it overlaps the previous kill's run and check.
 */
export class ChildPool {
  private readonly script: string
  private readonly warm: Array<Child> = []
  private readonly live = new Set<ChildProcess>()
  private readonly warmCount = 2

  constructor(script: string) {
    this.script = script
  }

  /**
   * Hands `config` to a loaded child, waits until it prints a line starting
   * with `waitFor` (unless undefined), lets it run `delayMs` more, then kills
   * it with SIGKILL. Returns every line it wrote.
   */
  async runAndKill(config: unknown, delayMs: number, waitFor: string | undefined): Promise<Array<string>> {
    const startedAt = Date.now()
    const child = await this.handOver(config, true)
    if (waitFor !== undefined) {
      const seen = new Promise<void>((resolve) => {
        child.onLine = () => {
          if (child.lines.some((l) => l.startsWith(waitFor))) resolve()
        }
        child.onLine()
      })
      const outcome = await Promise.race([
        seen.then(() => "seen" as const),
        child.closed.then(() => "exited" as const),
        new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 30_000))
      ])
      if (outcome !== "seen") {
        child.proc.kill("SIGKILL")
        await child.closed
        throw new Error(
          `child ${outcome} before printing "${waitFor}" (after ${Date.now() - startedAt} ms); stdout:\n${child.lines.slice(-20).join("\n")}\nstderr:\n${child.stderr()}`
        )
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs))
    child.proc.kill("SIGKILL")
    const { code, signal } = await child.closed
    if (signal !== "SIGKILL") {
      throw new Error(`child exited by itself (code ${code}, signal ${signal}); stderr:\n${child.stderr()}\nstdout tail:\n${child.lines.slice(-20).join("\n")}`)
    }
    return child.lines
  }

  /**
   * Hands `config` to a loaded child and waits until it exits by itself (no
   * more children are warmed: this is the last one). Returns every line it
   * wrote; throws if it exits with a code other than 0, a signal, or runs
   * longer than `timeoutMs` (then it is killed).
   */
  async runToEnd(config: unknown, timeoutMs: number): Promise<Array<string>> {
    const startedAt = Date.now()
    const child = await this.handOver(config, false)
    const outcome = await Promise.race([child.closed, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), timeoutMs).unref())])
    if (outcome === "timeout") {
      child.proc.kill("SIGKILL")
      await child.closed
    }
    if (outcome === "timeout" || outcome.code !== 0) {
      const how = outcome === "timeout" ? `ran over ${timeoutMs} ms` : `exited with code ${outcome.code}, signal ${outcome.signal}`
      throw new Error(`child ${how} (after ${Date.now() - startedAt} ms); stderr:\n${child.stderr()}\nstdout tail:\n${child.lines.slice(-20).join("\n")}`)
    }
    return child.lines
  }

  /** A loaded child with `config` on its stdin; warms the next ones if `refill`. */
  private async handOver(config: unknown, refill: boolean): Promise<Child> {
    const child = this.warm.shift() ?? startChild(this.script, this.live)
    await Promise.race([child.ready, child.closed.then(() => Promise.reject(new Error(`child died while loading:\n${child.stderr()}`)))])
    child.proc.stdin?.end(`${JSON.stringify(config)}\n`)
    while (refill && this.warm.length < this.warmCount) this.warm.push(startChild(this.script, this.live))
    return child
  }

  /** Lets idle children exit by themselves (no config) and kills any other still running. */
  stop(): void {
    const idle = new Set(this.warm.splice(0).map((child) => child.proc))
    for (const proc of idle) proc.stdin?.end()
    for (const proc of this.live) if (!idle.has(proc)) proc.kill("SIGKILL")
  }
}

/** Runs a scoped Effect; a typed failure becomes an Error that names its tag (JournalCorrupt, …). */
export async function runScoped<A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> {
  const result = await Effect.runPromise(Effect.scoped(effect).pipe(Effect.result))
  if (result._tag === "Success") return result.success
  const e = result.failure as unknown
  const tag = typeof e === "object" && e !== null && "_tag" in e ? String((e as { _tag: unknown })._tag) : "error"
  throw new Error(`${tag}: ${e instanceof Error ? e.message : JSON.stringify(e)}`)
}

/**
 * The child's side of `ChildPool`: a loaded child waits for its config, one
 * JSON line on stdin (rejects if stdin closes first: the pool is stopping).
 */
export function readConfig<T>(): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffer = ""
    process.stdin.setEncoding("utf8")
    process.stdin.on("data", (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf("\n")
      if (nl >= 0) {
        process.stdin.pause()
        resolve(JSON.parse(buffer.slice(0, nl)) as T)
      }
    })
    process.stdin.on("end", () => reject(new Error("stdin closed before a config arrived")))
  })
}
