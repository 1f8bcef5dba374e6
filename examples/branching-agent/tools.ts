/**
 * The example agent's tools, scoped to one folder (the workspace): read_file,
 * write_file, list_dir, search and run_command.
 *
 * When to use: `workspaceTools(root)` is the tool list for `Agent.make`;
 * `commandSandbox(options)` says whether run_command's programs will run in
 * an OS sandbox here (for a start-up line).
 *
 * Details:
 * - The tools never touch `node:fs` or `child_process`: the file tools go
 *   through a `ScopedFs` handle on the workspace (every path relative to its
 *   root; `..`, absolute paths elsewhere, symbolic and hard links out, and a
 *   link swapped in between check and use are refused — see
 *   src/authority/ScopedFs.ts), run_command through a `CommandRunner`.
 * - Semantics decide retries and crash recovery (design §3): read_file,
 *   list_dir and search are readOnly and write_file is idempotent (the same
 *   input leaves the same file and gives the same result), so they get 3
 *   attempts: a call in doubt after `kill -9` is run again with the same key.
 *   run_command is unsafe: never retried, never re-run after a crash (closed
 *   "outcome unknown"), and by default it needs a person's yes.
 * - run_command runs only allowed programs (`programs`, looked up on PATH
 *   when the tools are made; "node" is always the Node running the agent),
 *   without a shell (arguments are never parsed), in the workspace with a
 *   small environment (PATH, HOME, LANG, TMPDIR, plus KEEL_CALL_ID and
 *   KEEL_IDEMPOTENCY_KEY so that a script can deduplicate by key). With
 *   `sandbox: "auto"` (the default) it runs under bubblewrap where bwrap
 *   works — the file system read-only except the workspace, no network —
 *   and unsandboxed elsewhere. Cancelling or timing out kills the whole
 *   process group. Output is bounded (head and tail kept); `onOutput` shows
 *   it live.
 * - Every result is bounded: bytes read, entries listed, files searched,
 *   matches returned, output kept.
 *
 * Gotchas: unsandboxed, an allowed program can touch anything the user can
 * (node runs any script), which is why run_command is unsafe and asks
 * first. A regex in `search` runs on the main thread: a catastrophic
 * pattern blocks until the line is done (lines are cut at 4 KiB). Hard
 * links are refused, so a workspace installed by pnpm cannot be read in its
 * node_modules (search skips node_modules anyway).
 *
 * @example
 *   const agent = yield* Agent.make(session, { model, tools: workspaceTools("/tmp/project") })
 */
import { Effect, Schema } from "effect"
import * as CommandRunner from "../../src/authority/CommandRunner.ts"
import * as ScopedFs from "../../src/authority/ScopedFs.ts"
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

/** The programs run_command may run unless told otherwise (the ones not installed are simply not allowed). */
export const defaultPrograms: ReadonlyArray<string> = ["node", "npm", "npx", "git", "ls", "cat", "head", "tail", "wc", "grep", "diff", "python3"]

export interface WorkspaceToolsOptions {
  /** Called with run_command's output as it arrives (for a live view); must not throw. */
  readonly onOutput?: (callId: string, stream: "stdout" | "stderr", text: string) => void
  /** run_command's time budget (default 5 minutes). */
  readonly commandTimeoutMs?: number
  /** Program names run_command may run (default `defaultPrograms`). */
  readonly programs?: ReadonlyArray<string>
  /** "auto" (default): bubblewrap where it works, else unsandboxed; "bwrap": required; "none". */
  readonly sandbox?: CommandRunner.SandboxMode
  /** Sandboxed commands get the network only if true (default false). */
  readonly network?: boolean
}

const refused = (message: string) => new Tool.ToolFailure({ message, retryable: false })

/** A handle's or a runner's typed error as the model sees it; only a transient OS error is worth another attempt. */
const failureOf =
  (what: string) =>
  (e: ScopedFs.ScopedFsError | CommandRunner.CommandError): Tool.ToolFailure => {
    const hint = e._tag === "WrongKind" && e.why === "is a folder" && what.startsWith("read_file") ? ": use list_dir" : ""
    const retryable = (e._tag === "FsFailure" || e._tag === "CommandFailedToStart") && e.retryable
    // A command cut short still said something worth seeing (already bounded by the runner).
    const output = e._tag === "CommandTimedOut" || e._tag === "CommandAborted" ? outputOf(e) : ""
    return new Tool.ToolFailure({ message: `${what}: ${e.message}${hint}${output}`, retryable })
  }

