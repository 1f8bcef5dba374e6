/**
 * Deterministic JSON: keys sorted at every depth, no whitespace, undefined
 * members left out. Equal data, equal text — what a signature, an arguments
 * hash or a recording's digest is taken over. Only plain data goes in.
 */
import { assert } from "./assert.ts"

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number") {
    assert(Number.isFinite(value), "CanonicalJson", "only finite numbers are encoded")
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  assert(typeof value === "object", "CanonicalJson", `cannot encode a ${typeof value}`)
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`
}
