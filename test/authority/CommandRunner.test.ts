// CommandRunner: only allowed programs start; arguments are never a shell's (unless a shell is
// granted); the environment is exactly what was given; a timeout, an abort or an interruption ends
// the whole process group; output is bounded; and under bubblewrap (where it works here) the file
// system outside the workspace is read-only and there is no network. The behaviour tests run
// unsandboxed and, where bwrap works, sandboxed too; the bwrap-only tests are skipped with the reason.
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, type Scope } from "effect"
import * as CommandRunner from "../../src/authority/CommandRunner.ts"
import * as ScopedFs from "../../src/authority/ScopedFs.ts"
import { tempDir } from "../support/tmp.ts"

const node = process.execPath

/** Whether bwrap can make a sandbox on this machine, and why not. */
const bwrap = await Effect.runPromise(Effect.result(CommandRunner.sandboxStatus("bwrap")))
const bwrapWorks = bwrap._tag === "Success" && bwrap.success.kind === "bwrap"
if (!bwrapWorks) console.log(`CommandRunner: bwrap tests skipped: ${bwrap._tag === "Failure" ? bwrap.failure.message : "not available"}`)
const modes: ReadonlyArray<"none" | "bwrap"> = bwrapWorks ? ["none", "bwrap"] : ["none"]

/** A workspace with a script that leaves a marker when run, and a folder beside it. */
const fixture: Effect.Effect<{ dir: string; root: string; ws: ScopedFs.ScopedFs }, never, Scope.Scope> = Effect.gen(function* () {
  const dir = yield* tempDir("keel-runner-")
  const root = path.join(dir, "ws")
  fs.mkdirSync(root)
  fs.writeFileSync(path.join(root, "marker.sh"), `#!/bin/sh\necho ran > "${path.join(dir, "marker")}"\n`, { mode: 0o755 })
  const ws = yield* Effect.orDie(ScopedFs.make(root))
  return { dir, root, ws }
})

const runner = (ws: ScopedFs.ScopedFs, options: Partial<CommandRunner.Options> = {}) =>
  CommandRunner.make({ cwd: ws, allow: { node }, env: { PATH: "/usr/bin:/bin" }, timeoutMs: 20_000, outputBytesMax: 64 * 1024, ...options })

/** node -e script, with args. */
const nodeRun = (r: CommandRunner.CommandRunner, script: string, args: ReadonlyArray<string> = [], options?: CommandRunner.RunOptions) =>
  r.run("node", ["-e", script, ...args], options)

/**
 * A script that starts a grandchild appending a tick to ticks.txt every 20 ms (it ignores SIGTERM),
 * says "started" once the first tick is there, then waits.
 */
const tickingScript = `
  const { spawn } = require("node:child_process"); const fs = require("node:fs")
  spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => require('fs').appendFileSync('ticks.txt', '.'), 20)"], { stdio: "ignore" })
  const wait = setInterval(() => { if (fs.existsSync("ticks.txt")) { clearInterval(wait); console.log("started") } }, 10)
  setInterval(() => {}, 1000)`

/** Run options whose onOutput calls `then` once the ticking script says it started. */
const onStarted = (then: () => void, signal?: AbortSignal): CommandRunner.RunOptions => ({
  ...(signal === undefined ? {} : { signal }),
  onOutput: (_stream, text) => {
    if (text.includes("started")) then()
  }
})

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** The ticks stop: every process of the group, the grandchild that ignores SIGTERM included, is gone. */
const ticksStopped = (root: string) =>
  Effect.gen(function* () {
    const file = path.join(root, "ticks.txt")
    const size = () => (fs.existsSync(file) ? fs.statSync(file).size : 0)
    yield* sleep(150)
    const before = size()
    yield* sleep(400)
    return { started: before > 0, stopped: size() === before }
  })

