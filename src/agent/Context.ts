/**
 * Context assembly: what the model is shown for a branch — its entries, root
 * to head, as messages, each assistant turn followed by the outcomes of the
 * calls it proposed. Entries of other types (notes) are not shown.
 *
 * Details: `assemble` walks back from the head and stops once the branch
 * exceeds a character budget (no model window holds a 10,000-turn branch):
 * the context then starts at a user entry, with a note of how many entries
 * are left out, and always holds the run's own user entry and what follows.
 * So a turn costs O(what is shown), whatever the length of the session.
 *
 * Gotcha: it asserts PairingInv (no call without an outcome), so call it only
 * once the run's calls are settled.
 */
import { Effect, type Schema } from "effect"
import { assert } from "../internal/assert.ts"
import { Limits } from "../Limits.ts"
import type { Message, ToolResult } from "../model/Model.ts"
import type { ContextEntry, Entry, ReadError, Session } from "../session/Session.ts"
import { terminalStates } from "../toolcall/ToolCallMachine.ts"
import type { Call } from "../toolcall/ToolCalls.ts"

/** Entry types the agent writes. */
export const userEntry = "user"
export const assistantEntry = "assistant"

const isObject = (x: unknown): x is { readonly [key: string]: Schema.Json } => typeof x === "object" && x !== null && !Array.isArray(x)

const textOf = (payload: Schema.Json): string => (isObject(payload) && typeof payload.text === "string" ? payload.text : "")

export function toMessages(entries: ReadonlyArray<ContextEntry>): Array<Message> {
  return entries.flatMap((entry) => entryMessages(entry, entry.calls))
}

/** One entry's messages: a user message, or an assistant turn followed by its calls' results. */
export function entryMessages(entry: Entry, calls: ReadonlyArray<Call>): Array<Message> {
  if (entry.type === userEntry) return [{ role: "user", text: textOf(entry.payload) }]
  if (entry.type !== assistantEntry) return []
  const turn: Message = {
    role: "assistant",
    text: textOf(entry.payload),
    // Arguments that were not a JSON object are shown as one; the result says what was wrong.
    toolCalls: calls.map((c) => ({ id: c.callId, name: c.tool, input: isObject(c.input) ? c.input : { arguments: c.input } }))
  }
  return calls.length === 0 ? [turn] : [turn, { role: "tool", results: calls.map(resultOf) }]
}

const charsOf = (messages: ReadonlyArray<Message>): number => {
  let n = 0
  for (const m of messages) {
    if (m.role === "user") n += m.text.length
    else if (m.role === "assistant") n += m.text.length + m.toolCalls.reduce((k, c) => k + c.name.length + JSON.stringify(c.input).length, 0)
    else n += m.results.reduce((k, r) => k + r.content.length, 0)
  }
  return n
}

export interface Assembled {
  readonly messages: ReadonlyArray<Message>
  /** Entries of the branch left out (the oldest). */
  readonly omitted: number
  readonly chars: number
}

/** Entries `assemble` reads with one `session.entries` call: at most, and at least (unless the branch ends first). */
const readChunkMax = 256
const readChunkMin = 16

/**
 * The messages for `branch`, newest first until `charsMax` is reached, cut at
 * a user entry; entries from `keepFrom` (the run's user entry) on are always in.
 * Entries are read in chunks (one batched `session.entries` each), sized from
 * the characters still within the budget, so a walk reads about what it shows.
 */
// An entry's messages change only with its calls' outcomes (a compensation, say): rendered once per
// outcome signature, they make a turn cost what it adds, not the whole branch again.
const renderings = new WeakMap<Session, Map<number, { readonly signature: string; readonly messages: ReadonlyArray<Message>; readonly size: number }>>()

