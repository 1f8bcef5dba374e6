/**
 * Runs programs from an allow-list, in a scoped folder, without a shell, with
 * an explicit environment, a time budget and bounded output — optionally
 * inside an OS sandbox (bubblewrap). What a tool gets instead of
 * `child_process`.
 *
 * When to use: a tool that runs commands receives a runner made with
 * `CommandRunner.make({ cwd, allow, env, timeoutMs, outputBytesMax })` and
 * calls `run(program, args, { signal, onOutput })`.
 *
 * Details:
 * - `allow` maps program names to absolute executables, resolved when the
 *   runner is made (`resolveOnPath` helps): `run("git", …)` and
 *   `run("/usr/bin/git", …)` run that file, and anything else is refused with
 *   CommandNotAllowed before a process exists. PATH is never searched at run
 *   time, so a `git` planted in the workspace is not the one that runs.
 * - No shell: arguments reach the program as they are (`$HOME`, `;`, `|`,
 *   `*` are plain text). `shell: true` grants one: the program and arguments
 *   are joined into a /bin/sh command line, and from then on the allow-list
 *   only names the first word (`git; rm -rf ~` runs rm): grant it knowingly.
 * - The environment is exactly `env` plus the run's own `env`: nothing is
 *   inherited (`inheritEnv(["PATH", "HOME"])` copies chosen variables);
 *   under bwrap the command also sees PWD (bwrap sets it).
 * - The process runs in its own process group (and session); a timeout, an
 *   abort or an interruption sends SIGTERM to the whole group, then SIGKILL
 *   after `killGraceMs` to whatever is left. A timeout fails with
 *   CommandTimedOut, an abort with CommandAborted, both with the output so
 *   far and only once the group is gone (or SIGKILL went out); an
 *   interruption waits the same way, so no caller races a survivor.
 * - Output is bounded per stream: the first and the last halves of
 *   `outputBytesMax` bytes are kept, with a marker saying how many were
 *   dropped; `onOutput` sees everything as it comes.
 * - `sandbox`: "bwrap" runs the command under bubblewrap — the whole file
 *   system read-only, the cwd folder read-write, a private /tmp, /dev and
 *   /proc, new namespaces (no network unless `network: true`), all
 *   capabilities dropped, and everything it started ends with it. If bwrap
 *   is missing or cannot make namespaces here, every run fails with
 *   SandboxUnavailable naming the program and how to install it. "auto"
 *   uses bwrap when it works and otherwise runs unsandboxed, saying so in
 *   each result (`sandbox: "none"`, `sandboxNote`). "none" (the default)
 *   runs unsandboxed.
 *
 * Gotchas:
 * - Unsandboxed, an allowed program can do anything the user can (git can
 *   run hooks, npm runs scripts, node runs anything): the allow-list decides
 *   which doors exist, not what is behind them. Use the sandbox, approvals,
 *   or both, for programs that run code.
 * - Unsandboxed, a grandchild that starts its own session (setsid, a daemon)
 *   leaves the group and survives a kill; under bwrap the pid namespace ends
 *   it too. If such a grandchild keeps the output pipes open, the run ends
 *   anyway `exitGraceMs` after the program exits.
 * - bwrap's file system is read-only, not hidden: a sandboxed command can
 *   still read what the user can (~/.ssh included) and copy it into the
 *   workspace; without the network it cannot send it anywhere itself.
 * - Killing a group uses negative pids: POSIX only.
 *
 * @example
 *   const ws = yield* ScopedFs.make("/tmp/project")
 *   const { allow } = CommandRunner.resolveOnPath(["git", "ls"])
 *   const runner = CommandRunner.make({ cwd: ws, allow, env: CommandRunner.inheritEnv(["PATH", "HOME", "LANG"]), timeoutMs: 60_000, outputBytesMax: 16 * 1024, sandbox: "auto" })
 *   const { exitCode, stdout, sandbox } = yield* runner.run("git", ["status", "--short"])
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { StringDecoder } from "node:string_decoder"
import { Effect, Schema } from "effect"
import { assert } from "../internal/assert.ts"
import type { ScopedFs } from "./ScopedFs.ts"

/** Bounds of every runner (a limit on everything, design §8.6). */
export const CommandRunnerLimits = {
  argsMax: 256,
  argCharsMax: 128 * 1024,
  outputBytesMax: 64 * 1024 * 1024,
  timeoutMsMax: 24 * 60 * 60 * 1000,
  killGraceMsDefault: 2000,
  /** After the program exits, how long its output pipes may stay open (held by an escaped grandchild). */
  exitGraceMsDefault: 1000,
  /** The one-time check that bwrap can make its namespaces here. */
  sandboxProbeMs: 10_000
} as const

