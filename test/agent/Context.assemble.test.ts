// assemble reads the branch in batched chunks (session.entries): it must show exactly what a walk
// that reads one entry at a time shows, for every budget and every run start.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Agent from "../../src/agent/Agent.ts"
import { type Assembled, assemble, entryMessages, userEntry } from "../../src/agent/Context.ts"
import { MemoryStore } from "../../src/journal/MemoryStore.ts"
import type { Message } from "../../src/model/Model.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { allowAll } from "../support/authority.ts"

const echo = Tool.make({
  name: "echo",
  description: "returns its input",
  input: Schema.Struct({ text: Schema.String }),
  output: Schema.Struct({ text: Schema.String }),
  semantics: "readOnly",
  timeoutMs: 1000,
  run: (input) => Effect.succeed(input)
})

const charsOf = (messages: ReadonlyArray<Message>): number => {
  let n = 0
  for (const m of messages) {
    if (m.role === "user") n += m.text.length
    else if (m.role === "assistant") n += m.text.length + m.toolCalls.reduce((k, c) => k + c.name.length + JSON.stringify(c.input).length, 0)
    else n += m.results.reduce((k, r) => k + r.content.length, 0)
  }
  return n
}

/** The walk as it was written first: newest first, one `session.entry` per entry. */
const reference = (session: Session.Session, branch: string, keepFrom: number, charsMax: number) =>
  Effect.gen(function* () {
    const ids = session.tree().pathTo(yield* session.head(branch))
    const parts: Array<ReadonlyArray<Message>> = []
    let chars = 0
    let shownChars = 0
    let from = ids.length
    for (let i = ids.length - 1; i >= 0; i--) {
      const entry = yield* session.entry(ids[i] as number)
      const messages = entryMessages(entry, session.calls().ofEntry(entry.id))
      chars += charsOf(messages)
      if (chars > charsMax && entry.id < keepFrom) break
      parts[i] = messages
      if (entry.type === userEntry) {
        from = i
        shownChars = chars
      }
    }
    const messages = parts.slice(from).flat()
    const first = messages[0]
    if (from > 0 && first?.role === "user") {
      messages[0] = { role: "user", text: `(The ${from} earlier entries of this conversation are not shown: they exceed the context budget.)\n\n${first.text}` }
    }
    return { messages, omitted: from, chars: shownChars } satisfies Assembled
  })

describe("assemble", () => {
  it.effect("reading in chunks shows what reading one entry at a time shows, for every budget and run start", () =>
    Effect.gen(function* () {
      // Runs of 0..40 turns with texts of varied length, a few notes (not shown) between: ~600 entries.
      let turn = 0
      const model = ScriptedModel.make((_request, index) => {
        turn++
        const text = `t${turn} ${"w".repeat((turn * 37) % 300)}`
        return index % 9 === 8 ? { text } : { text, toolCalls: [{ name: "echo", input: { text: "e".repeat((turn * 13) % 120) } }] }
      })
      const store = new MemoryStore()
      const session = yield* Session.openMemory(store)
      const agent = yield* Agent.make(session, { authority: allowAll, model, tools: [echo], budget: { turnsMax: 40 } })
      const users: Array<number> = []
      for (let r = 0; r < 60; r++) {
        yield* agent.run(`question ${r} ${"q".repeat((r * 53) % 400)}`)
        users.push(session.runs().all().at(-1)?.entryId ?? 0)
        if (r % 7 === 0) yield* session.append("note", { text: "n".repeat(r * 10) })
      }
      const branch = session.activeBranch()
      const head = yield* session.head(branch)
      const length = session.tree().pathTo(head).length
      assert.isAbove(length, 500)
      const budgets = [0, 1, 50, 333, 1000, 4321, 20_000, 50_000, 10_000_000]
      const starts = [0, users[0] as number, users[30] as number, users[58] as number, users[59] as number, head, head + 1]
      for (const charsMax of budgets) {
        for (const keepFrom of starts) {
          const expected = yield* reference(session, branch, keepFrom, charsMax)
          // The writer (every entry cached) and a fresh reader (empty cache: every chunk one batched journal read).
          const reader = yield* Session.openMemory(store, { writer: false })
          for (const s of [session, reader]) {
            assert.deepStrictEqual(yield* assemble(s, branch, keepFrom, charsMax), expected, `charsMax ${charsMax}, keepFrom ${keepFrom}`)
          }
        }
      }
    })
  )
})
