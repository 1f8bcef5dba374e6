// ScopedFs: a handle that never reads, writes or lists outside its root. A corpus of escapes (`..`,
// encoded and look-alike forms, backslashes, absolute paths, NUL, over-long paths, symlinks to outside
// as file, folder and chain, loops, a hard link to an outside file), each tried through read, write,
// list and stat; a link flipped between an inside and an outside target by another process while
// the handle reads and writes through it; and the ordinary operations the example's tools need.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as ScopedFs from "../../src/authority/ScopedFs.ts"
import { tempDir } from "../support/tmp.ts"

interface Fixture {
  readonly dir: string
  readonly root: string
  readonly outside: string
}

/** A workspace (ws) with files, and beside it an outside folder with secrets and a look-alike sibling (ws-evil). */
const fixture: Effect.Effect<Fixture, never, Scope.Scope> = Effect.map(tempDir("keel-scopedfs-"), (dir) => {
  const root = path.join(dir, "ws")
  const outside = path.join(dir, "outside")
  fs.mkdirSync(path.join(root, "src"), { recursive: true })
  fs.mkdirSync(path.join(root, "sub"))
  fs.mkdirSync(path.join(outside, "dir"), { recursive: true })
  fs.mkdirSync(path.join(dir, "ws-evil"))
  fs.writeFileSync(path.join(root, "a.txt"), "alpha\nneedle here\n")
  fs.writeFileSync(path.join(root, "src", "b.js"), "const needle = 1\n")
  fs.writeFileSync(path.join(root, "sub", "secret.txt"), "inside sub\n")
  fs.writeFileSync(path.join(outside, "secret.txt"), "SECRET outside\n")
  fs.writeFileSync(path.join(outside, "dir", "secret.txt"), "SECRET outside dir\n")
  fs.writeFileSync(path.join(dir, "ws-evil", "secret.txt"), "SECRET sibling\n")
  return { dir, root, outside }
})

const make = (root: string) => ScopedFs.make(root, { scope: "workspace" })

type Outcome = { readonly ok: unknown } | { readonly tag: ScopedFs.ScopedFsError["_tag"]; readonly message: string }

/** Runs an operation: its value, or the tag of its typed error (a defect fails the test). */
const outcome = <A>(effect: Effect.Effect<A, ScopedFs.ScopedFsError>): Effect.Effect<Outcome> =>
  Effect.map(Effect.result(effect), (r): Outcome => (r._tag === "Success" ? { ok: r.success } : { tag: r.failure._tag, message: r.failure.message }))

/** Everything outside the root, as text (names, contents, link targets): must not change. */
function snapshotOutside(dir: string, root: string): string {
  const lines: Array<string> = []
  const visit = (p: string): void => {
    if (p === root) return
    const s = fs.lstatSync(p)
    if (s.isSymbolicLink()) lines.push(`${p} -> ${fs.readlinkSync(p)}`)
    else if (s.isDirectory()) for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name))
    else lines.push(`${p}: ${fs.readFileSync(p, "utf8")}`)
  }
  visit(dir)
  return lines.join("\n")
}

describe("ScopedFs.make", () => {
  it.effect("takes an existing folder (its real path), refuses a missing one or a file", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const ws = yield* make(root)
      assert.strictEqual(ws.root, fs.realpathSync(root))
      assert.strictEqual(ws.scope, "workspace")
      assert.strictEqual(ws.checkThenUse, process.platform === "linux" ? "closed" : "narrowed")
      assert.strictEqual((yield* Effect.flip(make(path.join(root, "nope"))))._tag, "NotFound")
      assert.strictEqual((yield* Effect.flip(make(path.join(root, "a.txt"))))._tag, "WrongKind")
      assert.strictEqual((yield* Effect.flip(make("")))._tag, "PathInvalid")
    })
  )
})

