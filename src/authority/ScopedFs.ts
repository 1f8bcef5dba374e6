/**
 * A file system handle rooted at one folder: the only way a tool should touch
 * files. Every path it takes is relative to the root, and nothing it does can
 * read, write or list anything outside it — not through `..`, an absolute
 * path, a symbolic link, a hard link, or a link swapped in between the check
 * and the use (the last one fully on Linux: see Gotchas).
 *
 * When to use: hand a tool `ScopedFs.make(root)` instead of `node:fs` (design
 * §5: nothing ambient). `readFile`, `writeFile` (atomic), `mkdir`, `list`,
 * `stat` and `walk` are what the example's tools need; there is no `remove`
 * yet (add it the same way: open the parent, verify, unlink through it).
 *
 * Details:
 * - A path is checked as text first: empty, NUL, a backslash (a separator on
 *   Windows, a letter on POSIX: refused so that a path means the same
 *   everywhere), too long, a name over 255 bytes or too deep → PathInvalid;
 *   `..` above the root or an absolute path elsewhere → PathEscapes. An
 *   absolute path inside the root (as given, or as its real path) is taken.
 *   Names are literal: `..%2f`, `．．` or `‥` are file names, kept inside.
 * - Then it is resolved with `realpath` (the root's own realpath is taken once,
 *   in `make`); a link leading out → PathEscapes, a link loop → SymlinkLoop.
 *   For a path that does not exist yet, its deepest existing folder is.
 * - Then the file is opened with O_NOFOLLOW (a link swapped in at the last
 *   name fails the open) and the OPENED file is verified: on Linux,
 *   readlink(/proc/self/fd/N) names what the descriptor really is and must be
 *   inside the root; elsewhere fstat(fd) must be the same file (dev, ino) as
 *   the realpath'd path, which must still be its own realpath. On Linux,
 *   writes, folder creation and listings then go through /proc/self/fd/N of
 *   the verified folder, so they land in the folder that was checked even if
 *   a link is swapped after.
 * - A regular file with more than one name (nlink > 1, a hard link) is
 *   refused: its other names may be outside and nothing can tell where.
 * - Writes are atomic: a temporary file in the same folder, fsync, rename over
 *   the name (a crash leaves the old content or the new, never half). A link
 *   at the name that stays inside is followed (its target is written); a
 *   dangling link, or one swapped in after the check, is replaced by the
 *   file, never written through.
 * - Errors are tagged data (design §8.4): PathInvalid, PathEscapes,
 *   SymlinkLoop, NotFound, WrongKind, FsFailure (with `retryable`).
 *
 * Gotchas:
 * - This is a discipline, not a sandbox. JavaScript has no way to take
 *   `node:fs` away from code: a tool's own code can still import it and read
 *   anything the process can. What makes the handle the boundary is that
 *   tools are handed only handles (and the capability check decides which);
 *   review tools that import `fs`, or run untrusted code in another process
 *   under an OS sandbox (see CommandRunner's bubblewrap option).
 * - The check-then-use window is closed on Linux only (`checkThenUse:
 *   "closed"`). Elsewhere (`"narrowed"`: no /proc/self/fd, and Node offers no
 *   openat) the opened file is verified by (dev, ino), which catches a
 *   swapped last name or a swapped folder left in place, but a process that
 *   swaps a folder for a link out and back between two of our system calls
 *   can still slip a write or a listing through (those go by path after the
 *   check), and in principle a read.
 * - `..` is taken as text, before links: `link/../x` is `x` below the root,
 *   not a sibling of the link's target (as the kernel would read it).
 * - Hard links are refused, so a tree whose files are hard links (a pnpm
 *   store, some backup tools) cannot be read through a handle.
 * - A real path returned by `resolve` is a check, not a permit: using it
 *   later with `fs` reopens the race the handle's own operations close.
 *
 * @example
 *   const ws = yield* ScopedFs.make("/tmp/project", { scope: "workspace" })
 *   const { bytes } = yield* ws.readFile("src/main.ts", { maxBytes: 64 * 1024 })
 *   yield* ws.writeFile("out/report.md", "# done\n", { createParents: true })
 *   yield* ws.readFile("../secret") // fails with PathEscapes
 */
import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { assert, InvariantViolation } from "../internal/assert.ts"