// ------------------------------------------------------------------------------------------------
// Errors

/** The program is not in the allow-list; nothing was started. */
export class CommandNotAllowed extends Schema.TaggedError<CommandNotAllowed>()("CommandNotAllowed", {
  program: Schema.String,
  allowed: Schema.Array(Schema.String)
}) {
  override get message() {
    const names = this.allowed.length === 0 ? "none" : this.allowed.join(", ")
    return `${JSON.stringify(this.program)} is not an allowed program (allowed: ${names})`
  }
}

/** The process could not be started (bad argument, executable gone, too many processes). */
export class CommandFailedToStart extends Schema.TaggedError<CommandFailedToStart>()("CommandFailedToStart", {
  program: Schema.String,
  reason: Schema.String,
  retryable: Schema.Boolean
}) {
  override get message() {
    return `${JSON.stringify(this.program)} could not start: ${this.reason}`
  }
}

/** It ran out of time; its process group was killed. */
export class CommandTimedOut extends Schema.TaggedError<CommandTimedOut>()("CommandTimedOut", {
  program: Schema.String,
  timeoutMs: Schema.Number,
  stdout: Schema.String,
  stderr: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.program)} ran out of time (${this.timeoutMs} ms) and was killed`
  }
}

/** The caller's signal aborted it; its process group was killed. */
export class CommandAborted extends Schema.TaggedError<CommandAborted>()("CommandAborted", {
  program: Schema.String,
  stdout: Schema.String,
  stderr: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.program)} was cancelled`
  }
}

/** `sandbox: "bwrap"` was asked for and cannot be had here. */
export class SandboxUnavailable extends Schema.TaggedError<SandboxUnavailable>()("SandboxUnavailable", {
  reason: Schema.String
}) {
  override get message() {
    return `the bwrap sandbox is not available: ${this.reason}`
  }
}

export type CommandError = CommandNotAllowed | CommandFailedToStart | CommandTimedOut | CommandAborted | SandboxUnavailable

// ------------------------------------------------------------------------------------------------
// The runner

export type SandboxMode = "bwrap" | "auto" | "none"

/** What a command ran in: "bwrap" or nothing, and why not where "auto" fell back. */
export interface SandboxStatus {
  readonly kind: "bwrap" | "none"
  readonly note: string | undefined
}

export interface Options {
  /** Commands run in this handle's root (and, sandboxed, may write only there). */
  readonly cwd: ScopedFs
  /** Program name → absolute executable. */
  readonly allow: Readonly<Record<string, string>>
  /** Grant /bin/sh interpretation of the command line (default false). */
  readonly shell?: boolean
  /** The whole environment of every command (nothing is inherited). */
  readonly env?: Readonly<Record<string, string>>
  readonly timeoutMs: number
  /** Bytes kept of each stream (head and tail halves). */
  readonly outputBytesMax: number
  readonly killGraceMs?: number
  readonly exitGraceMs?: number
  /** Default "none". */
  readonly sandbox?: SandboxMode
  /** Sandboxed commands get the network only if true. */
  readonly network?: boolean
  /** Where bwrap is (default: looked up on this process's PATH). */
  readonly bwrapPath?: string
}

export interface RunOptions {
  readonly signal?: AbortSignal
  /** Every chunk of output as text, as it comes; must not throw (what it throws is ignored). */
  readonly onOutput?: (stream: "stdout" | "stderr", text: string) => void
  /** Variables for this run only (an idempotency key, a call id), added to the runner's. */
  readonly env?: Readonly<Record<string, string>>
}

export interface CommandResult {
  /** The allowed executable that ran. */
  readonly executable: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  /** Some output was dropped (see outputBytesMax). */
  readonly truncated: boolean
  readonly sandbox: "bwrap" | "none"
  /** Why it ran unsandboxed, where that was not asked for. */
  readonly sandboxNote: string | undefined
}