const outputOf = (e: { readonly stdout: string; readonly stderr: string }): string =>
  (e.stdout === "" ? "" : `\nstdout:\n${e.stdout}`) + (e.stderr === "" ? "" : `\nstderr:\n${e.stderr}`)

/** The workspace handle, made per call: the folder may be created after the tools are. */
const workspace = (root: string, what: string): Effect.Effect<ScopedFs.ScopedFs, Tool.ToolFailure> =>
  ScopedFs.make(root, { scope: "workspace" }).pipe(Effect.mapError(failureOf(`${what}: the workspace root`)))

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
      Effect.gen(function* () {
        const what = `read_file ${JSON.stringify(requested)}`
        const ws = yield* workspace(root, what)
        const read = yield* ws.readFile(requested, { maxBytes: maxBytes ?? ToolLimits.readBytesDefault }).pipe(Effect.mapError(failureOf(what)))
        if (read.bytes.includes(0)) return yield* Effect.fail(refused(`${JSON.stringify(requested)} is a binary file (${read.size} bytes)`))
        return { path: read.path, content: Buffer.from(read.bytes).toString("utf8"), bytes: read.size, truncated: read.truncated }
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
    run: ({ path: requested, content }) =>
      Effect.gen(function* () {
        const what = `write_file ${JSON.stringify(requested)}`
        const ws = yield* workspace(root, what)
        // Atomic (temp + rename in the same folder): a crash leaves the old file or the new one, never half of it.
        return yield* ws.writeFile(requested, content, { createParents: true }).pipe(Effect.mapError(failureOf(what)))
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
      Effect.gen(function* () {
        const what = `list_dir ${JSON.stringify(requested ?? ".")}`
        const ws = yield* workspace(root, what)
        return yield* ws.list(requested ?? ".", { entriesMax: ToolLimits.listEntriesMax }).pipe(Effect.mapError(failureOf(what)))
      })
  })

// ------------------------------------------------------------------------------------------------
// search

const skippedFolders: ReadonlySet<string> = new Set([".git", "node_modules"])

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
      Effect.gen(function* () {
        const what = `search ${JSON.stringify(input.pattern)}`
        const matches = yield* makeMatcher(input.pattern, input.regex ?? false, input.ignoreCase ?? false)
        const ws = yield* workspace(root, what)
        // Breadth-first, bounded by entries; never follows a symlink (the handle's walk).
        const walked = yield* ws
          .walk(input.path ?? ".", { entriesMax: ToolLimits.searchEntriesMax, skip: skippedFolders })
          .pipe(Effect.mapError(failureOf(what)))
        const resultsMax = input.maxResults ?? ToolLimits.searchResultsDefault
        const found: Array<{ path: string; line: number; text: string }> = []
        let filesSearched = 0
        let truncated = walked.truncated
        for (const file of walked.files) {
          if (ctx.signal.aborted) return yield* Effect.fail(refused("search cancelled"))
          if (file.bytes > ToolLimits.searchFileBytesMax) continue
          if (filesSearched >= ToolLimits.searchFilesMax) {
            truncated = true
            break
          }
          filesSearched++
          // A file that vanished, or that the handle refuses (a hard link), is skipped like a binary one.
          const read = yield* Effect.option(ws.readFile(file.path, { maxBytes: ToolLimits.searchFileBytesMax }))
          if (read._tag === "None" || read.value.bytes.includes(0)) continue
          const lines = Buffer.from(read.value.bytes).toString("utf8").split("\n")
          for (const [i, line] of lines.entries()) {
            if (!matches(line.slice(0, ToolLimits.searchLineCharsMax))) continue
            if (found.length >= resultsMax) {
              truncated = true
              break
            }
            found.push({ path: file.path, line: i + 1, text: line.trim().slice(0, ToolLimits.matchTextCharsMax) })
          }
        }
        return { matches: found, filesSearched, truncated }
      })
  })

