import * as fs from "node:fs"
import { Effect } from "effect"
import * as Journal from "../src/journal/Journal.ts"
const dir = fs.mkdtempSync("/tmp/kb/j-")
const buf = new Uint8Array(1100).fill(65)
const fd = fs.openSync(dir + "/raw", "w")
let pos = 0
const lat: number[] = []
for (let i = 0; i < 2000; i++) { const t = performance.now(); fs.writeSync(fd, buf, 0, buf.length, pos); pos += buf.length; fs.fdatasyncSync(fd); lat.push(performance.now() - t) }
lat.sort((a, b) => a - b); console.log("raw p50", lat[1000], "p99", lat[1980])
const payload = { text: "x".repeat(1013) }
console.log(JSON.stringify(payload).length)
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const j = yield* Journal.openFile(dir + "/j", { owner: "b", durability: "fsync" })
  let fence = yield* j.acquireLease("b")
  const ev = { _tag: "entry.appended", branch: "main", parentId: 0, type: "msg", time: 0, payload } as const
  const l: number[] = []
  for (let i = 0; i < 2000; i++) { const t = performance.now(); fence = yield* j.append([ev], fence); l.push(performance.now() - t) }
  l.sort((a, b) => a - b); console.log("journal p50", l[1000], "p99", l[1980])
  const t = performance.now()
  yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), () => Effect.gen(function* () {
    for (let k = 0; k < 100; k++) yield* Effect.suspend(() => j.append([ev], { epoch: j.epoch(), head: j.head() }))
  }), { concurrency: "unbounded" })
  const ms = performance.now() - t; console.log("concurrent ops/s", 10000 / ms * 1000)
})))
fs.rmSync(dir, { recursive: true })