describe("CommandRunner allow-list", () => {
  it.effect("refuses a program not in the allow-list before anything starts, and names what is allowed", () =>
    Effect.gen(function* () {
      const { dir, root, ws } = yield* fixture
      const r = runner(ws, { allow: { node, marker: path.join(root, "marker.sh") } })
      const refused = [
        "sh",
        "/bin/sh",
        "./marker.sh",
        "marker.sh",
        `${root}/../ws/marker.sh`,
        `${root}//marker.sh`,
        "node ",
        " node",
        "NODE",
        "../node",
        `${node}/`,
        "__proto__",
        "constructor",
        "toString",
        "hasOwnProperty",
        ""
      ]
      for (const program of refused) {
        const error = yield* Effect.flip(r.run(program, ["-c", "echo hi"]))
        assert.strictEqual(error._tag, "CommandNotAllowed", program)
        assert.include(error.message, "allowed: marker, node")
      }
      assert.isFalse(fs.existsSync(path.join(dir, "marker")))
      // By name, or by exactly the allowed path.
      assert.strictEqual((yield* r.run("marker", [])).exitCode, 0)
      assert.isTrue(fs.existsSync(path.join(dir, "marker")))
      assert.strictEqual((yield* r.run(node, ["-e", "process.exit(4)"])).exitCode, 4)
      assert.deepStrictEqual(r.allowed, ["marker", "node"])
      console.log(`CommandRunner: ${refused.length} disallowed programs tried, ${refused.length} refused before spawning`)
    })
  )

  it.effect("make refuses options that can never work; resolveOnPath and inheritEnv pick only what is named", () =>
    Effect.gen(function* () {
      const { ws } = yield* fixture
      assert.throws(() => runner(ws, { allow: { node: "node" } }), CommandRunner.InvalidRunnerOptions)
      assert.throws(() => runner(ws, { timeoutMs: 0 }), CommandRunner.InvalidRunnerOptions)
      assert.throws(() => runner(ws, { outputBytesMax: 1 }), CommandRunner.InvalidRunnerOptions)
      assert.throws(() => runner(ws, { env: { "A=B": "x" } }), CommandRunner.InvalidRunnerOptions)
      const dirOfNode = path.dirname(node)
      assert.deepStrictEqual(CommandRunner.resolveOnPath(["node", "keel-no-such-program", "a/b"], `relative:${dirOfNode}`), {
        allow: { node: path.join(dirOfNode, "node") },
        missing: ["keel-no-such-program", "a/b"]
      })
      assert.deepStrictEqual(CommandRunner.inheritEnv(["A", "C"], { A: "1", B: "2" }), { A: "1" })
    })
  )

  it.effect("a missing executable, a NUL in an argument and too many arguments fail to start (typed, not retryable)", () =>
    Effect.gen(function* () {
      const { ws } = yield* fixture
      const r = runner(ws, { allow: { node, ghost: "/nonexistent/keel-ghost" } })
      const ghost = yield* Effect.flip(r.run("ghost", []))
      assert.deepStrictEqual([ghost._tag, ghost._tag === "CommandFailedToStart" && ghost.retryable], ["CommandFailedToStart", false])
      assert.strictEqual((yield* Effect.flip(r.run("node", ["a\0b"])))._tag, "CommandFailedToStart")
      assert.strictEqual((yield* Effect.flip(r.run("node", [], { env: { X: "a\0b" } })))._tag, "CommandFailedToStart")
      assert.strictEqual(
        (yield* Effect.flip(
          r.run(
            "node",
            Array.from({ length: CommandRunner.CommandRunnerLimits.argsMax + 1 }, () => "x")
          )
        ))._tag,
        "CommandFailedToStart"
      )
    })
  )
})

