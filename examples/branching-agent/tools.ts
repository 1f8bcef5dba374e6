/**
 * The example agent's tools, scoped to one folder (the workspace): read_file,
 * write_file, list_dir, search and run_command.
 *
 * When to use: `workspaceTools(root)` is the tool list for `Agent.make`;
 * `resolveInside(root, path)` is the path check every file tool goes through
 * (exported for its unit test).
 *
 * Details:
 * - Semantics decide retries and crash recovery (design §3): read_file,
 *   list_dir and search are readOnly and write_file is idempotent (the same
 *   input leaves the same file and gives the same result), so they get 3
 *   attempts: a call in doubt after `kill -9` is run again with the same key.
 *   run_command is unsafe: never retried, never re-run after a crash (closed
 *   "outcome unknown"), and by default it needs a person's yes.
 * - Every path is resolved against the workspace root; `..`, absolute paths
 *   elsewhere and symlinks whose target is outside are refused with a
 *   ToolFailure naming the path. Symlinks are resolved with realpath, also
 *   for a file that does not exist yet (its deepest existing ancestor).
 * - run_command spawns the program without a shell (arguments are never
 *   parsed), in its own process group with cwd = the root and a small
 *   environment (PATH, HOME, LANG, plus KEEL_CALL_ID and KEEL_IDEMPOTENCY_KEY
 *   so that a script can deduplicate by key). Cancelling or timing out kills
 *   the whole group. Output is bounded (head and tail kept); the optional
 *   `onOutput` hook shows it live.
 * - Every result is bounded: bytes read, entries listed, files searched,
 *   matches returned, output kept.
 *
 * Gotchas: the check happens before the operation, so a symlink swapped in
 * between check and use could still escape (capabilities in a later issue
 * replace this). run_command's program and arguments are not checked at
 * all: a program can touch anything the user can, which is why it is unsafe
 * and asks first. A regex in `search` runs on the main thread: a
 * catastrophic pattern blocks until the line is done (lines are cut at 4 KiB).
 *
 * @example
 *   const agent = yield* Agent.make(session, { model, tools: workspaceTools("/tmp/project") })
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { Effect, Schema } from "effect"
import * as Tool from "../../src/toolcall/Tool.ts"

/** Bounds of every tool (a limit on everything, design §8.6). */
export const ToolLimits = {
  readBytesDefault: 64 * 1024,
  readBytesMax: 1024 * 1024,
  writeBytesMax: 1024 * 1024,
  listEntriesMax: 500,
  searchFilesMax: 2000,
  /** Files and folders looked at (a deep tree of empty folders is bounded too). */
  searchEntriesMax: 20_000,
  searchFileBytesMax: 1024 * 1024,
  searchResultsDefault: 50,
  searchResultsMax: 200,
  searchLineCharsMax: 4096,
  matchTextCharsMax: 200,
  commandArgsMax: 64,
  commandOutputBytesMax: 16 * 1024,
  /** After SIGTERM, a command gets this long before SIGKILL. */
  commandKillGraceMs: 2000
} as const

export interface WorkspaceToolsOptions {
  /** Called with run_command's output as it arrives (for a live view); must not throw. */
  readonly onOutput?: (callId: string, stream: "stdout" | "stderr", text: string) => void
  /** run_command's time budget (default 5 minutes). */
  readonly commandTimeoutMs?: number
}

const refused = (message: string) => new Tool.ToolFailure({ message, retryable: false })

/** Transient OS errors are worth another attempt; everything else is the model's to fix. */
const transient = new Set(["EMFILE", "ENFILE", "EAGAIN", "EBUSY", "EINTR"])

function failureOf(what: string, e: unknown): Tool.ToolFailure {
  if (e instanceof Tool.ToolFailure) return e
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  const reason =
    code === "ENOENT"
      ? "no such file or folder"
      : code === "EISDIR"
        ? "is a folder"
        : code === "ENOTDIR"
          ? "a part of the path is not a folder"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : e instanceof Error
              ? e.message
              : String(e)
  return new Tool.ToolFailure({ message: `${what}: ${reason}`, retryable: code !== undefined && transient.has(code) })
}