function rendered(session: Session, entry: Entry, calls: ReadonlyArray<Call>): { readonly messages: ReadonlyArray<Message>; readonly size: number } {
  let cache = renderings.get(session)
  if (cache === undefined) {
    cache = new Map()
    renderings.set(session, cache)
  }
  const signature = calls.map((c) => `${c.state}${c.attempt}`).join()
  const hit = cache.get(entry.id)
  if (hit !== undefined && hit.signature === signature) return hit
  const messages = entryMessages(entry, calls)
  const fresh = { signature, messages, size: charsOf(messages) }
  if (cache.size >= Limits.entryCacheMax) cache.delete(cache.keys().next().value as number)
  cache.set(entry.id, fresh)
  return fresh
}

export const assemble = (session: Session, branch: string, keepFrom: number, charsMax: number = Limits.contextCharsMax): Effect.Effect<Assembled, ReadError> =>
  Effect.gen(function* () {
    const ids = session.tree().pathTo(yield* session.head(branch))
    const parts: Array<ReadonlyArray<Message>> = []
    let chars = 0
    let shownChars = 0
    let from = ids.length
    let i = ids.length - 1
    walk: while (i >= 0) {
      // Past the budget only the run's own entries remain to be read (then the walk stops): small chunks.
      const seen = ids.length - 1 - i
      const estimate = chars >= charsMax ? readChunkMin : seen === 0 ? readChunkMax : Math.ceil((charsMax - chars) / (chars / seen)) + 1
      const size = Math.min(readChunkMax, Math.max(readChunkMin, estimate))
      const entries = yield* session.entries(ids.slice(Math.max(0, i + 1 - size), i + 1))
      for (let k = entries.length - 1; k >= 0; k--, i--) {
        const entry = entries[k] as Entry
        const calls = session.calls().ofEntry(entry.id)
        for (const call of calls) {
          if (!terminalStates.has(call.state)) {
            assert(false, "PairingInv", `entry ${entry.id} is handed to a model with call ${call.callId} in state ${call.state}`)
          }
        }
        const { messages, size } = rendered(session, entry, calls)
        chars += size
        if (chars > charsMax && entry.id < keepFrom) break walk
        parts[i] = messages
        if (entry.type === userEntry) {
          from = i
          shownChars = chars
        }
      }
    }
    const messages = parts.slice(from).flat()
    const first = messages[0]
    if (from > 0 && first?.role === "user") {
      messages[0] = { role: "user", text: `(The ${from} earlier entries of this conversation are not shown: they exceed the context budget.)\n\n${first.text}` }
    }
    return { messages, omitted: from, chars: shownChars }
  })

/** A settled call as the model sees it: its output, or an error that says what happened. */
export function resultOf(call: Call): ToolResult {
  const outcome = call.outcome
  const clip = (s: string) =>
    s.length > Limits.toolResultCharsMax ? `${s.slice(0, Limits.toolResultCharsMax)}… [${s.length - Limits.toolResultCharsMax} more characters]` : s
  const base = { callId: call.callId, name: call.tool }
  if (call.state === "compensated") return { ...base, isError: true, content: "this call succeeded and was then undone (compensated)" }
  switch (outcome?.kind) {
    case "succeeded":
      return { ...base, isError: false, content: clip(typeof outcome.output === "string" ? outcome.output : JSON.stringify(outcome.output)) }
    case "failed":
      return { ...base, isError: true, content: clip(`${outcome.reason === "error" ? "error" : outcome.reason}: ${outcome.message}`) }
    case "cancelled":
      return { ...base, isError: true, content: "cancelled: the call was interrupted; its effect may or may not have happened" }
    case "timedOut":
      return { ...base, isError: true, content: "timed out: the call ran past its time budget and was interrupted" }
    case "denied":
      return { ...base, isError: true, content: clip(`denied: ${outcome.message}`) }
    case "rejected":
      return { ...base, isError: true, content: clip(`not approved: ${outcome.by} rejected this call (${outcome.reason}); nothing ran`) }
    case "expired":
      return { ...base, isError: true, content: "not approved: nobody approved this call before its deadline, so it did not run (silence means no)" }
    case undefined:
      return { ...base, isError: true, content: "no outcome" }
  }
}