for (const mode of modes) {
  describe(`CommandRunner (sandbox: ${mode})`, () => {
    it.effect("no shell: $HOME, ;, |, *, && and $(…) reach the program as plain arguments; a granted shell interprets them", () =>
      Effect.gen(function* () {
        const { root, ws } = yield* fixture
        const r = runner(ws, { sandbox: mode, env: { PATH: "/usr/bin:/bin", HOME: "/home/keel-test" } })
        const args = ["$HOME", ";", "|", "*", "&&", "$(echo hi)", "`id`", "> out.txt", "'quoted'"]
        const printed = yield* nodeRun(r, "console.log(JSON.stringify(process.argv.slice(1)))", args)
        assert.deepStrictEqual(JSON.parse(printed.stdout), args)
        assert.isFalse(fs.existsSync(path.join(root, "out.txt")))
        const echo = CommandRunner.findOnPath("echo", "/usr/bin:/bin")
        if (echo !== undefined) {
          const plain = runner(ws, { sandbox: mode, allow: { echo }, env: { HOME: "/home/keel-test" } })
          assert.strictEqual((yield* plain.run("echo", ["$HOME"])).stdout, "$HOME\n")
          assert.strictEqual((yield* plain.run("echo", ["a;", "ls", "|", "cat"])).stdout, "a; ls | cat\n")
          const shell = runner(ws, { sandbox: mode, allow: { echo }, env: { HOME: "/home/keel-test" }, shell: true })
          assert.strictEqual((yield* shell.run("echo", ["$HOME"])).stdout, "/home/keel-test\n")
        }
      })
    )

    it.effect("the environment is exactly what was given (nothing inherited); cwd is the workspace; exit code and sandbox are reported", () =>
      Effect.gen(function* () {
        const { root, ws } = yield* fixture
        process.env.KEEL_TEST_SECRET = "s3cret"
        try {
          const r = runner(ws, { sandbox: mode, env: { ONLY: "1", ...CommandRunner.inheritEnv(["LANG"]) } })
          const result = yield* nodeRun(r, "console.log(JSON.stringify({ env: process.env, cwd: process.cwd() })); process.exit(3)", [], {
            env: { KEEL_CALL_ID: "c1" }
          })
          const { env, cwd } = JSON.parse(result.stdout) as { env: Record<string, string>; cwd: string }
          // bwrap sets PWD (to the folder it changes into); nothing else is added.
          const expected = { ONLY: "1", KEEL_CALL_ID: "c1", ...CommandRunner.inheritEnv(["LANG"]), ...(mode === "bwrap" ? { PWD: ws.root } : {}) }
          assert.deepStrictEqual(env, expected)
          assert.strictEqual(cwd, fs.realpathSync(root))
          assert.deepStrictEqual([result.exitCode, result.signal, result.sandbox, result.sandboxNote], [3, null, mode, undefined])
        } finally {
          delete process.env.KEEL_TEST_SECRET
        }
      })
    )

    it.live("a timeout kills the whole process group (a grandchild that ignores SIGTERM too) and keeps the output so far", () =>
      Effect.gen(function* () {
        const { root, ws } = yield* fixture
        // Long enough for two Node start-ups on a busy machine; the script says when its grandchild runs.
        const r = runner(ws, { sandbox: mode, timeoutMs: 3000, killGraceMs: 200 })
        const began = Date.now()
        const error = yield* Effect.flip(nodeRun(r, tickingScript))
        assert.strictEqual(error._tag, "CommandTimedOut")
        if (error._tag === "CommandTimedOut") assert.strictEqual(error.stdout, "started\n")
        assert.isBelow(Date.now() - began, 8000)
        assert.deepStrictEqual(yield* ticksStopped(root), { started: true, stopped: true })
      })
    )

    it.live("an abort (signal) and an interruption end the group too", () =>
      Effect.gen(function* () {
        const { root, ws } = yield* fixture
        const r = runner(ws, { sandbox: mode, killGraceMs: 200 })
        const controller = new AbortController()
        const aborted = yield* Effect.flip(
          nodeRun(
            r,
            tickingScript,
            [],
            onStarted(() => controller.abort(), controller.signal)
          )
        )
        assert.strictEqual(aborted._tag, "CommandAborted")
        assert.deepStrictEqual(yield* ticksStopped(root), { started: true, stopped: true })
        // Already aborted: nothing starts.
        assert.strictEqual(
          (yield* Effect.flip(nodeRun(r, "require('fs').writeFileSync('no.txt', '')", [], { signal: controller.signal })))._tag,
          "CommandAborted"
        )
        assert.isFalse(fs.existsSync(path.join(root, "no.txt")))

        fs.rmSync(path.join(root, "ticks.txt"))
        let started: () => void = () => {}
        const running = new Promise<void>((resolve) => {
          started = resolve
        })
        const fiber = yield* Effect.forkChild(
          nodeRun(
            r,
            tickingScript,
            [],
            onStarted(() => started())
          )
        )
        yield* Effect.promise(() => running)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* ticksStopped(root), { started: true, stopped: true })
      })
    )

    it.effect("output is bounded per stream (head and tail kept), and onOutput sees all of it", () =>
      Effect.gen(function* () {
        const { ws } = yield* fixture
        const r = runner(ws, { sandbox: mode, outputBytesMax: 1000 })
        let seen = 0
        const result = yield* nodeRun(r, "process.stdout.write('HEAD' + 'x'.repeat(100000) + 'TAIL'); process.stderr.write('e'.repeat(10))", [], {
          onOutput: (stream, text) => {
            if (stream === "stdout") seen += text.length
          }
        })
        assert.isTrue(result.truncated)
        assert.isTrue(result.stdout.startsWith("HEAD") && result.stdout.endsWith("TAIL"), result.stdout.slice(0, 20))
        assert.include(result.stdout, "[99008 bytes omitted]")
        assert.isBelow(result.stdout.length, 1100)
        assert.strictEqual(result.stderr, "e".repeat(10))
        assert.strictEqual(seen, 100008)
        // A hook that throws does not end the command.
        const quiet = yield* nodeRun(r, "console.log('ok')", [], {
          onOutput: () => {
            throw new Error("display broke")
          }
        })
        assert.strictEqual(quiet.stdout, "ok\n")
      })
    )
  })
}