/** Bounds of every handle operation (a limit on everything, design §8.6). */
export const ScopedFsLimits = {
  /** Characters of a requested path. */
  pathCharsMax: 4096,
  /** Bytes of one name (NAME_MAX on Linux and macOS). */
  nameBytesMax: 255,
  /** Names in one path below the root. */
  depthMax: 128,
  /** Bytes one readFile may return, and one writeFile may write. */
  readBytesMax: 64 * 1024 * 1024,
  writeBytesMax: 64 * 1024 * 1024,
  /** Entries one listing looks at (a folder with more is listed in part, `truncated`). */
  listEntriesMax: 100_000,
  /** Entries (files and folders) one walk looks at. */
  walkEntriesMax: 100_000
} as const

// ------------------------------------------------------------------------------------------------
// Errors

/** The path is not acceptable as text (empty, NUL, backslash, too long, too deep). Nothing was touched. */
export class PathInvalid extends Schema.TaggedError<PathInvalid>()("PathInvalid", {
  path: Schema.String,
  why: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)} is not a valid path: ${this.why}`
  }
}

/** The path leads outside the root (by `..`, an absolute path, a link, a hard link, or a link swapped in). */
export class PathEscapes extends Schema.TaggedError<PathEscapes>()("PathEscapes", {
  path: Schema.String,
  /** Where the handle's folder is named in messages: "root", "workspace"… */
  scope: Schema.String,
  why: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)} is outside the ${this.scope}: ${this.why}`
  }
}

/** Symbolic links that never end (a loop, or a chain longer than the system follows). */
export class SymlinkLoop extends Schema.TaggedError<SymlinkLoop>()("SymlinkLoop", {
  path: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)}: symbolic links that loop`
  }
}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  path: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)}: no such file or folder`
  }
}

/** A folder where a file is needed, a file where a folder is, a device or a pipe. */
export class WrongKind extends Schema.TaggedError<WrongKind>()("WrongKind", {
  path: Schema.String,
  why: Schema.String
}) {
  override get message() {
    return `${JSON.stringify(this.path)} ${this.why}`
  }
}

/** The operating system refused (permission, too many open files, a full disk…). */
export class FsFailure extends Schema.TaggedError<FsFailure>()("FsFailure", {
  path: Schema.String,
  operation: Schema.String,
  code: Schema.String,
  reason: Schema.String,
  retryable: Schema.Boolean
}) {
  override get message() {
    return `${this.operation} ${JSON.stringify(this.path)}: ${this.reason}`
  }
}

export type ScopedFsError = PathInvalid | PathEscapes | SymlinkLoop | NotFound | WrongKind | FsFailure

const isScopedFsError = (e: unknown): e is ScopedFsError =>
  e instanceof PathInvalid || e instanceof PathEscapes || e instanceof SymlinkLoop || e instanceof NotFound || e instanceof WrongKind || e instanceof FsFailure

// ------------------------------------------------------------------------------------------------
// The handle

export type Kind = "file" | "dir" | "symlink" | "other"

/** Where a path leads: `path` as the model should see it ("/"-separated, relative, "." for the root). */
export interface Resolved {
  readonly path: string
  readonly real: string
  readonly exists: boolean
}

export interface FileRead {
  readonly path: string
  /** At most `maxBytes`, from the start of the file. */
  readonly bytes: Uint8Array
  /** The file's size when it was opened. */
  readonly size: number
  readonly truncated: boolean
}

export interface Written {
  readonly path: string
  readonly bytes: number
}

export interface Entry {
  readonly name: string
  /** Of the entry itself: a link is "symlink", never followed. */
  readonly kind: Kind
  /** Size of a file; 0 for anything else. */
  readonly bytes: number
}

export interface Listing {
  readonly path: string
  /** Sorted by name (code units). */
  readonly entries: ReadonlyArray<Entry>
  readonly truncated: boolean
}

export interface Stat {
  readonly path: string
  readonly kind: Kind
  readonly bytes: number
  readonly mtimeMs: number
}

