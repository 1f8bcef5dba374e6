// The example agent's workspace tools: every path stays inside the workspace root (`..`, absolute
// paths elsewhere, symlinks and hard links out: the ScopedFs handle, whose own corpus is in
// test/authority/ScopedFs.test.ts), the tools' semantics, and run_command (allow-list, no shell,
// cwd, key, cancel; sandboxed by bubblewrap where it works, the same results either way).
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { workspaceTools } from "../../examples/branching-agent/tools.ts"
import type * as Tool from "../../src/toolcall/Tool.ts"
import { tempDir } from "../support/tmp.ts"

/** A workspace with a file and a folder, and a secret next to it (outside). */
const fixture: Effect.Effect<{ root: string; outside: string }, never, Scope.Scope> = Effect.map(tempDir("keel-tools-"), (dir) => {
  const root = path.join(dir, "ws")
  const outside = path.join(dir, "outside")
  fs.mkdirSync(path.join(root, "src"), { recursive: true })
  fs.mkdirSync(outside)
  fs.writeFileSync(path.join(root, "a.txt"), "alpha\nneedle here\n")
  fs.writeFileSync(path.join(root, "src", "b.js"), "const needle = 1\n")
  fs.writeFileSync(path.join(outside, "secret.txt"), "needle: the secret\n")
  return { root, outside }
})

const ctx = (signal: AbortSignal = new AbortController().signal): Tool.ToolContext => ({ callId: "c1", idempotencyKey: "keel:s:c1", attempt: 1, signal })

const tool = (root: string, name: string): Tool.AnyTool => {
  const found = workspaceTools(root).find((t) => t.name === name)
  if (found === undefined) throw new Error(`no tool ${name}`)
  return found
}

type Ran = { readonly ok: Record<string, unknown> } | { readonly failed: string; readonly retryable: boolean }

/** Runs a tool; the failure message, or the output. */
const run = (root: string, name: string, input: unknown, signal?: AbortSignal): Effect.Effect<Ran> =>
  Effect.result(tool(root, name).run(input, ctx(signal))).pipe(
    Effect.map(
      (r): Ran => (r._tag === "Success" ? { ok: r.success as Record<string, unknown> } : { failed: r.failure.message, retryable: r.failure.retryable })
    )
  )

describe("workspace paths", () => {
  it.effect("take paths relative to the root, .. that stays inside, absolute paths inside, and a root reached through a symlink", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const content = { path: "a.txt", content: "alpha\nneedle here\n", bytes: 18, truncated: false }
      for (const p of ["a.txt", "src/../a.txt", "./a.txt", path.join(root, "a.txt"), path.join(fs.realpathSync(root), "a.txt")]) {
        assert.deepStrictEqual(yield* run(root, "read_file", { path: p }), { ok: content }, p)
      }
      fs.symlinkSync(path.join(root, "src"), path.join(root, "link-inside"))
      assert.deepStrictEqual(yield* run(root, "read_file", { path: "link-inside/b.js" }), {
        ok: { path: "src/b.js", content: "const needle = 1\n", bytes: 17, truncated: false }
      })
      const alias = `${root}-alias`
      fs.symlinkSync(root, alias)
      assert.deepStrictEqual(yield* run(alias, "read_file", { path: path.join(alias, "a.txt") }), { ok: content })
      const out = yield* run(alias, "read_file", { path: "../outside/secret.txt" })
      assert.isTrue("failed" in out && /outside the workspace/.test(out.failed))
      assert.deepStrictEqual(yield* run(root, "write_file", { path: "new/dir/c.txt", content: "c" }), { ok: { path: "new/dir/c.txt", bytes: 1 } })
    })
  )

  it.effect("refuse .., absolute paths elsewhere, symlinks out, hard links, empty paths and NUL (typed, never retried)", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      fs.symlinkSync(path.join(outside, "secret.txt"), path.join(root, "link-file"))
      fs.symlinkSync(outside, path.join(root, "link-dir"))
      fs.linkSync(path.join(outside, "secret.txt"), path.join(root, "hard"))
      const cases: ReadonlyArray<[string, RegExp]> = [
        ["..", /outside the workspace/],
        ["../outside/secret.txt", /outside the workspace/],
        ["src/../../outside", /outside the workspace/],
        [path.join(outside, "secret.txt"), /outside the workspace/],
        ["/etc/passwd", /outside the workspace/],
        ["link-file", /outside the workspace: a symbolic link leads out/],
        ["link-dir/secret.txt", /outside the workspace: a symbolic link leads out/],
        ["link-dir/new/file.txt", /outside the workspace: a symbolic link leads out/],
        ["hard", /outside the workspace: it is a hard link/],
        ["", /empty/],
        ["a\0b", /NUL/]
      ]
      for (const [p, expected] of cases) {
        const result = yield* run(root, "read_file", { path: p })
        assert.isTrue("failed" in result && expected.test(result.failed) && !result.retryable, `${JSON.stringify(p)}: ${JSON.stringify(result)}`)
      }
    })
  )
})