describe("ScopedFs.resolve", () => {
  it.effect("accepts relative paths, .. that stays inside, absolute paths inside (as given or real), and paths not there yet", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const real = fs.realpathSync(root)
      const ws = yield* make(root)
      const at = (p: string) => Effect.map(ws.resolve(p), (r) => [r.path, r.real, r.exists])
      assert.deepStrictEqual(yield* at("a.txt"), ["a.txt", path.join(real, "a.txt"), true])
      assert.deepStrictEqual(yield* at("src/../a.txt"), ["a.txt", path.join(real, "a.txt"), true])
      assert.deepStrictEqual(yield* at("./src//b.js"), ["src/b.js", path.join(real, "src", "b.js"), true])
      assert.deepStrictEqual(yield* at(path.join(root, "src", "b.js")), ["src/b.js", path.join(real, "src", "b.js"), true])
      assert.deepStrictEqual(yield* at(path.join(real, "a.txt")), ["a.txt", path.join(real, "a.txt"), true])
      assert.deepStrictEqual(yield* at("."), [".", real, true])
      assert.deepStrictEqual(yield* at(`${root}///`), [".", real, true])
      assert.deepStrictEqual(yield* at("new/dir/c.txt"), ["new/dir/c.txt", path.join(real, "new", "dir", "c.txt"), false])
      fs.symlinkSync(path.join(root, "src"), path.join(root, "link-inside"))
      assert.deepStrictEqual(yield* at("link-inside/b.js"), ["src/b.js", path.join(real, "src", "b.js"), true])
    })
  )

  it.effect("works when the root itself is reached through a symlink", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const alias = `${root}-alias`
      fs.symlinkSync(root, alias)
      const ws = yield* make(alias)
      assert.strictEqual(ws.root, fs.realpathSync(root))
      assert.strictEqual((yield* ws.resolve(path.join(alias, "a.txt"))).real, path.join(fs.realpathSync(root), "a.txt"))
      assert.strictEqual((yield* Effect.flip(ws.resolve("../outside/secret.txt")))._tag, "PathEscapes")
      assert.strictEqual((yield* Effect.flip(ws.resolve(path.join(alias, "..", "outside"))))._tag, "PathEscapes")
    })
  )
})

/** One path of the corpus: an escape (every operation must fail with one of `tags`) or a literal name that must stay inside. */
interface Attempt {
  readonly path: string
  readonly kind: "escape" | "literal"
  readonly tags?: ReadonlyArray<ScopedFs.ScopedFsError["_tag"]>
  /** Writes are not tried (a system file: a bug here must not be able to damage the machine). */
  readonly readOnly?: boolean
}