const attempt = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, Tool.ToolFailure> =>
  Effect.tryPromise({ try: run, catch: (e) => failureOf(what, e) })

const isWithin = (base: string, target: string): boolean => {
  const rel = path.relative(base, target)
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel))
}

/**
 * The real path of `requested` inside the workspace `root`, or a ToolFailure
 * saying why not. `requested` may be relative (to the root) or absolute
 * (inside the root); it need not exist (write_file creates it), but whatever
 * part of it exists is resolved through its symlinks and must stay inside.
 */
export async function resolveInside(root: string, requested: string): Promise<string> {
  if (requested.length === 0) throw refused('the path is empty (use "." for the workspace root)')
  if (requested.includes("\0")) throw refused("the path contains a NUL character")
  let base: string
  try {
    base = await fs.realpath(root)
  } catch (e) {
    throw failureOf(`the workspace root ${root}`, e)
  }
  // An absolute path through the root's own symlinks (e.g. /tmp → /private/tmp) names the same place.
  const lexicalRoot = path.resolve(root)
  const relative = path.isAbsolute(requested) && isWithin(lexicalRoot, path.resolve(requested)) ? path.relative(lexicalRoot, requested) : requested
  const target = path.resolve(base, relative)
  if (!isWithin(base, target)) throw refused(`${JSON.stringify(requested)} is outside the workspace (paths are relative to its root)`)
  // Resolve the deepest part that exists; the rest does not exist yet, so it cannot be a symlink.
  const missing: Array<string> = []
  let existing = target
  for (;;) {
    try {
      const real = await fs.realpath(existing)
      if (!isWithin(base, real)) throw refused(`${JSON.stringify(requested)} leads outside the workspace through a symbolic link`)
      return path.join(real, ...missing)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || existing === base) throw failureOf(JSON.stringify(requested), e)
      missing.unshift(path.basename(existing))
      existing = path.dirname(existing)
    }
  }
}

/** The path as the model should see it: relative to the root, "/"-separated. */
async function shown(root: string, real: string): Promise<string> {
  const rel = path.relative(await fs.realpath(root), real)
  return rel === "" ? "." : rel.split(path.sep).join("/")
}

const PathInput = Schema.String.annotate({ description: "A path inside the workspace, relative to its root" })
const bounded = (min: number, max: number) => Schema.Int.check(Schema.isGreaterThanOrEqualTo(min), Schema.isLessThanOrEqualTo(max))

// ------------------------------------------------------------------------------------------------
// read_file

const ReadFileOutput = Schema.Struct({ path: Schema.String, content: Schema.String, bytes: Schema.Number, truncated: Schema.Boolean })

const readFile = (root: string) =>
  Tool.make({
    name: "read_file",
    description: `Reads a UTF-8 text file of the workspace (at most maxBytes, default ${ToolLimits.readBytesDefault}).`,
    input: Schema.Struct({ path: PathInput, maxBytes: Schema.optional(bounded(1, ToolLimits.readBytesMax)) }),
    output: ReadFileOutput,
    semantics: "readOnly",
    timeoutMs: 10_000,
    retry: { attemptsMax: 3 },
    run: ({ path: requested, maxBytes }) =>
      attempt(`read_file ${JSON.stringify(requested)}`, async () => {
        const file = await resolveInside(root, requested)
        const stat = await fs.stat(file)
        if (stat.isDirectory()) throw refused(`${JSON.stringify(requested)} is a folder: use list_dir`)
        const limit = maxBytes ?? ToolLimits.readBytesDefault
        const handle = await fs.open(file, "r")
        try {
          const buffer = Buffer.alloc(Math.min(limit, stat.size))
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
          const bytes = buffer.subarray(0, bytesRead)
          if (bytes.includes(0)) throw refused(`${JSON.stringify(requested)} is a binary file (${stat.size} bytes)`)
          return { path: await shown(root, file), content: bytes.toString("utf8"), bytes: stat.size, truncated: stat.size > bytesRead }
        } finally {
          await handle.close()
        }
      })
  })

