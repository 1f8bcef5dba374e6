import { Effect } from "effect"
import * as Session from "../src/session/Session.ts"
const w = process.argv[2] === "w"
const t2 = performance.now()
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const s = yield* Session.openFile("/tmp/kb/big", { owner: "c", writer: w })
  const h = yield* s.head()
  console.log("open", w, h, s.tree().pathTo(h).length, performance.now() - t2)
})))