describe("ScopedFs escapes", () => {
  it.effect("a corpus of escapes, through read, write, list and stat: every one refused with a typed error, literal names kept inside", () =>
    Effect.gen(function* () {
      const { dir, root, outside } = yield* fixture
      const link = (target: string, name: string) => fs.symlinkSync(target, path.join(root, name))
      link(path.join(outside, "secret.txt"), "link-file")
      link(outside, "link-dir")
      link("../outside/secret.txt", "link-rel")
      link("link-dir", "link-to-link-dir")
      link("chain2", "chain1")
      link("chain3", "chain2")
      link(path.join(outside, "secret.txt"), "chain3")
      link("loop-b", "loop-a")
      link("loop-a", "loop-b")
      link("self", "self")
      link(".", "up")
      link(path.join(outside, "nope"), "dangling-out")
      fs.linkSync(path.join(outside, "secret.txt"), path.join(root, "hard"))
      const before = snapshotOutside(dir, root)

      const out = (p: string, tags: ReadonlyArray<ScopedFs.ScopedFsError["_tag"]>, readOnly = false): Attempt => ({
        path: p,
        kind: "escape",
        tags,
        readOnly
      })
      const literal = (p: string): Attempt => ({ path: p, kind: "literal" })
      const corpus: ReadonlyArray<Attempt> = [
        // .. in every spelling the OS reads as ..
        out("..", ["PathEscapes"]),
        out("../", ["PathEscapes"]),
        out("../x", ["PathEscapes"]),
        out("a/../../x", ["PathEscapes"]),
        out("./../x", ["PathEscapes"]),
        out("../outside/secret.txt", ["PathEscapes"]),
        out("src/../../outside/secret.txt", ["PathEscapes"]),
        out("src/./../.././outside/secret.txt", ["PathEscapes"]),
        out("../ws/../outside/secret.txt", ["PathEscapes"]),
        out("../../../../../../../../etc/passwd", ["PathEscapes"], true),
        out("//../outside", ["PathEscapes"]),
        // absolute paths elsewhere, the root's look-alike sibling, the root with a way out
        out("/etc/passwd", ["PathEscapes"], true),
        out("/", ["PathEscapes"], true),
        out(path.join(outside, "secret.txt"), ["PathEscapes"]),
        out(path.join(outside, "new.txt"), ["PathEscapes"]),
        out(`${root}-evil/secret.txt`, ["PathEscapes"]),
        out(`${root}/../outside/secret.txt`, ["PathEscapes"]),
        out(`${root}//..//outside//secret.txt`, ["PathEscapes"]),
        out(`${fs.realpathSync(root)}/./../outside/secret.txt`, ["PathEscapes"]),
        // backslash forms (separators on Windows): refused everywhere
        out("..\\outside\\secret.txt", ["PathInvalid"]),
        out("src\\..\\..\\outside", ["PathInvalid"]),
        out("\\etc\\passwd", ["PathInvalid"], true),
        out("..\\/outside/secret.txt", ["PathInvalid"]),
        out("C:\\Windows\\win.ini", ["PathInvalid"], true),
        // NUL, empty, too long, too deep
        out("a.txt\0.png", ["PathInvalid"]),
        out("../\0", ["PathInvalid"]),
        out("\0", ["PathInvalid"]),
        out("", ["PathInvalid"]),
        out("x".repeat(ScopedFs.ScopedFsLimits.pathCharsMax + 1), ["PathInvalid"]),
        out("n".repeat(ScopedFs.ScopedFsLimits.nameBytesMax + 1), ["PathInvalid"]),
        out("é".repeat(200), ["PathInvalid"]),
        out(`${"d/".repeat(ScopedFs.ScopedFsLimits.depthMax + 1)}x`, ["PathInvalid"]),
        // symbolic links out: a file, a folder, below a folder, relative, a link to a link, a chain
        out("link-file", ["PathEscapes"]),
        out("link-dir", ["PathEscapes"]),
        out("link-dir/secret.txt", ["PathEscapes"]),
        out("link-dir/dir/secret.txt", ["PathEscapes"]),
        out("link-dir/new/file.txt", ["PathEscapes"]),
        out("link-dir/", ["PathEscapes"]),
        out("link-rel", ["PathEscapes"]),
        out("link-to-link-dir/secret.txt", ["PathEscapes"]),
        out("chain1", ["PathEscapes"]),
        out("up/up/link-file", ["PathEscapes"]),
        out("src/../link-dir/secret.txt", ["PathEscapes"]),
        // loops
        out("loop-a", ["SymlinkLoop"]),
        out("loop-b/x", ["SymlinkLoop"]),
        out("self", ["SymlinkLoop"]),
        out("self/self/x", ["SymlinkLoop"]),
        // a hard link to a file outside
        out("hard", ["PathEscapes"]),
        out("up/hard", ["PathEscapes"]),
        // literal names: encoded, look-alike and odd spellings are file names here, never ".." or "/"
        literal("..%2fx"),
        literal("..%2f..%2foutside%2fsecret.txt"),
        literal("%2e%2e/x"),
        literal("%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        literal("..%252f..%252fx"),
        literal("%00"),
        literal("\uff0e\uff0e/x"), // fullwidth full stops
        literal("\u2025/x"), // two dot leader
        literal("..\u2215x"), // division slash
        literal("..\u2044x"), // fraction slash
        literal("..\uff0fx"), // fullwidth solidus
        literal(".\u200b./x"), // a zero-width space between the dots
        literal("\u2024\u2024/x"), // one dot leaders
        literal("..\u29f8x"), // big solidus
        literal(".../x"),
        literal(".. /x"),
        literal(" ../x"),
        literal("...."),
        // lexical .. below a link: the name below the root, not where the link goes
        literal("link-dir/../outside/secret.txt"),
        literal("up/up/up/a.txt"),
        literal(`${root}///`),
        literal("dangling-out")
      ]

      const ws = yield* make(root)
      const real = fs.realpathSync(root)
      const tagCounts = new Map<string, number>()
      let escapesTried = 0
      let escapesRefused = 0
      let literalsTried = 0
      let literalsInside = 0
      for (const attempt of corpus) {
        const operations: ReadonlyArray<readonly [string, Effect.Effect<unknown, ScopedFs.ScopedFsError>]> = [
          ["read", ws.readFile(attempt.path)],
          ["list", ws.list(attempt.path)],
          ["stat", ws.stat(attempt.path)],
          ...(attempt.readOnly === true ? [] : ([["write", ws.writeFile(attempt.path, "PWNED", { createParents: true })]] as const))
        ]
        for (const [operation, effect] of operations) {
          const result = yield* outcome(effect)
          const label = `${operation} ${JSON.stringify(attempt.path.slice(0, 80))} → ${JSON.stringify(result).slice(0, 200)}`
          if (attempt.kind === "escape") {
            escapesTried++
            assert.isTrue("tag" in result, label)
            if (!("tag" in result)) continue
            // A listing of a file fails as a file before anything else is looked at.
            assert.isTrue(attempt.tags?.includes(result.tag) || (operation === "list" && result.tag === "WrongKind"), label)
            escapesRefused++
            tagCounts.set(result.tag, (tagCounts.get(result.tag) ?? 0) + 1)
          } else {
            literalsTried++
            if ("tag" in result) {
              assert.include(["NotFound", "WrongKind"], result.tag, label)
            } else {
              // Whatever it did, it did under the root.
              const shown = (result.ok as { path: string }).path
              assert.isFalse(path.isAbsolute(shown) || shown.split("/").includes(".."), label)
              if (operation === "write") assert.strictEqual(fs.readFileSync(path.join(real, shown), "utf8"), "PWNED", label)
            }
            literalsInside++
          }
        }
      }
      // The outside is exactly as it was; nothing was written or created there.
      assert.strictEqual(snapshotOutside(dir, root), before)
      assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "SECRET outside\n")
      assert.isFalse(fs.existsSync(path.join(outside, "nope")))
      assert.strictEqual(escapesRefused, escapesTried)
      assert.strictEqual(literalsInside, literalsTried)
      const tags = [...tagCounts].map(([tag, n]) => `${tag} ${n}`).join(", ")
      console.log(
        `ScopedFs: ${escapesTried} escapes tried, ${escapesRefused} refused (${tags}); ${literalsTried} literal look-alikes tried, ${literalsInside} kept inside`
      )
    })
  )

  it.live("links flipped and swapped in by another process while the handle reads and writes through them: never the outside", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      fs.symlinkSync(path.join(root, "a.txt"), path.join(root, "flip"))
      fs.writeFileSync(path.join(root, "f"), "inside f\n")
      fs.mkdirSync(path.join(root, "d"))
      fs.writeFileSync(path.join(root, "d", "secret.txt"), "inside d\n")
      // Three races, as fast as possible, for at most 20 s:
      // - "flip": a link whose target flips between an inside file and the outside secret (atomic rename);
      // - "f": the last name swapped between a regular file and a link out (what O_NOFOLLOW catches);
      // - "d": a real folder swapped for a link to an outside folder and back (what verifying the opened file catches).
      const script = `
        const fs = require("node:fs"); const p = require("node:path"); const [root, outside] = process.argv.slice(1)
        const at = (n) => p.join(root, n); const end = Date.now() + 20000
        for (let i = 0; Date.now() < end; i++) {
          fs.symlinkSync(i % 2 ? p.join(outside, "secret.txt") : at("a.txt"), at("flip.t")); fs.renameSync(at("flip.t"), at("flip"))
          if (i % 2) { fs.symlinkSync(p.join(outside, "secret.txt"), at("f.t")) } else { fs.writeFileSync(at("f.t"), "inside f\\n") }
          fs.renameSync(at("f.t"), at("f"))
          if (i % 2) { fs.renameSync(at("d"), at("d.real")); fs.symlinkSync(p.join(outside, "dir"), at("d")) }
          else if (fs.existsSync(at("d.real"))) { fs.unlinkSync(at("d")); fs.renameSync(at("d.real"), at("d")) }
        }`
      const flipper = spawn(process.execPath, ["-e", script, root, outside], { stdio: ["ignore", "ignore", "inherit"] })
      yield* Effect.addFinalizer(() => Effect.sync(() => flipper.kill("SIGKILL")))
      const ws = yield* make(root)
      const counts = { tries: 0, writes: 0, inside: 0, refusedAtCheck: 0, caughtAfterOpen: 0, other: 0, leaked: 0 }
      const outsideText = ["SECRET outside\n", "SECRET outside dir\n"]
      const count = (result: Outcome) => {
        if (!("tag" in result)) counts.inside++
        else if (result.tag === "PathEscapes" && /changed between the check and the open/.test(result.message)) counts.caughtAfterOpen++
        else if (result.tag === "PathEscapes") counts.refusedAtCheck++
        else counts.other++ // a name missing for an instant (NotFound), or briefly not a folder
      }
      const began = Date.now()
      while (Date.now() - began < 3000 && counts.tries < 50_000) {
        for (const p of ["flip", "f", "d/secret.txt"]) {
          counts.tries++
          const result = yield* outcome(ws.readFile(p))
          if (!("tag" in result) && outsideText.includes(Buffer.from((result.ok as ScopedFs.FileRead).bytes).toString("utf8"))) counts.leaked++
          else count(result)
        }
        for (const p of ["d/written.txt", "f"]) {
          counts.tries++
          counts.writes++
          count(yield* outcome(ws.writeFile(p, "PWNED")))
        }
        yield* outcome(ws.list("d"))
      }
      flipper.kill("SIGKILL")
      const summary =
        `ScopedFs race: ${counts.tries} reads and writes (${counts.writes} writes) while links flipped and were swapped in: ` +
        `${counts.leaked} outside contents returned or written; ${counts.inside} inside, ${counts.refusedAtCheck} refused at the check, ` +
        `${counts.caughtAfterOpen} caught after the open, ${counts.other} other typed errors (a name missing for an instant)`
      if (ws.checkThenUse === "narrowed") {
        // Documented: without /proc/self/fd the window is narrowed, not closed; say what happened, assert nothing.
        console.log(`${summary} [not asserted: no /proc/self/fd on ${process.platform}, the check-then-use window is only narrowed here]`)
        return
      }
      assert.strictEqual(counts.leaked, 0)
      assert.deepStrictEqual(fs.readdirSync(path.join(outside, "dir")), ["secret.txt"])
      assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "SECRET outside\n")
      assert.strictEqual(fs.readFileSync(path.join(outside, "dir", "secret.txt"), "utf8"), "SECRET outside dir\n")
      assert.isAbove(counts.inside, 0)
      assert.isAbove(counts.refusedAtCheck + counts.caughtAfterOpen, 0)
      console.log(summary)
    })
  )
})