export interface Walked {
  /** Regular files under the folder, breadth-first, each folder's names sorted; links never followed. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly bytes: number }>
  readonly truncated: boolean
}

export interface ScopedFs {
  /** The root's real path (for display and for a child process's cwd; not for `fs`). */
  readonly root: string
  /** What the root is called in messages ("root" unless `make` was told). */
  readonly scope: string
  /** "closed" where opened files are verified through /proc/self/fd (Linux); "narrowed" elsewhere (see Gotchas). */
  readonly checkThenUse: "closed" | "narrowed"
  readonly resolve: (path: string) => Effect.Effect<Resolved, ScopedFsError>
  readonly readFile: (path: string, options?: { readonly maxBytes?: number }) => Effect.Effect<FileRead, ScopedFsError>
  /** Atomic (temp + rename); replaces the file whole. `createParents` makes the missing folders. */
  readonly writeFile: (path: string, data: string | Uint8Array, options?: { readonly createParents?: boolean }) => Effect.Effect<Written, ScopedFsError>
  /** Succeeds if the folder is already there. */
  readonly mkdir: (path: string, options?: { readonly parents?: boolean }) => Effect.Effect<{ readonly path: string }, ScopedFsError>
  readonly list: (path: string, options?: { readonly entriesMax?: number }) => Effect.Effect<Listing, ScopedFsError>
  readonly stat: (path: string) => Effect.Effect<Stat, ScopedFsError>
  /** Files under a folder, for search; `skip` names folders never entered (".git"). Bounded by `entriesMax`. */
  readonly walk: (path: string, options?: { readonly entriesMax?: number; readonly skip?: ReadonlySet<string> }) => Effect.Effect<Walked, ScopedFsError>
}

export interface MakeOptions {
  /** What the root is called in messages, e.g. "workspace" ("… is outside the workspace"). */
  readonly scope?: string
}

/**
 * A handle on `root` (which must be an existing folder; its realpath is taken
 * now and never again).
 */
export const make = (root: string, options: MakeOptions = {}): Effect.Effect<ScopedFs, ScopedFsError> =>
  Effect.tryPromise({
    try: async () => {
      if (root.length === 0 || root.includes("\0")) throw new PathInvalid({ path: root, why: "a root must be a non-empty path without NUL" })
      const real = await fs.realpath(root).catch((e) => {
        throw fromErrno(root, "realpath", e)
      })
      const stat = await fs.stat(real)
      if (!stat.isDirectory()) throw new WrongKind({ path: root, why: "is not a folder (a root must be one)" })
      return handle({ lexical: path.resolve(root), real, scope: options.scope ?? "root", procFd: await procFdWorks(real) })
    },
    catch: (e) => toError(root, "open root", e)
  })

interface Root {
  /** The root as given, made absolute (so an absolute path through the same alias is inside). */
  readonly lexical: string
  readonly real: string
  readonly scope: string
  /** /proc/self/fd/N names the descriptor's file and can be used as a path (Linux, fds are the OS's). */
  readonly procFd: boolean
}

function handle(root: Root): ScopedFs {
  assert(path.isAbsolute(root.real), "ScopeInv", `the root's real path is absolute: ${root.real}`)
  const run =
    <A>(requested: string, operation: string, body: (signal: AbortSignal) => Promise<A>) =>
    (): Effect.Effect<A, ScopedFsError> =>
      Effect.tryPromise({ try: (signal) => body(signal), catch: (e) => toError(requested, operation, e) })
  return {
    root: root.real,
    scope: root.scope,
    checkThenUse: root.procFd ? "closed" : "narrowed",
    resolve: (requested) =>
      run(requested, "resolve", async () => {
        const r = await resolve(root, requested)
        return { path: shown(root, r.real), real: r.real, exists: r.exists }
      })(),
    readFile: (requested, options = {}) => run(requested, "read", () => readFile(root, requested, options.maxBytes ?? ScopedFsLimits.readBytesMax))(),
    writeFile: (requested, data, options = {}) => run(requested, "write", () => writeFile(root, requested, data, options.createParents ?? false))(),
    mkdir: (requested, options = {}) => run(requested, "mkdir", () => mkdir(root, requested, options.parents ?? false))(),
    list: (requested, options = {}) => run(requested, "list", () => list(root, requested, options.entriesMax ?? ScopedFsLimits.listEntriesMax))(),
    stat: (requested) => run(requested, "stat", () => stat(root, requested))(),
    walk: (requested, options = {}) =>
      run(requested, "walk", (signal) => walk(root, requested, options.entriesMax ?? ScopedFsLimits.walkEntriesMax, options.skip ?? new Set(), signal))()
  }
}

// ------------------------------------------------------------------------------------------------
// Paths as text, then through the file system

const isWithin = (base: string, target: string): boolean => {
  const rel = path.relative(base, target)
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))
}

