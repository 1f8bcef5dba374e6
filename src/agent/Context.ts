/**
 * Context assembly: what the model is shown for a branch — its entries, root
 * to head, as messages, each assistant turn followed by the outcomes of the
 * calls it proposed. Entries of other types (notes) are not shown.
 *
 * Gotcha: `Session.context` asserts PairingInv (no call without an outcome),
 * so call this only once the run's calls are settled.
 */
import type { Schema } from "effect"
import { Limits } from "../Limits.ts"
import type { Message, ToolResult } from "../model/Model.ts"
import type { ContextEntry } from "../session/Session.ts"
import type { Call } from "../toolcall/ToolCalls.ts"

/** Entry types the agent writes. */
export const userEntry = "user"
export const assistantEntry = "assistant"

const isObject = (x: unknown): x is { readonly [key: string]: Schema.Json } => typeof x === "object" && x !== null && !Array.isArray(x)

const textOf = (payload: Schema.Json): string => (isObject(payload) && typeof payload.text === "string" ? payload.text : "")

export function toMessages(entries: ReadonlyArray<ContextEntry>): Array<Message> {
  const messages: Array<Message> = []
  for (const entry of entries) {
    if (entry.type === userEntry) messages.push({ role: "user", text: textOf(entry.payload) })
    else if (entry.type === assistantEntry) {
      messages.push({
        role: "assistant",
        text: textOf(entry.payload),
        // Arguments that were not a JSON object are shown as one; the result says what was wrong.
        toolCalls: entry.calls.map((c) => ({ id: c.callId, name: c.tool, input: isObject(c.input) ? c.input : { arguments: c.input } }))
      })
      if (entry.calls.length > 0) messages.push({ role: "tool", results: entry.calls.map(resultOf) })
    }
  }
  return messages
}

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
    case undefined:
      return { ...base, isError: true, content: "no outcome" }
  }
}