describe("CommandRunner sandbox", () => {
  it.effect('"bwrap" without bwrap fails with a message naming it and how to install it; "auto" runs unsandboxed and says so', () =>
    Effect.gen(function* () {
      const { ws } = yield* fixture
      const missing = "/nonexistent/bwrap"
      const required = runner(ws, { sandbox: "bwrap", bwrapPath: missing })
      const error = yield* Effect.flip(nodeRun(required, "console.log('ran')"))
      assert.strictEqual(error._tag, "SandboxUnavailable")
      assert.match(error.message, /bwrap/)
      assert.match(error.message, /apt-get install bubblewrap/)
      const auto = runner(ws, { sandbox: "auto", bwrapPath: missing })
      const ran = yield* nodeRun(auto, "console.log('ran')")
      assert.deepStrictEqual([ran.stdout, ran.sandbox], ["ran\n", "none"])
      assert.match(ran.sandboxNote ?? "", /without an OS sandbox: .*bwrap/)
      assert.deepStrictEqual(yield* auto.sandbox, { kind: "none", note: ran.sandboxNote })
      assert.deepStrictEqual(yield* runner(ws).sandbox, { kind: "none", note: undefined })
      const noPath = yield* Effect.flip(CommandRunner.sandboxStatus("bwrap", { bwrapPath: undefined }))
      assert.match(noPath.message, /bwrap is not on PATH: install bubblewrap/)
    })
  )

  it.effect.skipIf(!bwrapWorks)("bwrap: the workspace is writable, everything else read-only, /tmp private, no network unless granted", () =>
    Effect.gen(function* () {
      const { dir, root, ws } = yield* fixture
      const server = net.createServer((socket) => socket.end("hello\n"))
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))),
        () => Effect.sync(() => server.close())
      )
      const port = (server.address() as net.AddressInfo).port
      const r = runner(ws, { sandbox: "bwrap" })
      const write = (file: string) =>
        Effect.map(
          nodeRun(r, "try { require('fs').writeFileSync(process.argv[1], 'x'); console.log('wrote') } catch (e) { console.log(e.code) }", [file]),
          (x) => x.stdout.trim()
        )
      assert.strictEqual(yield* write(path.join(root, "inside.txt")), "wrote")
      // Beside the workspace: on the host's disk read-only; under /tmp, in the sandbox's private /tmp.
      yield* write(path.join(dir, "beside.txt"))
      // The project folder is read-only in the sandbox; a checkout under /tmp is behind the private /tmp
      // instead (a write there, if the path exists in the sandbox at all, never reaches the host).
      const beside = path.join(process.cwd(), "keel-bwrap-test")
      if (process.cwd().startsWith("/tmp/")) {
        assert.include(["ENOENT", "wrote"], yield* write(beside))
        assert.isFalse(fs.existsSync(beside))
      } else assert.strictEqual(yield* write(beside), "EROFS")
      assert.strictEqual(yield* write("/etc/keel-test"), "EROFS")
      assert.strictEqual(yield* write("/tmp/keel-private-test"), "wrote")
      assert.isTrue(fs.existsSync(path.join(root, "inside.txt")))
      for (const file of [path.join(dir, "beside.txt"), path.join(process.cwd(), "keel-bwrap-test"), "/etc/keel-test", "/tmp/keel-private-test"]) {
        assert.isFalse(fs.existsSync(file), file)
      }
      const connect = `require("net").connect(${port}, "127.0.0.1").on("data", (d) => { console.log(String(d).trim()); process.exit(0) }).on("error", (e) => { console.log(e.code); process.exit(0) })`
      assert.notStrictEqual((yield* nodeRun(r, connect)).stdout.trim(), "hello")
      const online = runner(ws, { sandbox: "bwrap", network: true })
      assert.strictEqual((yield* nodeRun(online, connect)).stdout.trim(), "hello")
      assert.strictEqual((yield* nodeRun(runner(ws), connect)).stdout.trim(), "hello")
    })
  )
})