export interface CommandRunner {
  /** The allowed program names. */
  readonly allowed: ReadonlyArray<string>
  /** Where commands will run (probes bwrap once per process for "auto" and "bwrap"). */
  readonly sandbox: Effect.Effect<SandboxStatus, SandboxUnavailable>
  readonly run: (program: string, args: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<CommandResult, CommandError>
}

/** Options that can never work; thrown by `make`, at start-up (a bug in the caller, not an input). */
export class InvalidRunnerOptions extends Error {
  override readonly name = "InvalidRunnerOptions"
}

export function make(options: Options): CommandRunner {
  const invalid = (why: string) => new InvalidRunnerOptions(`CommandRunner: ${why}`)
  for (const [name, executable] of Object.entries(options.allow)) {
    if (name.length === 0 || name.includes("\0")) throw invalid("an allowed name is empty or has a NUL")
    if (!path.isAbsolute(executable)) throw invalid(`${JSON.stringify(name)} must map to an absolute executable, not ${JSON.stringify(executable)}`)
  }
  if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1 || options.timeoutMs > CommandRunnerLimits.timeoutMsMax) {
    throw invalid(`timeoutMs must be an integer in 1..${CommandRunnerLimits.timeoutMsMax}`)
  }
  if (!Number.isInteger(options.outputBytesMax) || options.outputBytesMax < 2 || options.outputBytesMax > CommandRunnerLimits.outputBytesMax) {
    throw invalid(`outputBytesMax must be an integer in 2..${CommandRunnerLimits.outputBytesMax}`)
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (name.includes("=") || name.includes("\0") || value.includes("\0")) throw invalid(`the variable ${JSON.stringify(name)} has a NUL or "="`)
  }
  const bwrapPath = options.bwrapPath ?? findOnPath("bwrap", process.env.PATH ?? "")
  const sandbox = sandboxStatus(options.sandbox ?? "none", { network: options.network ?? false, bwrapPath })
  const allowed = Object.keys(options.allow).sort()
  return {
    allowed,
    sandbox,
    run: (program, args, runOptions = {}) =>
      Effect.gen(function* () {
        const executable = lookUp(options.allow, program)
        if (executable === undefined) return yield* Effect.fail(new CommandNotAllowed({ program, allowed }))
        const problem = argumentProblem(program, args, runOptions.env ?? {})
        if (problem !== undefined) return yield* Effect.fail(new CommandFailedToStart({ program, reason: problem, retryable: false }))
        // Checked here too so that a missing executable reads the same with or without the sandbox.
        if (!isExecutable(executable))
          return yield* Effect.fail(new CommandFailedToStart({ program, reason: `${executable} is not an executable file`, retryable: false }))
        if (runOptions.signal?.aborted) return yield* Effect.fail(new CommandAborted({ program, stdout: "", stderr: "" }))
        const status = yield* sandbox
        const cwd = options.cwd.root
        const line = options.shell === true ? ["/bin/sh", "-c", [shellQuote(executable), ...args].join(" ")] : [executable, ...args]
        const programs = [executable, realpathOr(executable)]
        const argv =
          status.kind === "bwrap" && bwrapPath !== undefined ? [bwrapPath, ...bwrapArgs(cwd, options.network ?? false, programs), "--", ...line] : line
        assert(argv[argv.length - line.length] === line[0], "AuthorityInv", "the program that runs is the allowed one (or the granted shell)")
        return yield* spawnBounded({
          program,
          executable,
          argv,
          cwd,
          env: { ...options.env, ...runOptions.env },
          timeoutMs: options.timeoutMs,
          outputBytesMax: options.outputBytesMax,
          killGraceMs: options.killGraceMs ?? CommandRunnerLimits.killGraceMsDefault,
          exitGraceMs: options.exitGraceMs ?? CommandRunnerLimits.exitGraceMsDefault,
          status,
          signal: runOptions.signal,
          onOutput: runOptions.onOutput
        })
      })
  }
}

/** The executable for `program`: an allowed name, or exactly one of the allowed executables. */
function lookUp(allow: Readonly<Record<string, string>>, program: string): string | undefined {
  // Own properties only: "constructor" or "__proto__" is not a program.
  if (Object.hasOwn(allow, program)) return allow[program]
  return Object.values(allow).find((executable) => executable === program)
}