/** The names below the root that `requested` means, checked as text only. */
export function components(root: Pick<Root, "lexical" | "real" | "scope">, requested: string): Array<string> {
  const invalid = (why: string) => new PathInvalid({ path: requested, why })
  if (typeof requested !== "string") throw invalid("a path is a string")
  if (requested.length === 0) throw invalid(`it is empty (use "." for the ${root.scope} itself)`)
  if (requested.length > ScopedFsLimits.pathCharsMax) throw invalid(`it is longer than ${ScopedFsLimits.pathCharsMax} characters`)
  if (requested.includes("\0")) throw invalid("it contains a NUL character")
  if (requested.includes("\\")) throw invalid('it contains a backslash (use "/" between names)')
  let relative = requested
  if (path.isAbsolute(requested)) {
    // Through the root as given (e.g. /tmp/x when /tmp is a link) or through its real path.
    const absolute = path.resolve(requested)
    if (isWithin(root.lexical, absolute)) relative = path.relative(root.lexical, absolute)
    else if (isWithin(root.real, absolute)) relative = path.relative(root.real, absolute)
    else throw new PathEscapes({ path: requested, scope: root.scope, why: `an absolute path elsewhere (paths are relative to the ${root.scope})` })
  }
  const names: Array<string> = []
  // path.relative speaks the platform's separator; a path as given uses "/" (backslashes are refused above).
  for (const name of relative.split(relative === requested ? "/" : path.sep)) {
    if (name === "" || name === ".") continue
    if (name === "..") {
      if (names.pop() === undefined) throw new PathEscapes({ path: requested, scope: root.scope, why: `".." climbs above the ${root.scope}` })
      continue
    }
    if (Buffer.byteLength(name) > ScopedFsLimits.nameBytesMax) throw invalid(`a name is longer than ${ScopedFsLimits.nameBytesMax} bytes`)
    names.push(name)
    if (names.length > ScopedFsLimits.depthMax) throw invalid(`it is deeper than ${ScopedFsLimits.depthMax} folders`)
  }
  return names
}

interface Resolution {
  /** The real path (of the file, or of where it would be). */
  readonly real: string
  readonly exists: boolean
  /** The deepest existing folder on the way, real, and the names below it that do not exist. */
  readonly existing: string
  readonly missing: ReadonlyArray<string>
}

/** Resolves through the file system's links; whatever exists of the path must stay inside. */
async function resolve(root: Root, requested: string): Promise<Resolution> {
  const names = components(root, requested)
  const missing: Array<string> = []
  let candidate = path.join(root.real, ...names)
  // Bounded: each step drops one name, and the root exists.
  for (let step = 0; step <= names.length; step++) {
    let real: string
    try {
      real = await fs.realpath(candidate)
    } catch (e) {
      const code = errnoOf(e)
      if (code !== "ENOENT" || candidate === root.real) throw fromErrno(requested, "resolve", e)
      missing.unshift(path.basename(candidate))
      candidate = path.dirname(candidate)
      continue
    }
    if (!isWithin(root.real, real)) throw new PathEscapes({ path: requested, scope: root.scope, why: "a symbolic link leads out of it" })
    const resolved = path.join(real, ...missing)
    assert(isWithin(root.real, resolved), "ScopeInv", `a resolved path is inside the root: ${resolved}`)
    return { real: resolved, exists: missing.length === 0, existing: real, missing }
  }
  throw new NotFound({ path: requested })
}

const shown = (root: Root, real: string): string => {
  const rel = path.relative(root.real, real)
  return rel === "" ? "." : rel.split(path.sep).join("/")
}

// ------------------------------------------------------------------------------------------------
// Open, then verify what was opened

const O = fsSync.constants
// 0 where the platform lacks the flag (Windows): the verification below still runs.
const NOFOLLOW = O.O_NOFOLLOW ?? 0
const DIRECTORY = O.O_DIRECTORY ?? 0
const NONBLOCK = O.O_NONBLOCK ?? 0
const NOCTTY = O.O_NOCTTY ?? 0

/** Whether /proc/self/fd/N names this runtime's descriptors (Linux with /proc, Node, Bun and Deno alike). */
async function procFdWorks(realRoot: string): Promise<boolean> {
  if (process.platform !== "linux") return false
  let fh: fs.FileHandle | undefined
  try {
    fh = await fs.open(realRoot, O.O_RDONLY | DIRECTORY)
    return (await fs.readlink(`/proc/self/fd/${fh.fd}`)) === realRoot
  } catch {
    return false
  } finally {
    await fh?.close()
  }
}