// ------------------------------------------------------------------------------------------------
// write_file

const writeFile = (root: string) =>
  Tool.make({
    name: "write_file",
    description: "Writes a UTF-8 text file of the workspace (replacing it whole; folders are created). Writing the same content twice is harmless.",
    input: Schema.Struct({ path: PathInput, content: Schema.String.check(Schema.isMaxLength(ToolLimits.writeBytesMax)) }),
    output: Schema.Struct({ path: Schema.String, bytes: Schema.Number }),
    semantics: "idempotent",
    timeoutMs: 10_000,
    retry: { attemptsMax: 3 },
    run: ({ path: requested, content }, ctx) =>
      attempt(`write_file ${JSON.stringify(requested)}`, async () => {
        const file = await resolveInside(root, requested)
        if (file === (await fs.realpath(root))) throw refused("cannot write the workspace root itself")
        const existing = await fs.stat(file).catch(() => undefined)
        if (existing?.isDirectory()) throw refused(`${JSON.stringify(requested)} is a folder`)
        await fs.mkdir(path.dirname(file), { recursive: true })
        // Write then rename: a crash leaves the old file or the new one, never half of it.
        const temporary = `${file}.keel-${process.pid}-${ctx.attempt}.tmp`
        try {
          await fs.writeFile(temporary, content, { encoding: "utf8", signal: ctx.signal })
          await fs.rename(temporary, file)
        } catch (e) {
          await fs.rm(temporary, { force: true })
          throw e
        }
        return { path: await shown(root, file), bytes: Buffer.byteLength(content) }
      })
  })

// ------------------------------------------------------------------------------------------------
// list_dir

const Kind = Schema.Literals(["file", "dir", "symlink", "other"])

