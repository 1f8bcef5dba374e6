/**
 * A test double for the authority: grants every call, demands no approval.
 * For tests of what happens after the authority check (execution, retries,
 * recovery); the check itself is tested in test/authority/ with real tokens.
 */
import { Effect } from "effect"
import type { Authority } from "../../src/authority/Authority.ts"

export const allowAll: Authority = {
  check: () => Effect.succeed({ granted: true, capability: "test-capability", blocks: ["test-capability"], approval: undefined }),
  describe: () => ["every tool (a test double)"]
}
