import fsc from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import * as fs from "node:fs"
import { Effect } from "effect"
import * as Journal from "../src/journal/Journal.ts"
const dir = fs.mkdtempSync("/tmp/kb/j-")
const payload = { text: "x".repeat(1013) }
const sizes: number[] = []
const orig = fsc.writeSync
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const j = yield* Journal.openFile(dir + "/j", { owner: "b", durability: "fsync" })
  yield* j.acquireLease("b")
  const ev = { _tag: "entry.appended", branch: "main", parentId: 0, type: "msg", time: 0, payload } as const
  ;(fsc as any).writeSync = (...a: any[]) => { sizes.push(a[3]); return (orig as any)(...a) }
  syncBuiltinESMExports()
  for (const n of [100, 100]) {
  sizes.length = 0
  const t = performance.now()
  let cpu = 0
  yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), () => Effect.gen(function* () {
    for (let k = 0; k < 100; k++) yield* Effect.suspend(() => { const c = performance.now(); const r = j.sequence([ev], { epoch: j.epoch(), head: j.head() }); cpu += performance.now() - c; return "durable" in r ? r.durable : Effect.fail(r) })
  }), { concurrency: "unbounded" })
  const ms = performance.now() - t; console.log("concurrent ops/s", n * 100 / ms * 1000, "cycles", sizes.length, "sizes", sizes.slice(0, 30).map((s) => Math.round(s / 1111)).join(","), "seq cpu ms", cpu, "total ms", ms)
  }
})))
fsc.writeSync = orig; syncBuiltinESMExports()
fs.rmSync(dir, { recursive: true })
