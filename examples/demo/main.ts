/**
 * The foundation demo (`npm start`): a session is written by a child process,
 * forked, killed with SIGKILL in the middle of its work, and reopened; the
 * tree printed at the end shows that every acknowledged entry survived and
 * that the branch heads come from the journal, not from "the last line".
 *
 *   npm start                 # a fresh session in a temp folder
 *   npm start -- --session d  # keep it in folder d (run twice to resume it)
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import * as Session from "../../src/session/Session.ts"
import { drawTree } from "../../src/session/TreeView.ts"

const say = (line: string) => process.stdout.write(`${line}\n`)

/** The child: appends a conversation, forks it, and keeps appending until it is killed. */
const child = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const s = yield* Session.openFile(dir, { owner: `demo-writer pid ${process.pid}` })
      const ack = (what: string) => Effect.sync(() => say(`ack ${what}`))
      if (s.branches().length === 1 && (yield* s.head()) === 0) {
        const q = yield* s.append("user", { text: "What is a write-ahead log?" })
        const a = yield* s.append("assistant", { text: "A log where the intent is durable before the effect." })
        yield* s.label(q.id, "question")
        yield* ack(`entries ${q.id},${a.id}`)
        yield* s.fork(q.id, "eli5")
        yield* s.switchTo("eli5")
        const b = yield* s.append("assistant", { text: "You write down what you will do before you do it." })
        yield* ack(`fork eli5 at ${q.id}, entry ${b.id}`)
      }
      for (let i = 1; ; i++) {
        const e = yield* s.append("note", { text: `step ${i} on ${s.activeBranch()}` })
        yield* ack(`entry ${e.id}`)
        yield* Effect.sleep("15 millis")
      }
    })
  )

const summary = (e: Session.Entry) => `${e.type}: ${String((e.payload as { text?: string }).text ?? JSON.stringify(e.payload)).slice(0, 60)}`

const printTree = (dir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const s = yield* Session.openFile(dir, { writer: false })
      const tree = s.tree()
      const ids: Array<number> = []
      for (let id = 1; id <= tree.head; id++) if (tree.isEntry(id)) ids.push(id)
      const nodes = yield* Effect.forEach(ids, (id) => Effect.map(s.entry(id), (e) => ({ id, parentId: e.parentId, summary: summary(e), label: e.label })))
      for (const line of drawTree(nodes, s.branches(), s.activeBranch())) say(`  ${line}`)
      return s
    })
  )

const parent = async (dir: string) => {
  say(`Keel demo — session folder: ${dir}\n`)
  say("1. A child process writes a conversation, forks it, and keeps appending…")
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", dir], { stdio: ["ignore", "pipe", "inherit"] })
  const acks: Array<string> = []
  await new Promise<void>((resolve) => {
    let buffer = ""
    proc.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString()
      const lines = buffer.split("\n")
      buffer = lines.pop() ?? ""
      for (const line of lines) {
        if (!line.startsWith("ack ")) continue
        acks.push(line.slice(4))
        say(`   acknowledged: ${line.slice(4)}`)
        if (acks.length === 6) resolve()
      }
    })
    proc.on("exit", () => resolve())
  })
  // A random moment inside the writer's 15 ms cycle: sometimes mid-append, sometimes between appends.
  await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)))
  say(`\n2. kill -9 the writer (pid ${proc.pid}) at a random moment of its append loop.`)
  proc.kill("SIGKILL")
  await new Promise((r) => proc.once("exit", r))

  say("\n3. Reopen the folder: the writer lock is stale, the torn tail (if any) is cut, the tree is replayed.")
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* Session.openFile(dir, { owner: "demo-resume" })
        say(`   resumed as epoch ${s.fence().epoch}; status ${s.status()}; active branch "${s.activeBranch()}"; ${s.fence().head} records`)
        yield* s.switchTo("main")
        const e = yield* s.append("user", { text: "And after a crash?" })
        say(`   appended entry ${e.id} on main after the crash`)
      })
    )
  )
  say("\n4. The session tree (● entry, ◀ branch head, * active):")
  await Effect.runPromise(printTree(dir))
  say(`\nEvery acknowledged write is in the tree; nothing half-written was read. Run again with --session ${dir} to resume it.`)
}

const args = process.argv.slice(2)
if (args[0] === "--child" && args[1] !== undefined) {
  await Effect.runPromise(child(args[1]))
} else {
  const at = args.indexOf("--session")
  const dir = at >= 0 && args[at + 1] !== undefined ? path.resolve(args[at + 1] as string) : fs.mkdtempSync(path.join(os.tmpdir(), "keel-demo-"))
  await parent(dir)
}