describe("workspace tools", () => {
  it("declare the semantics that decide retries and recovery", () => {
    const tools = workspaceTools("/nowhere")
    const of = (name: string) => tools.find((t) => t.name === name)
    assert.deepStrictEqual(
      tools.map((t) => [t.name, t.semantics]),
      [
        ["read_file", "readOnly"],
        ["write_file", "idempotent"],
        ["list_dir", "readOnly"],
        ["search", "readOnly"],
        ["run_command", "unsafe"]
      ]
    )
    // Rerunnable after a crash needs more than one attempt; an unsafe tool gets exactly one.
    assert.strictEqual(of("read_file")?.retry.attemptsMax, 3)
    assert.strictEqual(of("write_file")?.retry.attemptsMax, 3)
    assert.strictEqual(of("run_command")?.retry.attemptsMax, 1)
  })

  it.effect("file tools refuse paths outside with a ToolFailure and touch nothing outside", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      fs.symlinkSync(outside, path.join(root, "link-dir"))
      const cases: ReadonlyArray<[string, unknown]> = [
        ["read_file", { path: "../outside/secret.txt" }],
        ["read_file", { path: "link-dir/secret.txt" }],
        ["write_file", { path: "link-dir/secret.txt", content: "overwritten" }],
        ["write_file", { path: path.join(outside, "new.txt"), content: "x" }],
        ["list_dir", { path: "link-dir" }],
        ["search", { pattern: "needle", path: ".." }]
      ]
      for (const [name, input] of cases) {
        const result = yield* run(root, name, input)
        assert.isTrue("failed" in result, `${name} ${JSON.stringify(input)}`)
        if ("failed" in result) {
          assert.match(result.failed, /outside the workspace/)
          assert.isFalse(result.retryable)
        }
      }
      assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "needle: the secret\n")
      assert.isFalse(fs.existsSync(path.join(outside, "new.txt")))
    })
  )

  it.effect("search never follows a symlink out, and is bounded", () =>
    Effect.gen(function* () {
      const { root, outside } = yield* fixture
      fs.symlinkSync(outside, path.join(root, "link-dir"))
      const all = yield* run(root, "search", { pattern: "needle" })
      assert.deepStrictEqual(all, {
        ok: {
          matches: [
            { path: "a.txt", line: 2, text: "needle here" },
            { path: "src/b.js", line: 1, text: "const needle = 1" }
          ],
          filesSearched: 2,
          truncated: false
        }
      })
      const one = yield* run(root, "search", { pattern: "^(alpha|const)", regex: true, maxResults: 1 })
      assert.deepStrictEqual(one, { ok: { matches: [{ path: "a.txt", line: 1, text: "alpha" }], filesSearched: 2, truncated: true } })
      const bad = yield* run(root, "search", { pattern: "(", regex: true })
      assert.isTrue("failed" in bad && /invalid regular expression/.test(bad.failed))
    })
  )

  it.effect("read_file, list_dir and write_file inside; write_file gives the same result twice", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      assert.deepStrictEqual(yield* run(root, "read_file", { path: "a.txt", maxBytes: 5 }), {
        ok: { path: "a.txt", content: "alpha", bytes: 18, truncated: true }
      })
      const listed = yield* run(root, "list_dir", {})
      assert.deepStrictEqual(listed, {
        ok: {
          path: ".",
          entries: [
            { name: "a.txt", kind: "file", bytes: 18 },
            { name: "src", kind: "dir", bytes: 0 }
          ],
          truncated: false
        }
      })
      const write = { path: "out/c.txt", content: "same" }
      const first = yield* run(root, "write_file", write)
      assert.deepStrictEqual(first, { ok: { path: "out/c.txt", bytes: 4 } })
      assert.deepStrictEqual(yield* run(root, "write_file", write), first)
      assert.strictEqual(fs.readFileSync(path.join(root, "out", "c.txt"), "utf8"), "same")
      assert.deepStrictEqual(
        fs.readdirSync(path.join(root, "out")).filter((n) => n.endsWith(".tmp")),
        []
      )
      const folder = yield* run(root, "read_file", { path: "src" })
      assert.isTrue("failed" in folder && /folder/.test(folder.failed))
      const missing = yield* run(root, "read_file", { path: "nope.txt" })
      assert.isTrue("failed" in missing && /no such file/.test(missing.failed))
    })
  )

  it.effect("run_command: no shell, cwd = the root, the idempotency key in its environment, exit code and output", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const script = "console.log(process.cwd(), process.argv[1], process.env.KEEL_IDEMPOTENCY_KEY); process.exit(3)"
      const result = yield* run(root, "run_command", { program: process.execPath, args: ["-e", script, "$(echo hi) && *"] })
      assert.deepStrictEqual(result, {
        ok: { exitCode: 3, signal: null, stdout: `${fs.realpathSync(root)} $(echo hi) && * keel:s:c1\n`, stderr: "", truncated: false }
      })
      // Not in the allow-list: refused before anything starts, naming what is allowed.
      for (const program of ["keel-no-such-program", "rm", "/bin/rm", "./node", "sh"]) {
        const refused = yield* run(root, "run_command", { program, args: ["-c", "echo hi"] })
        assert.isTrue("failed" in refused && /is not an allowed program \(allowed: .*node/.test(refused.failed) && !refused.retryable, program)
      }
      const nul = yield* run(root, "run_command", { program: process.execPath, args: ["a\0b"] })
      assert.isTrue("failed" in nul && !nul.retryable)
    })
  )

  it.effect("run_command bounds its output and ends the process when cancelled", () =>
    Effect.gen(function* () {
      const { root } = yield* fixture
      const big = yield* run(root, "run_command", { program: process.execPath, args: ["-e", "process.stdout.write('x'.repeat(100000))"] })
      assert.isTrue("ok" in big && big.ok.truncated === true && String(big.ok.stdout).length < 17_000)
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 200)
      const began = Date.now()
      const cancelled = yield* run(root, "run_command", { program: process.execPath, args: ["-e", "setTimeout(() => {}, 30000)"] }, controller.signal)
      assert.isBelow(Date.now() - began, 5000)
      assert.isTrue("failed" in cancelled && /was cancelled/.test(cancelled.failed), JSON.stringify(cancelled))
    })
  )
})