function makeMatcher(pattern: string, regex: boolean, ignoreCase: boolean): Effect.Effect<(line: string) => boolean, Tool.ToolFailure> {
  if (!regex) {
    const needle = ignoreCase ? pattern.toLowerCase() : pattern
    return Effect.succeed(ignoreCase ? (line) => line.toLowerCase().includes(needle) : (line) => line.includes(needle))
  }
  return Effect.try({
    try: () => {
      const compiled = new RegExp(pattern, ignoreCase ? "i" : "")
      return (line: string) => compiled.test(line)
    },
    catch: (e) => refused(`invalid regular expression: ${e instanceof Error ? e.message : String(e)}`)
  })
}

// ------------------------------------------------------------------------------------------------
// run_command

const RunCommandOutput = Schema.Struct({
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  stdout: Schema.String,
  stderr: Schema.String,
  truncated: Schema.Boolean
})

/** The variables a command gets from ours: enough to find programs, nothing else. */
const inheritedVariables = ["PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"]

/** The allow-list: the names found on PATH now, and "node" as the Node that runs the agent. */
function allowList(programs: ReadonlyArray<string>): Record<string, string> {
  const { allow } = CommandRunner.resolveOnPath(programs.filter((p) => p !== "node"))
  return programs.includes("node") ? { ...allow, node: process.execPath } : allow
}

/** Whether run_command's programs run sandboxed here ("auto" falls back to none, with the reason in `note`). */
export const commandSandbox = (options: WorkspaceToolsOptions = {}): Effect.Effect<CommandRunner.SandboxStatus, CommandRunner.SandboxUnavailable> =>
  CommandRunner.sandboxStatus(options.sandbox ?? "auto", { network: options.network ?? false })

const runCommand = (root: string, options: WorkspaceToolsOptions) => {
  const allow = allowList(options.programs ?? defaultPrograms)
  const timeoutMs = options.commandTimeoutMs ?? 5 * 60 * 1000
  const names = Object.keys(allow).sort()
  return Tool.make({
    name: "run_command",
    description:
      "Runs a program with arguments in the workspace root, without a shell (no pipes, globs or redirections), and returns its exit code and output. " +
      `Allowed programs: ${names.length === 0 ? "none" : names.join(", ")}. Needs the user's approval; never retried.`,
    input: Schema.Struct({
      program: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(4096)),
      args: Schema.optional(Schema.Array(Schema.String.check(Schema.isMaxLength(64 * 1024))).check(Schema.isMaxLength(ToolLimits.commandArgsMax)))
    }),
    output: RunCommandOutput,
    semantics: "unsafe",
    timeoutMs,
    run: ({ program, args }, ctx) =>
      Effect.gen(function* () {
        const ws = yield* workspace(root, "run_command")
        const runner = CommandRunner.make({
          cwd: ws,
          allow,
          env: CommandRunner.inheritEnv(inheritedVariables),
          timeoutMs,
          outputBytesMax: ToolLimits.commandOutputBytesMax,
          killGraceMs: ToolLimits.commandKillGraceMs,
          sandbox: options.sandbox ?? "auto",
          network: options.network ?? false
        })
        const result = yield* runner
          .run(program, args ?? [], {
            signal: ctx.signal,
            env: { KEEL_CALL_ID: ctx.callId, KEEL_IDEMPOTENCY_KEY: ctx.idempotencyKey },
            onOutput: (stream, text) => options.onOutput?.(ctx.callId, stream, text)
          })
          .pipe(Effect.mapError(failureOf("run_command")))
        return { exitCode: result.exitCode, signal: result.signal, stdout: result.stdout, stderr: result.stderr, truncated: result.truncated }
      })
  })
}

/** The five workspace tools over `root`. */
export function workspaceTools(root: string, options: WorkspaceToolsOptions = {}): ReadonlyArray<Tool.AnyTool> {
  return [readFile(root), writeFile(root), listDir(root), search(root), runCommand(root, options)]
}