const listDir = (root: string) =>
  Tool.make({
    name: "list_dir",
    description: `Lists a folder of the workspace (default: its root), sorted by name, at most ${ToolLimits.listEntriesMax} entries.`,
    input: Schema.Struct({ path: Schema.optional(PathInput) }),
    output: Schema.Struct({
      path: Schema.String,
      entries: Schema.Array(Schema.Struct({ name: Schema.String, kind: Kind, bytes: Schema.Number })),
      truncated: Schema.Boolean
    }),
    semantics: "readOnly",
    timeoutMs: 10_000,
    retry: { attemptsMax: 3 },
    run: ({ path: requested }) =>
      attempt(`list_dir ${JSON.stringify(requested ?? ".")}`, async () => {
        const dir = await resolveInside(root, requested ?? ".")
        const names = (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        const kept = names.slice(0, ToolLimits.listEntriesMax)
        const entries = await Promise.all(
          kept.map(async (d) => {
            const kind = d.isSymbolicLink() ? "symlink" : d.isDirectory() ? "dir" : d.isFile() ? "file" : "other"
            const bytes = kind === "file" ? (await fs.stat(path.join(dir, d.name)).catch(() => ({ size: 0 }))).size : 0
            return { name: d.name, kind, bytes } as const
          })
        )
        return { path: await shown(root, dir), entries, truncated: names.length > kept.length }
      })
  })

// ------------------------------------------------------------------------------------------------
// search

const skippedFolders = new Set([".git", "node_modules"])

const search = (root: string) =>
  Tool.make({
    name: "search",
    description:
      "Searches the text files under a folder of the workspace for a substring (or a JavaScript regular expression with regex: true); " +
      "returns matching lines with their file and line number. Skips .git, node_modules, symlinks and binary files.",
    input: Schema.Struct({
      pattern: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(1000)),
      path: Schema.optional(PathInput),
      regex: Schema.optional(Schema.Boolean),
      ignoreCase: Schema.optional(Schema.Boolean),
      maxResults: Schema.optional(bounded(1, ToolLimits.searchResultsMax))
    }),
    output: Schema.Struct({
      matches: Schema.Array(Schema.Struct({ path: Schema.String, line: Schema.Number, text: Schema.String })),
      filesSearched: Schema.Number,
      truncated: Schema.Boolean
    }),
    semantics: "readOnly",
    timeoutMs: 30_000,
    retry: { attemptsMax: 3 },
    run: (input, ctx) =>
      attempt(`search ${JSON.stringify(input.pattern)}`, async () => {
        const matches = makeMatcher(input.pattern, input.regex ?? false, input.ignoreCase ?? false)
        const start = await resolveInside(root, input.path ?? ".")
        const base = await fs.realpath(root)
        const resultsMax = input.maxResults ?? ToolLimits.searchResultsDefault
        const found: Array<{ path: string; line: number; text: string }> = []
        let filesSearched = 0
        let entriesSeen = 0
        let truncated = false
        // Breadth-first, bounded by files and results; never follows a symlink.
        const queue: Array<string> = [start]
        while (queue.length > 0 && !truncated) {
          if (ctx.signal.aborted) throw refused("search cancelled")
          const current = queue.shift() as string
          if (++entriesSeen > ToolLimits.searchEntriesMax) {
            truncated = true
            break
          }
          const stat = await fs.lstat(current)
          if (stat.isDirectory()) {
            const names = (await fs.readdir(current)).sort()
            for (const name of names) if (!skippedFolders.has(name)) queue.push(path.join(current, name))
            continue
          }
          if (!stat.isFile() || stat.size > ToolLimits.searchFileBytesMax) continue
          if (filesSearched >= ToolLimits.searchFilesMax) {
            truncated = true
            break
          }
          filesSearched++
          const bytes = await fs.readFile(current)
          if (bytes.includes(0)) continue
          const lines = bytes.toString("utf8").split("\n")
          for (const [i, line] of lines.entries()) {
            if (!matches(line.slice(0, ToolLimits.searchLineCharsMax))) continue
            if (found.length >= resultsMax) {
              truncated = true
              break
            }
            const rel = path.relative(base, current).split(path.sep).join("/")
            found.push({ path: rel, line: i + 1, text: line.trim().slice(0, ToolLimits.matchTextCharsMax) })
          }
        }
        return { matches: found, filesSearched, truncated }
      })
  })

function makeMatcher(pattern: string, regex: boolean, ignoreCase: boolean): (line: string) => boolean {
  if (!regex) {
    const needle = ignoreCase ? pattern.toLowerCase() : pattern
    return ignoreCase ? (line) => line.toLowerCase().includes(needle) : (line) => line.includes(needle)
  }
  let compiled: RegExp
  try {
    compiled = new RegExp(pattern, ignoreCase ? "i" : "")
  } catch (e) {
    throw refused(`invalid regular expression: ${e instanceof Error ? e.message : String(e)}`)
  }
  return (line) => compiled.test(line)
}

// ------------------------------------------------------------------------------------------------
// run_command

/** Keeps the first and the last half of a stream's bytes, and how many were dropped between. */
class BoundedOutput {
  private head = ""
  private tail = ""
  private dropped = 0
  private readonly half = ToolLimits.commandOutputBytesMax / 2

  add(text: string): void {
    if (this.head.length < this.half) {
      const room = this.half - this.head.length
      this.head += text.slice(0, room)
      text = text.slice(room)
    }
    this.tail += text
    if (this.tail.length > this.half) {
      this.dropped += this.tail.length - this.half
      this.tail = this.tail.slice(this.tail.length - this.half)
    }
  }

  get truncated(): boolean {
    return this.dropped > 0
  }

  toString(): string {
    return this.dropped > 0 ? `${this.head}\n…[${this.dropped} characters omitted]…\n${this.tail}` : this.head + this.tail
  }
}

