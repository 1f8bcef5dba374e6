/**
 * The portable suite: the core (codec, file journal, session tree, recovery)
 * exercised with plain assertions so it runs unchanged on Node 22, Node 24,
 * Bun and Deno. `.ci/run` runs it on each; vitest runs it on Node 24 too
 * (test/runtimes/portable.test.ts). Prints "N passed, N failed".
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import * as Agent from "../../src/agent/Agent.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import { decodePayloadBytes, encodeFrame, frameHeaderBytes } from "../../src/journal/Codec.ts"
import * as Journal from "../../src/journal/Journal.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"

const checks: Array<[string, () => Promise<void>]> = []
const check = (name: string, run: () => Promise<void>) => checks.push([name, run])
function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message)
}
const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), "keel-portable-"))
const entry = (payload: Schema.Json) => ({ _tag: "entry.appended", branch: "main", parentId: 0, type: "m", time: 0, payload }) as const

check("codec round-trip with CRC-32C framing", async () => {
  const batch = { position: 1, epoch: 1, events: [entry({ text: "héllo" })] }
  const decoded = decodePayloadBytes(encodeFrame(batch).subarray(frameHeaderBytes), new Map())
  expect(JSON.stringify(decoded) === JSON.stringify(batch), "round trip")
})

check("file journal: fsync appends, concurrent group commit, reopen", async () => {
  const dir = temp()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const j = yield* Journal.openFile(dir, { owner: "p" })
        yield* j.acquireLease("p")
        yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => Effect.suspend(() => j.append([entry(i)], { epoch: j.epoch(), head: j.head() })),
          {
            concurrency: "unbounded"
          }
        )
      })
    )
  )
  const head = await Effect.runPromise(Effect.scoped(Effect.map(Journal.openFile(dir, { writer: false }), (j) => j.head())))
  expect(head === 51, `head ${head}`)
  fs.rmSync(dir, { recursive: true })
})

check("torn tail is cut, mid-file damage is JournalCorrupt", async () => {
  const dir = temp()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const j = yield* Journal.openFile(dir, { owner: "p" })
        let fence = yield* j.acquireLease("p")
        for (let i = 0; i < 3; i++) fence = yield* j.append([entry(i)], fence)
      })
    )
  )
  const seg = path.join(dir, "segments", fs.readdirSync(path.join(dir, "segments"))[0] as string)
  const bytes = fs.readFileSync(seg)
  fs.writeFileSync(seg, bytes.subarray(0, bytes.length - 5))
  const head = await Effect.runPromise(Effect.scoped(Effect.map(Journal.openFile(dir, {}), (j) => j.head())))
  expect(head === 3, `torn head ${head}`)
  const cut = fs.readFileSync(seg)
  cut[40] = (cut[40] as number) ^ 4
  fs.writeFileSync(seg, cut)
  const error = await Effect.runPromise(Effect.scoped(Effect.flip(Journal.openFile(dir, {}))))
  expect(error._tag === "JournalCorrupt", `got ${error._tag}`)
  fs.rmSync(dir, { recursive: true })
})

check("session: fork, switch, lock, resume by replay", async () => {
  const dir = temp()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* Session.openFile(dir, { owner: "p" })
        const a = yield* s.append("m", { t: "a" })
        yield* s.append("m", { t: "b" })
        yield* s.fork(a.id, "alt")
        yield* s.switchTo("alt")
        yield* s.append("m", { t: "c" })
        const locked = yield* Effect.flip(Session.openFile(dir, { owner: "q" }))
        expect(locked._tag === "SessionLocked", `got ${locked._tag}`)
      })
    )
  )
  const texts = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* Session.openFile(dir, { owner: "r" })
        expect(s.status() === "active" && s.fence().epoch === 2, "resumed with a new epoch")
        return [(yield* s.path()).map((e) => (e.payload as { t: string }).t), (yield* s.path("main")).map((e) => (e.payload as { t: string }).t)]
      })
    )
  )
  expect(
    JSON.stringify(texts) ===
      JSON.stringify([
        ["a", "c"],
        ["a", "b"]
      ]),
    JSON.stringify(texts)
  )
  fs.rmSync(dir, { recursive: true })
})

check("agent: a run with a tool call on a file session, replayed by a reader", async () => {
  const dir = temp()
  const add = Tool.make({
    name: "add",
    description: "adds",
    input: Schema.Struct({ a: Schema.Finite, b: Schema.Finite }),
    output: Schema.Finite,
    semantics: "readOnly",
    timeoutMs: 1000,
    run: ({ a, b }) => Effect.succeed(a + b)
  })
  const model = () =>
    ScriptedModel.make((request) => {
      const last = request.messages.at(-1)
      return last?.role === "tool" ? { text: `sum ${last.results[0]?.content}` } : { toolCalls: [{ name: "add", input: { a: 2, b: 40 } }] }
    })
  const outcome = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const session = yield* Session.openFile(dir, { owner: "p" })
        // A real capability: Ed25519 through WebCrypto on every runtime.
        const { authority } = yield* Authority.issue([Caveat.tools(["add"]), Caveat.range("a", { min: 0, max: 100 })])
        const agent = yield* Agent.make(session, { authority, model: model(), tools: [add] })
        return yield* agent.run("add 2 and 40")
      })
    )
  )
  expect(outcome.state === "done" && outcome.text === "sum 42", JSON.stringify(outcome))
  const runs = await Effect.runPromise(
    Effect.scoped(
      Effect.map(Session.openFile(dir, { writer: false }), (s) =>
        s
          .runs()
          .all()
          .map((r) => `${r.runId}:${r.state}:${r.turns}`)
      )
    )
  )
  expect(runs.join() === "run1:done:2", runs.join())
  fs.rmSync(dir, { recursive: true })
})

let passed = 0
let failed = 0
for (const [name, run] of checks) {
  try {
    await run()
    passed++
    console.log(`ok ${name}`)
  } catch (e) {
    failed++
    console.log(`FAIL ${name}: ${e instanceof Error ? e.stack : String(e)}`)
  }
}
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : `node ${process.version}`
console.log(`${runtime}: ${passed} passed, ${failed} failed`)
if (failed > 0) process.exit(1)