function argumentProblem(program: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): string | undefined {
  if (args.length > CommandRunnerLimits.argsMax) return `more than ${CommandRunnerLimits.argsMax} arguments`
  for (const arg of [program, ...args]) {
    if (arg.includes("\0")) return "an argument contains a NUL character"
    if (arg.length > CommandRunnerLimits.argCharsMax) return `an argument is longer than ${CommandRunnerLimits.argCharsMax} characters`
  }
  for (const [name, value] of Object.entries(env))
    if (name.includes("=") || name.includes("\0") || value.includes("\0")) return "an environment variable has a NUL or '='"
  return undefined
}

const shellQuote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

// ------------------------------------------------------------------------------------------------
// Helpers for making a runner

/** The named variables of this process's environment that are set (for `env`). */
export function inheritEnv(names: ReadonlyArray<string>, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of names) {
    const value = from[name]
    if (value !== undefined) env[name] = value
  }
  return env
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** The absolute executable `name` would run from `searchPath` (a PATH value), or undefined. */
export function findOnPath(name: string, searchPath: string): string | undefined {
  if (name.length === 0 || name.includes("/") || name.includes("\0")) return undefined
  for (const dir of searchPath.split(path.delimiter)) {
    // An empty or relative PATH entry means "the current folder": never trusted.
    if (!path.isAbsolute(dir)) continue
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

/** An allow-list from program names, looked up on PATH now; the names not found are `missing`. */
export function resolveOnPath(
  names: ReadonlyArray<string>,
  searchPath: string = process.env.PATH ?? ""
): { allow: Record<string, string>; missing: Array<string> } {
  const allow: Record<string, string> = {}
  const missing: Array<string> = []
  for (const name of names) {
    const found = findOnPath(name, searchPath)
    if (found === undefined) missing.push(name)
    else allow[name] = found
  }
  return { allow, missing }
}

// ------------------------------------------------------------------------------------------------
// The sandbox

const install =
  "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; Arch: pacman -S bubblewrap; Alpine: apk add bubblewrap)"

/** bwrap's arguments: read-only everything, the workspace read-write, fresh namespaces, no capabilities. */
export function bwrapArgs(cwd: string, network: boolean, programs: ReadonlyArray<string> = []): Array<string> {
  // /tmp is private in the sandbox: an allowed program that lives under it is bound back, read-only.
  const underTmp = [...new Set(programs.filter((p) => p.startsWith("/tmp/")).map((p) => path.dirname(p)))]
  return [
    "--die-with-parent",
    "--unshare-all",
    ...(network ? ["--share-net"] : []),
    // As root bwrap keeps capabilities unless told: without them nothing can be remounted writable.
    "--cap-drop",
    "ALL",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
    ...underTmp.flatMap((dir) => ["--ro-bind", dir, dir]),
    "--bind",
    cwd,
    cwd,
    "--chdir",
    cwd
  ]
}

/** One probe per bwrap and network setting per process: can it make its namespaces here? */
const probes = new Map<string, Promise<string | undefined>>()

function probe(bwrapPath: string, network: boolean): Promise<string | undefined> {
  const key = `${bwrapPath}\0${network}`
  let found = probes.get(key)
  if (found === undefined) {
    found = new Promise((resolve) => {
      // bwrap runs itself inside the sandbox: no other program needed.
      const child = spawn(bwrapPath, [...bwrapArgs("/", network), "--", bwrapPath, "--version"], { stdio: ["ignore", "ignore", "pipe"], env: {} })
      let stderr = ""
      child.stderr.setEncoding("utf8")
      child.stderr.on("data", (text: string) => {
        if (stderr.length < 4096) stderr += text
      })
      const timer = setTimeout(() => child.kill("SIGKILL"), CommandRunnerLimits.sandboxProbeMs)
      child.on("error", (e) => {
        clearTimeout(timer)
        resolve(`${bwrapPath} could not start: ${e.message}`)
      })
      child.on("close", (code, signal) => {
        clearTimeout(timer)
        resolve(code === 0 ? undefined : `${bwrapPath} cannot make a sandbox here (${signal ?? `exit ${code}`}): ${stderr.trim() || "no message"}`)
      })
    })
    probes.set(key, found)
  }
  return found
}

/**
 * Where a runner with this `sandbox` setting runs its commands, without
 * making one: for a program to say at start-up whether commands are
 * confined ("auto" may fall back to none, with the reason in `note`).
 */
export function sandboxStatus(
  mode: SandboxMode,
  options: { readonly network?: boolean; readonly bwrapPath?: string | undefined } = {}
): Effect.Effect<SandboxStatus, SandboxUnavailable> {
  return Effect.suspend(() => {
    if (mode === "none") return Effect.succeed<SandboxStatus>({ kind: "none", note: undefined })
    const unavailable = (reason: string): Effect.Effect<SandboxStatus, SandboxUnavailable> =>
      mode === "bwrap" ? Effect.fail(new SandboxUnavailable({ reason })) : Effect.succeed({ kind: "none", note: `ran without an OS sandbox: ${reason}` })
    if (process.platform !== "linux") return unavailable(`bubblewrap (bwrap) is Linux-only and this is ${process.platform}`)
    const bwrapPath = "bwrapPath" in options ? options.bwrapPath : findOnPath("bwrap", process.env.PATH ?? "")
    if (bwrapPath === undefined) return unavailable(`the program bwrap is not on PATH: ${install}`)
    if (!isExecutable(bwrapPath)) return unavailable(`the program bwrap is not at ${bwrapPath}: ${install}`)
    return Effect.flatMap(
      Effect.promise(() => probe(bwrapPath, options.network ?? false)),
      (problem) => (problem === undefined ? Effect.succeed<SandboxStatus>({ kind: "bwrap", note: undefined }) : unavailable(problem))
    )
  })
}

// ------------------------------------------------------------------------------------------------
// Spawning, bounded

/** Keeps the first and the last half of a stream's bytes, and how many were dropped between. */
class BoundedOutput {
  private readonly head: Array<Buffer> = []
  private headBytes = 0
  private tail: Array<Buffer> = []
  private tailBytes = 0
  private dropped = 0
  private readonly half: number

  constructor(bytesMax: number) {
    this.half = Math.floor(bytesMax / 2)
  }

  add(chunk: Buffer): void {
    if (this.headBytes < this.half) {
      const taken = chunk.subarray(0, this.half - this.headBytes)
      this.head.push(taken)
      this.headBytes += taken.length
      chunk = chunk.subarray(taken.length)
    }
    if (chunk.length === 0) return
    this.tail.push(chunk)
    this.tailBytes += chunk.length
    // Drop whole chunks, then cut the first one: the tail stays at most `half` bytes.
    while (this.tailBytes > this.half) {
      const first = this.tail[0] as Buffer
      const excess = this.tailBytes - this.half
      if (first.length <= excess) {
        this.tail.shift()
        this.tailBytes -= first.length
        this.dropped += first.length
      } else {
        this.tail[0] = first.subarray(excess)
        this.tailBytes -= excess
        this.dropped += excess
      }
    }
  }

  get truncated(): boolean {
    return this.dropped > 0
  }

  toString(): string {
    const head = Buffer.concat(this.head).toString("utf8")
    const tail = Buffer.concat(this.tail).toString("utf8")
    return this.dropped > 0 ? `${head}\n…[${this.dropped} bytes omitted]…\n${tail}` : head + tail
  }
}

interface Spawn {
  readonly program: string
  readonly executable: string
  readonly argv: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly timeoutMs: number
  readonly outputBytesMax: number
  readonly killGraceMs: number
  readonly exitGraceMs: number
  readonly status: SandboxStatus
  readonly signal: AbortSignal | undefined
  readonly onOutput: RunOptions["onOutput"]
}

function spawnBounded(s: Spawn): Effect.Effect<CommandResult, CommandFailedToStart | CommandTimedOut | CommandAborted> {
  return Effect.callback<CommandResult, CommandFailedToStart | CommandTimedOut | CommandAborted>((resume) => {
    const [file, ...rest] = s.argv
    assert(file !== undefined && path.isAbsolute(file), "AuthorityInv", "only an absolute executable is spawned (PATH is never searched)")
    let child: ChildProcessByStdio<null, Readable, Readable>
    try {
      // detached: its own process group and session, so a kill reaches what it started, a Ctrl-C meant
      // for us is not delivered to it, and it has no terminal to inject keystrokes into.
      child = spawn(file, rest, { cwd: s.cwd, env: { ...s.env }, shell: false, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    } catch (e) {
      resume(Effect.fail(startFailure(s.program, e)))
      return
    }
    const stdout = new BoundedOutput(s.outputBytesMax)
    const stderr = new BoundedOutput(s.outputBytesMax)
    let ended: "timeout" | "abort" | undefined
    let settled = false
    let exitTimer: ReturnType<typeof setTimeout> | undefined
    let stopped: Promise<void> | undefined

    const killGroup = (signal: NodeJS.Signals | 0): boolean => {
      if (child.pid === undefined) return false
      try {
        process.kill(-child.pid, signal)
        return true
      } catch {
        return false // the group is gone
      }
    }
    // SIGTERM to the group; SIGKILL after the grace to whatever is left of it (a grandchild that
    // ignores SIGTERM must not outlive the run). Resolves once the group is empty or SIGKILL went out.
    const stop = (): Promise<void> => {
      stopped ??= new Promise<void>((resolve) => {
        killGroup("SIGTERM")
        const kill = setTimeout(() => {
          killGroup("SIGKILL")
          resolve()
        }, s.killGraceMs)
        // Bounded: at most killGraceMs / 20 looks.
        const look = () => {
          if (killGroup(0)) return void setTimeout(look, 20).unref()
          clearTimeout(kill)
          resolve()
        }
        setTimeout(look, 20).unref()
      })
      return stopped
    }
    const onAbort = () => {
      ended ??= "abort"
      void stop()
    }
    const timeoutTimer = setTimeout(() => {
      ended ??= "timeout"
      void stop()
    }, s.timeoutMs)
    const release = () => {
      settled = true
      clearTimeout(timeoutTimer)
      if (exitTimer !== undefined) clearTimeout(exitTimer)
      s.signal?.removeEventListener("abort", onAbort)
    }
    const settle = (result: Effect.Effect<CommandResult, CommandFailedToStart | CommandTimedOut | CommandAborted>) => {
      if (settled) return
      release()
      resume(result)
    }
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      const out = stdout.toString()
      const err = stderr.toString()
      // Cut short: answer once the whole group is gone, so that the caller never races a survivor.
      if (ended === "timeout") {
        const error = new CommandTimedOut({ program: s.program, timeoutMs: s.timeoutMs, stdout: out, stderr: err })
        return void stop().then(() => settle(Effect.fail(error)))
      }
      if (ended === "abort") {
        const error = new CommandAborted({ program: s.program, stdout: out, stderr: err })
        return void stop().then(() => settle(Effect.fail(error)))
      }
      settle(
        Effect.succeed({
          executable: s.executable,
          exitCode,
          signal,
          stdout: out,
          stderr: err,
          truncated: stdout.truncated || stderr.truncated,
          sandbox: s.status.kind,
          sandboxNote: s.status.note
        })
      )
    }

    s.signal?.addEventListener("abort", onAbort, { once: true })
    for (const [stream, sink, name] of [
      [child.stdout, stdout, "stdout"],
      [child.stderr, stderr, "stderr"]
    ] as const) {
      const decoder = new StringDecoder("utf8")
      stream.on("data", (chunk: Buffer) => {
        sink.add(chunk)
        if (s.onOutput === undefined) return
        try {
          s.onOutput(name, decoder.write(chunk))
        } catch {
          // a display hook must not end the command
        }
      })
    }
    // "error" (it could not start) and "close" may both come: the first one settles.
    child.on("error", (e) => settle(Effect.fail(startFailure(s.program, e))))
    child.on("close", (code, signal) => finish(code, signal))
    // An escaped grandchild may hold the pipes open: end anyway a little after the program itself.
    child.on("exit", (code, signal) => {
      if (settled) return
      exitTimer = setTimeout(() => {
        child.stdout.destroy()
        child.stderr.destroy()
        finish(code, signal)
      }, s.exitGraceMs)
    })
    // Interrupted (the caller's timeout, a cancel): end the process group, and wait until it is gone.
    return Effect.promise(() => {
      if (settled) return Promise.resolve()
      release()
      return stop()
    })
  })
}

function startFailure(program: string, e: unknown): CommandFailedToStart {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  const reason =
    code === "ENOENT" ? "the executable is not there (no such file)" : code === "EACCES" ? "permission denied" : e instanceof Error ? e.message : String(e)
  return new CommandFailedToStart({ program, reason, retryable: code === "EAGAIN" || code === "EMFILE" || code === "ENFILE" })
}

const realpathOr = (p: string): string => {
  try {
    return fs.realpathSync(p)
  } catch {
    return p
  }
}