/** A path that reaches `name` inside an opened, verified folder: through the descriptor where the system allows. */
const at = (root: Root, dir: fs.FileHandle, dirReal: string, name: string): string =>
  root.procFd ? `/proc/self/fd/${dir.fd}/${name}` : path.join(dirReal, name)

const swapped = (root: Root, requested: string) =>
  new PathEscapes({ path: requested, scope: root.scope, why: "a link changed between the check and the open (refused)" })

/**
 * Opens `real` (a realpath inside the root) without following a link at its
 * last name, then proves the descriptor is the file inside the root.
 */
async function openVerified(root: Root, requested: string, real: string, flags: number): Promise<{ fh: fs.FileHandle; stat: fsSync.Stats }> {
  assert(isWithin(root.real, real), "ScopeInv", `only paths inside the root are opened: ${real}`)
  let fh: fs.FileHandle
  try {
    // NONBLOCK: opening a FIFO must not hang; NOCTTY: a terminal must not become ours.
    fh = await fs.open(real, flags | NOFOLLOW | NONBLOCK | NOCTTY)
  } catch (e) {
    // The resolved path's last name was not a link: if it is one now, it was swapped in.
    if (errnoOf(e) === "ELOOP") throw swapped(root, requested)
    throw fromErrno(requested, "open", e)
  }
  try {
    const stat = await fh.stat()
    if (root.procFd) {
      const actual = await fs.readlink(`/proc/self/fd/${fh.fd}`)
      if (!isWithin(root.real, actual)) throw swapped(root, requested)
    } else {
      // Still its own realpath (no link on the way now) and the very file that was opened.
      const again = await fs.realpath(real)
      const now = await fs.lstat(again)
      if (again !== real || now.dev !== stat.dev || now.ino !== stat.ino) throw swapped(root, requested)
    }
    if (stat.isFile() && stat.nlink > 1) {
      throw new PathEscapes({
        path: requested,
        scope: root.scope,
        why: `it is a hard link (${stat.nlink} names): another name may be outside, and nothing can tell where`
      })
    }
    return { fh, stat }
  } catch (e) {
    await fh.close()
    throw e
  }
}

const openDir = (root: Root, requested: string, real: string) => openVerified(root, requested, real, O.O_RDONLY | DIRECTORY)

// ------------------------------------------------------------------------------------------------
// Operations

async function readFile(root: Root, requested: string, maxBytes: number): Promise<FileRead> {
  assert(Number.isInteger(maxBytes) && maxBytes >= 0 && maxBytes <= ScopedFsLimits.readBytesMax, "ScopeInv", `maxBytes in 0..${ScopedFsLimits.readBytesMax}`)
  const r = await resolve(root, requested)
  if (!r.exists) throw new NotFound({ path: requested })
  const { fh, stat } = await openVerified(root, requested, r.real, O.O_RDONLY)
  try {
    if (stat.isDirectory()) throw new WrongKind({ path: requested, why: "is a folder" })
    if (!stat.isFile()) throw new WrongKind({ path: requested, why: "is not a regular file" })
    const buffer = Buffer.alloc(Math.min(maxBytes, stat.size))
    let filled = 0
    // Bounded by the buffer: each read adds at least one byte or ends the loop.
    while (filled < buffer.length) {
      const { bytesRead } = await fh.read(buffer, filled, buffer.length - filled, filled)
      if (bytesRead === 0) break
      filled += bytesRead
    }
    assert(filled <= maxBytes, "ScopeInv", "a read returns at most maxBytes")
    return { path: shown(root, r.real), bytes: buffer.subarray(0, filled), size: stat.size, truncated: stat.size > filled }
  } finally {
    await fh.close()
  }
}