const RunCommandOutput = Schema.Struct({
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  stdout: Schema.String,
  stderr: Schema.String,
  truncated: Schema.Boolean
})
type RunCommandOutput = typeof RunCommandOutput.Type

/** The environment a command gets: enough to find programs, nothing else of ours. */
function commandEnv(ctx: Tool.ToolContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { KEEL_CALL_ID: ctx.callId, KEEL_IDEMPOTENCY_KEY: ctx.idempotencyKey }
  for (const name of ["PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"]) if (process.env[name] !== undefined) env[name] = process.env[name]
  return env
}

const runCommand = (root: string, options: WorkspaceToolsOptions) =>
  Tool.make({
    name: "run_command",
    description:
      "Runs a program with arguments in the workspace root, without a shell (no pipes, globs or redirections), and returns its exit code and output. " +
      "Needs the user's approval; never retried.",
    input: Schema.Struct({
      program: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(4096)),
      args: Schema.optional(Schema.Array(Schema.String.check(Schema.isMaxLength(64 * 1024))).check(Schema.isMaxLength(ToolLimits.commandArgsMax)))
    }),
    output: RunCommandOutput,
    semantics: "unsafe",
    timeoutMs: options.commandTimeoutMs ?? 5 * 60 * 1000,
    run: ({ program, args }, ctx) =>
      Effect.flatMap(
        attempt("run_command", () => fs.realpath(root)),
        (cwd) =>
          Effect.callback<RunCommandOutput, Tool.ToolFailure>((resume) => {
            // detached: its own process group, so that a cancel kills what it started too, and a
            // Ctrl-C meant for the agent is not delivered to it by the terminal.
            let child: ChildProcessByStdio<null, Readable, Readable>
            try {
              child = spawn(program, [...(args ?? [])], { cwd, env: commandEnv(ctx), shell: false, detached: true, stdio: ["ignore", "pipe", "pipe"] })
            } catch (e) {
              // e.g. a NUL byte in an argument: refused before anything started.
              resume(Effect.fail(failureOf(`run_command ${JSON.stringify(program)}`, e)))
              return
            }
            const stdout = new BoundedOutput()
            const stderr = new BoundedOutput()
            let exited = false
            const settle = (result: Effect.Effect<RunCommandOutput, Tool.ToolFailure>) => {
              if (exited) return
              exited = true
              ctx.signal.removeEventListener("abort", stop)
              resume(result)
            }
            const killGroup = (signal: NodeJS.Signals) => {
              if (exited || child.pid === undefined) return
              try {
                process.kill(-child.pid, signal)
              } catch {
                // already gone
              }
            }
            const stop = () => {
              killGroup("SIGTERM")
              setTimeout(() => killGroup("SIGKILL"), ToolLimits.commandKillGraceMs).unref()
            }
            ctx.signal.addEventListener("abort", stop, { once: true })
            for (const [stream, sink, name] of [
              [child.stdout, stdout, "stdout"],
              [child.stderr, stderr, "stderr"]
            ] as const) {
              stream.setEncoding("utf8")
              stream.on("data", (text: string) => {
                sink.add(text)
                options.onOutput?.(ctx.callId, name, text)
              })
            }
            // "error" (it could not start) and "close" may both come: the first one settles.
            child.on("error", (e) => settle(Effect.fail(failureOf(`run_command ${JSON.stringify(program)}`, e))))
            child.on("close", (exitCode, signal) =>
              settle(
                Effect.succeed({
                  exitCode,
                  signal,
                  stdout: stdout.toString(),
                  stderr: stderr.toString(),
                  truncated: stdout.truncated || stderr.truncated
                })
              )
            )
            // Interrupted (cancel, timeout): the effect is over for us; end the process group too.
            return Effect.sync(stop)
          })
      )
  })

/** The five workspace tools over `root`. */
export function workspaceTools(root: string, options: WorkspaceToolsOptions = {}): ReadonlyArray<Tool.AnyTool> {
  return [readFile(root), writeFile(root), listDir(root), search(root), runCommand(root, options)]
}
