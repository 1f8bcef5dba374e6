/**
 * Drives the example CLI as a child process, like a person at a terminal
 * would: send a line, wait for a line of output, send a signal.
 *
 * When to use: the offline tour (main.ts) and the example's tests. Start
 * with `startCli(args)`, then `send`, `waitFor`, `kill`, `exited`.
 *
 * Details: stdout is collected line by line (and echoed through `echo` if
 * given); `waitFor(pattern)` looks at the lines after the one the previous
 * wait matched, so waits read the transcript in order. `approve: true`
 * answers "y" to every y/N question the CLI asks. The child runs on a Node
 * that runs .ts directly: this one if it can (≥ 22.18), else the project's
 * `node_modules/.bin/node`.
 *
 * Gotcha: a wait that times out rejects with the transcript so far (and
 * stderr), which is what you want to read when a test fails.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
export const cliPath = path.join(here, "cli.ts")

/** A Node that runs .ts directly. */
export function nodeBinary(): string {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath
  const local = path.resolve(here, "../../node_modules/.bin/node")
  if (!fs.existsSync(local)) throw new Error(`${process.execPath} (${process.version}) cannot run .ts files and ${local} does not exist`)
  return local
}

export interface CliChild {
  readonly proc: ChildProcess
  readonly pid: number
  /** Every line printed so far. */
  readonly lines: ReadonlyArray<string>
  readonly stderr: () => string
  /** The transcript so far, for error messages. */
  readonly transcript: () => string
  readonly send: (line: string) => void
  /** The next line (after the last one matched) that matches; rejects after `timeoutMs` or if the child exits first. */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  readonly kill: (signal: NodeJS.Signals) => void
  /** Closes stdin (end of input: the CLI finishes what is queued and leaves). */
  readonly end: () => void
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export interface StartOptions {
  /** Replaces the child's environment entries (undefined removes one). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Called with every line the child prints. */
  readonly echo?: (line: string) => void
  /** Answer "y" to every approval question. */
  readonly approve?: boolean
  readonly cwd?: string
}

export function startCli(args: ReadonlyArray<string>, options: StartOptions = {}): CliChild {
  // The compile cache makes a child start in about 0.3 s instead of 0.5 s (type stripping included).
  const env: NodeJS.ProcessEnv = { NODE_COMPILE_CACHE: path.join(os.tmpdir(), "keel-example-compile-cache"), ...process.env }
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  const proc = spawn(nodeBinary(), [cliPath, ...args], { cwd: options.cwd, env, stdio: ["pipe", "pipe", "pipe"] })
  const lines: Array<string> = []
  let partial = ""
  let err = ""
  let cursor = 0
  let exitedYet = false
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const l of [...listeners]) l()
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("close", (code, signal) => {
      exitedYet = true
      if (partial.length > 0) lines.push(partial)
      partial = ""
      notify()
      resolve({ code, signal })
    })
  )
  proc.stdin.on("error", () => undefined) // writing to a child that is gone
  proc.stdout.setEncoding("utf8")
  proc.stdout.on("data", (chunk: string) => {
    partial += chunk
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      lines.push(line)
      options.echo?.(line)
      if (options.approve === true && /^\s*\? allow .*\[y\/N\]/.test(line)) proc.stdin.write("y\n")
    }
    notify()
  })
  proc.stderr.setEncoding("utf8")
  proc.stderr.on("data", (chunk: string) => (err += chunk))

  const transcript = () => `${lines.join("\n")}${partial.length > 0 ? `\n${partial}` : ""}${err.length > 0 ? `\n--- stderr ---\n${err}` : ""}`

  const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        for (let i = cursor; i < lines.length; i++) {
          const line = lines[i] as string
          if (!pattern.test(line)) continue
          cursor = i + 1
          done()
          resolve(line)
          return
        }
        if (exitedYet) {
          done()
          reject(new Error(`the CLI exited before printing ${pattern}:\n${transcript()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${transcript()}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })

  return {
    proc,
    pid: proc.pid ?? -1,
    lines,
    stderr: () => err,
    transcript,
    send: (line) => {
      if (!proc.stdin.destroyed) proc.stdin.write(`${line}\n`)
    },
    waitFor,
    kill: (signal) => {
      if (!exitedYet) proc.kill(signal)
    },
    end: () => proc.stdin.end(),
    exited
  }
}