async function writeFile(root: Root, requested: string, data: string | Uint8Array, createParents: boolean): Promise<Written> {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data
  if (bytes.byteLength > ScopedFsLimits.writeBytesMax)
    throw new PathInvalid({ path: requested, why: `more than ${ScopedFsLimits.writeBytesMax} bytes to write` })
  const r = await resolve(root, requested)
  if (r.real === root.real) throw new WrongKind({ path: requested, why: `is the ${root.scope} itself (a folder)` })
  // The file's folder: made if asked (its missing names, all but the file's own).
  const dirReal = path.dirname(r.real)
  const name = path.basename(r.real)
  if (!r.exists && r.missing.length > 1) {
    if (!createParents) throw new NotFound({ path: requested })
    await makeFolders(root, requested, r.existing, r.missing.slice(0, -1))
  }
  const { fh: dir } = await openDir(root, requested, dirReal)
  try {
    const target = at(root, dir, dirReal, name)
    const existing = await fs.lstat(target).catch((e) => (errnoOf(e) === "ENOENT" ? undefined : Promise.reject(e)))
    if (existing?.isDirectory()) throw new WrongKind({ path: requested, why: "is a folder" })
    if (existing?.isFile() && existing.nlink > 1) {
      throw new PathEscapes({ path: requested, scope: root.scope, why: `it is a hard link (${existing.nlink} names): another name may be outside` })
    }
    // Temp + fsync + rename in the verified folder: readers see the old file or the new one, never half.
    const temporary = at(root, dir, dirReal, `.keel-${process.pid}-${randomBytes(6).toString("hex")}.tmp`)
    try {
      const file = await fs.open(temporary, O.O_WRONLY | O.O_CREAT | O.O_EXCL | NOFOLLOW, 0o666)
      try {
        await file.writeFile(bytes)
        await file.sync()
      } finally {
        await file.close()
      }
      await fs.rename(temporary, target)
    } catch (e) {
      await fs.rm(temporary, { force: true })
      throw e
    }
    // The rename is durable once the folder is synced (some systems refuse a folder fsync: harmless).
    await dir.sync().catch(() => undefined)
    return { path: shown(root, path.join(dirReal, name)), bytes: bytes.byteLength }
  } finally {
    await dir.close()
  }
}

/** Makes `names` one below the other under `existing` (a real folder inside), each through its verified parent. */
async function makeFolders(root: Root, requested: string, existing: string, names: ReadonlyArray<string>): Promise<void> {
  assert(names.length <= ScopedFsLimits.depthMax, "ScopeInv", "folders made by one call are bounded")
  let current = existing
  for (const name of names) {
    const { fh: dir } = await openDir(root, requested, current)
    try {
      const next = at(root, dir, current, name)
      try {
        await fs.mkdir(next)
      } catch (e) {
        if (errnoOf(e) !== "EEXIST") throw e
        // Made meanwhile by someone else: fine if it is a folder, never if it is a link.
        const there = await fs.lstat(next)
        if (there.isSymbolicLink()) throw new PathEscapes({ path: requested, scope: root.scope, why: "a symbolic link is in the way of a folder to create" })
        if (!there.isDirectory()) throw new WrongKind({ path: requested, why: "has a file where a folder is needed" })
      }
    } finally {
      await dir.close()
    }
    current = path.join(current, name)
  }
}

async function mkdir(root: Root, requested: string, parents: boolean): Promise<{ readonly path: string }> {
  const r = await resolve(root, requested)
  if (r.exists) {
    const { fh, stat } = await openVerified(root, requested, r.real, O.O_RDONLY)
    await fh.close()
    if (!stat.isDirectory()) throw new WrongKind({ path: requested, why: "is a file, not a folder" })
    return { path: shown(root, r.real) }
  }
  if (r.missing.length > 1 && !parents) throw new NotFound({ path: requested })
  await makeFolders(root, requested, r.existing, r.missing)
  return { path: shown(root, r.real) }
}

const kindOf = (s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): Kind =>
  s.isSymbolicLink() ? "symlink" : s.isDirectory() ? "dir" : s.isFile() ? "file" : "other"

async function list(root: Root, requested: string, entriesMax: number): Promise<Listing> {
  assert(Number.isInteger(entriesMax) && entriesMax >= 0 && entriesMax <= ScopedFsLimits.listEntriesMax, "ScopeInv", "entriesMax is bounded")
  const r = await resolve(root, requested)
  if (!r.exists) throw new NotFound({ path: requested })
  const { entries, truncated } = await listReal(root, requested, r.real, entriesMax)
  return { path: shown(root, r.real), entries, truncated }
}

