/**
 * The authority a session's tool calls run under (design §4: nothing is
 * started without a capability that covers the call, and an approval where
 * the capability demands one).
 *
 * When to use: hand one to `Executor.registry(tools, authority)`; build it
 * from a signed capability with `fromCapability` (src/authority/Capability.ts).
 * The executor asks it about every call, with the call's DECODED arguments,
 * between `proposed` and `started`, and journals the verdict: authorized,
 * denied, or authorized with an approval request (a deadline from the Clock).
 *
 * Gotcha: a verdict is about one call at one time; uses are counted from the
 * journal (`usesOf`), so a capability with `uses: 3` authorizes three calls
 * whatever the number of processes or restarts.
 */
import { Effect } from "effect"
import type { CapabilityMalformed } from "./AuthorityError.ts"
import * as Capability from "./Capability.ts"
import type * as Caveat from "./Caveat.ts"

export interface ApprovalDemand {
  /** Who may approve (principals). */
  readonly approvers: ReadonlyArray<string>
  /** How long a person has to decide; then the call expires (a rejection). */
  readonly timeoutMs: number
}

export type Verdict =
  | {
      readonly granted: true
      /** The token id; `blocks` are its block ids, whose use counters this call adds to. */
      readonly capability: string
      readonly blocks: ReadonlyArray<string>
      readonly approval: ApprovalDemand | undefined
    }
  | { readonly granted: false; readonly reason: string; readonly message: string }

export interface CheckRequest {
  readonly callId: string
  readonly tool: string
  /** The arguments as the tool's input Schema decoded them. */
  readonly input: unknown
}

export interface CheckContext {
  /** Ms since the epoch, from Effect's Clock. */
  readonly now: number
  /** Calls the journal says were authorized through block `id` (of any token containing it). */
  readonly usesOf: (id: string) => number
}

export interface Authority {
  readonly check: (request: CheckRequest, context: CheckContext) => Effect.Effect<Verdict>
  /** A human listing of what is granted (the example's /grants). */
  readonly describe: () => ReadonlyArray<string>
}

export interface CapabilityAuthorityOptions {
  /** Root public keys by key id: a token signed by any other key is refused. */
  readonly keyring: Capability.Keyring
  /** Revoked token and block ids; read on every call, so revoking takes effect at the next call. */
  readonly revoked?: () => ReadonlySet<string>
  /** How long a person has to approve a call the capability demands an approval for (default 5 minutes). */
  readonly approvalTimeoutMs?: number
}

/**
 * The authority of one capability token: every call is checked against it
 * (verify — cached — then the caveats on the decoded arguments). A failed
 * verification (tampered, foreign, revoked, expired) denies every call, with
 * the typed error's message as what the model sees.
 */
const noneRevoked: ReadonlySet<string> = new Set()

export const fromCapability = (token: string, options: CapabilityAuthorityOptions): Authority => ({
  check: (request, context) =>
    Capability.verify(token, { keyring: options.keyring, revoked: options.revoked?.() ?? noneRevoked }).pipe(
      Effect.map((verified): Verdict => {
        const decision = Capability.authorize(verified, { tool: request.tool, input: request.input, now: context.now, uses: context.usesOf })
        if (!decision.granted) {
          return {
            granted: false,
            reason: decision.kind,
            message: `no capability covers this call: ${decision.reason} (caveat ${decision.caveat.kind} of block ${decision.block})`
          }
        }
        return {
          granted: true,
          capability: verified.id,
          blocks: verified.blockIds,
          // "runtime" names the runtime's withdrawals in the journal, never a person who may approve.
          approval:
            decision.approval === undefined
              ? undefined
              : { approvers: decision.approval.approvers.filter((a) => a !== "runtime"), timeoutMs: options.approvalTimeoutMs ?? 5 * 60 * 1000 }
        }
      }),
      Effect.catch((error) => Effect.succeed<Verdict>({ granted: false, reason: error._tag, message: `the capability is not valid: ${error.message}` }))
    ),
  describe: () => Capability.describe(token).split("\n")
})

/**
 * A root key and a capability with `caveats`, and the authority it gives: for
 * an application that is its own issuer (the example agent, tests). With
 * `seed` (32 bytes) the root key — and so the token — is the same in every
 * process, which is what a resumed session needs to verify its calls.
 */
export const issue = (
  caveats: ReadonlyArray<Caveat.Caveat>,
  options: { readonly seed?: Uint8Array; readonly keyId?: string; readonly approvalTimeoutMs?: number; readonly revoked?: () => ReadonlySet<string> } = {}
): Effect.Effect<{ readonly authority: Authority; readonly token: string; readonly root: Capability.RootKey }, CapabilityMalformed> =>
  Effect.gen(function* () {
    const root =
      options.seed === undefined ? yield* Capability.generateRootKey(options.keyId) : yield* Capability.rootKeyFromSecret(options.seed, options.keyId)
    const token = yield* Capability.issue(root, caveats)
    const authority = fromCapability(token, {
      keyring: new Map([[root.keyId, root.publicKey]]),
      ...(options.revoked === undefined ? {} : { revoked: options.revoked }),
      ...(options.approvalTimeoutMs === undefined ? {} : { approvalTimeoutMs: options.approvalTimeoutMs })
    })
    return { authority, token, root }
  })
