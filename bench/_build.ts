import * as fs from "node:fs"
import { Effect } from "effect"
import * as Session from "../src/session/Session.ts"
const dir = "/tmp/kb/big"; fs.rmSync(dir, { recursive: true, force: true })
const text = "y".repeat(1200)
const t = performance.now()
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const s = yield* Session.openFile(dir, { owner: "b", durability: "os" })
  for (let i = 0; i < 100000; i++) { yield* s.append("msg", { role: "assistant", n: i, text }) ; if (i % 20000 === 0) console.log(i, performance.now() - t) }
})))
console.log("build ms", performance.now() - t)
for (const w of [false, true]) {
const t2 = performance.now()
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const s = yield* Session.openFile(dir, { owner: "c", writer: w })
  const h = yield* s.head()
  console.log("open", w, h, s.tree().pathTo(h).length, performance.now() - t2)
})))
}