async function listReal(root: Root, requested: string, real: string, entriesMax: number): Promise<{ entries: Array<Entry>; truncated: boolean }> {
  const { fh, stat } = await openDir(root, requested, real)
  try {
    assert(stat.isDirectory(), "ScopeInv", "O_DIRECTORY opened a folder")
    // Through the descriptor on Linux: the listing is of the folder that was verified.
    const dirPath = root.procFd ? `/proc/self/fd/${fh.fd}` : real
    const names: Array<fsSync.Dirent> = []
    let truncated = false
    const reader = await fs.opendir(dirPath)
    try {
      for (let d = await reader.read(); d !== null; d = await reader.read()) {
        if (names.length >= ScopedFsLimits.listEntriesMax) {
          truncated = true
          break
        }
        names.push(d)
      }
    } finally {
      await reader.close()
    }
    if (!root.procFd) {
      const now = await fs.lstat(real)
      if (now.dev !== stat.dev || now.ino !== stat.ino) throw swapped(root, requested)
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const kept = names.slice(0, entriesMax)
    const entries = await Promise.all(
      kept.map(async (d): Promise<Entry> => {
        const kind = kindOf(d)
        const bytes = kind === "file" ? ((await fs.lstat(path.join(dirPath, d.name)).catch(() => undefined))?.size ?? 0) : 0
        return { name: d.name, kind, bytes }
      })
    )
    return { entries, truncated: truncated || names.length > kept.length }
  } finally {
    await fh.close()
  }
}

async function stat(root: Root, requested: string): Promise<Stat> {
  const r = await resolve(root, requested)
  if (!r.exists) throw new NotFound({ path: requested })
  const { fh, stat } = await openVerified(root, requested, r.real, O.O_RDONLY)
  await fh.close()
  return { path: shown(root, r.real), kind: kindOf(stat), bytes: stat.isFile() ? stat.size : 0, mtimeMs: stat.mtimeMs }
}

async function walk(root: Root, requested: string, entriesMax: number, skip: ReadonlySet<string>, signal: AbortSignal): Promise<Walked> {
  assert(Number.isInteger(entriesMax) && entriesMax >= 0 && entriesMax <= ScopedFsLimits.walkEntriesMax, "ScopeInv", "entriesMax is bounded")
  const r = await resolve(root, requested)
  if (!r.exists) throw new NotFound({ path: requested })
  const files: Array<{ path: string; bytes: number }> = []
  // Breadth-first over real folders inside; entries are counted as they are seen, so the walk is bounded.
  const queue: Array<string> = [r.real]
  let seen = 1
  let truncated = false
  while (queue.length > 0 && !truncated) {
    signal.throwIfAborted()
    const folder = queue.shift() as string
    const { entries, truncated: cut } = await listReal(root, requested, folder, ScopedFsLimits.listEntriesMax)
    truncated ||= cut
    for (const entry of entries) {
      if (++seen > entriesMax) {
        truncated = true
        break
      }
      const real = path.join(folder, entry.name)
      if (entry.kind === "dir" && !skip.has(entry.name)) queue.push(real)
      else if (entry.kind === "file") files.push({ path: shown(root, real), bytes: entry.bytes })
    }
  }
  return { files, truncated }
}

// ------------------------------------------------------------------------------------------------
// Errors from the system

const errnoOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

const transient = new Set(["EMFILE", "ENFILE", "EAGAIN", "EBUSY", "EINTR", "ENOMEM"])

function fromErrno(requested: string, operation: string, e: unknown): ScopedFsError {
  if (isScopedFsError(e)) return e
  const code = errnoOf(e)
  switch (code) {
    case "ENOENT":
      return new NotFound({ path: requested })
    case "ELOOP":
      return new SymlinkLoop({ path: requested })
    case "ENOTDIR":
      return new WrongKind({ path: requested, why: "is not a folder (or a name on its way is a file)" })
    case "EISDIR":
      return new WrongKind({ path: requested, why: "is a folder" })
    case "ENAMETOOLONG":
      return new PathInvalid({ path: requested, why: "it is too long for the system" })
  }
  const reason = code === "EACCES" || code === "EPERM" ? "permission denied" : e instanceof Error ? e.message : String(e)
  return new FsFailure({ path: requested, operation, code: code ?? "unknown", reason, retryable: code !== undefined && transient.has(code) })
}

function toError(requested: string, operation: string, e: unknown): ScopedFsError {
  // A failed assertion is a bug, not an expected error: thrown from `catch`, Effect makes it a defect.
  if (e instanceof InvariantViolation) throw e
  return fromErrno(requested, operation, e)
}