describe("ScopedFs operations", () => {
  it.effect("readFile: bounded, typed for folders, missing files and non-regular files", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const ws = yield* make(root)
      const read = yield* ws.readFile("a.txt", { maxBytes: 5 })
      assert.deepStrictEqual([read.path, Buffer.from(read.bytes).toString(), read.size, read.truncated], ["a.txt", "alpha", 18, true])
      const whole = yield* ws.readFile("a.txt")
      assert.deepStrictEqual([Buffer.from(whole.bytes).toString(), whole.truncated], ["alpha\nneedle here\n", false])
      assert.deepStrictEqual(yield* outcome(ws.readFile("src")), { tag: "WrongKind", message: '"src" is a folder' })
      assert.deepStrictEqual(yield* outcome(ws.readFile("nope.txt")), { tag: "NotFound", message: '"nope.txt": no such file or folder' })
      assert.strictEqual((yield* Effect.flip(ws.readFile("a.txt/x")))._tag, "WrongKind")
      // A FIFO must not hang the open (O_NONBLOCK), and is refused as not a regular file.
      const hasMkfifo = (() => {
        try {
          execFileSync("mkfifo", [path.join(root, "fifo")])
          return true
        } catch {
          return false
        }
      })()
      if (hasMkfifo) assert.strictEqual((yield* Effect.flip(ws.readFile("fifo")))._tag, "WrongKind")
      else console.log("ScopedFs: FIFO case skipped (no mkfifo here)")
    })
  )

  it.effect("writeFile: atomic, creates folders when asked, follows a link inside, replaces a dangling link, refuses folders", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      const real = fs.realpathSync(root)
      const ws = yield* make(root)
      assert.deepStrictEqual(yield* ws.writeFile("out/deep/c.txt", "same", { createParents: true }), { path: "out/deep/c.txt", bytes: 4 })
      assert.deepStrictEqual(yield* ws.writeFile("out/deep/c.txt", "same"), { path: "out/deep/c.txt", bytes: 4 })
      assert.strictEqual(fs.readFileSync(path.join(real, "out", "deep", "c.txt"), "utf8"), "same")
      assert.deepStrictEqual(fs.readdirSync(path.join(real, "out", "deep")), ["c.txt"])
      assert.strictEqual((yield* Effect.flip(ws.writeFile("missing/c.txt", "x")))._tag, "NotFound")
      assert.strictEqual((yield* Effect.flip(ws.writeFile("src", "x")))._tag, "WrongKind")
      assert.strictEqual((yield* Effect.flip(ws.writeFile(".", "x")))._tag, "WrongKind")
      assert.strictEqual((yield* Effect.flip(ws.writeFile("a.txt/x", "x", { createParents: true })))._tag, "WrongKind")
      fs.symlinkSync(path.join(root, "a.txt"), path.join(root, "to-a"))
      assert.deepStrictEqual(yield* ws.writeFile("to-a", "через ссылку"), { path: "a.txt", bytes: Buffer.byteLength("через ссылку") })
      assert.strictEqual(fs.readFileSync(path.join(root, "a.txt"), "utf8"), "через ссылку")
      fs.symlinkSync(path.join(outside, "nope"), path.join(root, "dangling"))
      assert.deepStrictEqual(yield* ws.writeFile("dangling", "here"), { path: "dangling", bytes: 4 })
      assert.isFalse(fs.lstatSync(path.join(root, "dangling")).isSymbolicLink())
      assert.isFalse(fs.existsSync(path.join(outside, "nope")))
      const bytes = new Uint8Array([0, 1, 2, 255])
      yield* ws.writeFile("bin.dat", bytes)
      assert.deepStrictEqual([...fs.readFileSync(path.join(root, "bin.dat"))], [0, 1, 2, 255])
    })
  )

  it.effect("mkdir, list, stat and walk", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      const ws = yield* make(root)
      assert.deepStrictEqual(yield* ws.mkdir("m"), { path: "m" })
      assert.deepStrictEqual(yield* ws.mkdir("m"), { path: "m" })
      assert.strictEqual((yield* Effect.flip(ws.mkdir("p/q")))._tag, "NotFound")
      assert.deepStrictEqual(yield* ws.mkdir("p/q/r", { parents: true }), { path: "p/q/r" })
      assert.strictEqual((yield* Effect.flip(ws.mkdir("a.txt")))._tag, "WrongKind")
      fs.symlinkSync(outside, path.join(root, "link-dir"))
      fs.mkdirSync(path.join(root, "node_modules", "pkg"), { recursive: true })
      fs.writeFileSync(path.join(root, "node_modules", "pkg", "index.js"), "needle\n")

      const listing = yield* ws.list(".")
      assert.deepStrictEqual(listing, {
        path: ".",
        entries: [
          { name: "a.txt", kind: "file", bytes: 18 },
          { name: "link-dir", kind: "symlink", bytes: 0 },
          { name: "m", kind: "dir", bytes: 0 },
          { name: "node_modules", kind: "dir", bytes: 0 },
          { name: "p", kind: "dir", bytes: 0 },
          { name: "src", kind: "dir", bytes: 0 },
          { name: "sub", kind: "dir", bytes: 0 }
        ],
        truncated: false
      })
      const two = yield* ws.list(".", { entriesMax: 2 })
      assert.deepStrictEqual([two.entries.map((e) => e.name), two.truncated], [["a.txt", "link-dir"], true])
      assert.strictEqual((yield* Effect.flip(ws.list("a.txt")))._tag, "WrongKind")

      const stat = yield* ws.stat("src/b.js")
      assert.deepStrictEqual([stat.path, stat.kind, stat.bytes], ["src/b.js", "file", 17])
      assert.deepStrictEqual(yield* Effect.map(ws.stat("src"), (s) => [s.kind, s.bytes]), ["dir", 0])

      const walked = yield* ws.walk(".", { skip: new Set(["node_modules"]) })
      assert.deepStrictEqual(walked, {
        files: [
          { path: "a.txt", bytes: 18 },
          { path: "src/b.js", bytes: 17 },
          { path: "sub/secret.txt", bytes: 11 }
        ],
        truncated: false
      })
      assert.deepStrictEqual((yield* ws.walk("src")).files, [{ path: "src/b.js", bytes: 17 }])
      assert.isTrue((yield* ws.walk(".", { entriesMax: 3 })).truncated)
      assert.deepStrictEqual((yield* ws.walk(".")).files.map((f) => f.path).includes("node_modules/pkg/index.js"), true)
      assert.strictEqual((yield* Effect.flip(ws.walk("link-dir")))._tag, "PathEscapes")
    })
  )
})
