/**
 * TigerBeetle-style assertions. An assertion guards an invariant of the
 * design (docs: `../shared/design.md` §4); when it fails the program has a
 * bug, so it throws a defect, never an expected error.
 *
 * Use `assert(cond, "TreeInv", "why")` with the invariant's TLA+ name so a
 * failure points at the spec.
 */
export class InvariantViolation extends Error {
  readonly _tag = "InvariantViolation"
  readonly invariant: string
  constructor(invariant: string, message: string) {
    super(`${invariant}: ${message}`)
    this.name = "InvariantViolation"
    this.invariant = invariant
  }
}

export function assert(condition: unknown, invariant: string, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(invariant, message)
}
