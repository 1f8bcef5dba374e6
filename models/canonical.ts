/**
 * JSON with object keys sorted at every level: two model states are the same
 * TLA+ state iff their canonical forms are equal (the field order of records
 * is irrelevant in TLA+; models keep their sets sorted). The models' state
 * identity, as TLC's fingerprint is value identity.
 */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (typeof value === "object" && value !== null) {
    const o = value as Record<string, unknown>
    const keys = Object.keys(o).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`
  }
  return JSON.stringify(value)
}
