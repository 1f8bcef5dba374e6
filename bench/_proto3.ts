import fsc from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import * as fs from "node:fs"
import { Effect } from "effect"
import * as Journal from "../src/journal/Journal.ts"
const dir = fs.mkdtempSync("/tmp/kb/j-")
const payload = { text: "x".repeat(1013) }
let fsyncMs = 0, fsyncs = 0
const orig = fsc.fdatasync
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const j = yield* Journal.openFile(dir + "/j", { owner: "b", durability: "fsync" })
  yield* j.acquireLease("b")
  const ev = { _tag: "entry.appended", branch: "main", parentId: 0, type: "msg", time: 0, payload } as const
  ;(fsc as any).fdatasync = (fd: number, cb: any) => { const t = performance.now(); fsyncs++; orig(fd, (e) => { fsyncMs += performance.now() - t; cb(e) }) }
  syncBuiltinESMExports()
  for (const n of [100, 100, 100]) {
  fsyncMs = 0; fsyncs = 0
  const t = performance.now()
  yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), () => Effect.gen(function* () {
    for (let k = 0; k < 100; k++) yield* Effect.suspend(() => j.append([ev], { epoch: j.epoch(), head: j.head() }))
  }), { concurrency: "unbounded" })
  const ms = performance.now() - t; console.log("ops/s", Math.round(n * 100 / ms * 1000), "fsyncs", fsyncs, "fsync ms", fsyncMs.toFixed(1), "total ms", ms.toFixed(1))
  }
})))
fsc.fdatasync = orig; syncBuiltinESMExports()
fs.rmSync(dir, { recursive: true })
