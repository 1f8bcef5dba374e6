/**
 * Why a capability does not let a call run, as tagged data (design §8.4).
 *
 * When to use: `Capability.verify` fails with one of the token errors
 * (malformed, bad signature, foreign key, revoked, widened, expired);
 * `Capability.check` fails with `CapabilityDenied`, `CapabilityExpired` or
 * `CapabilityExhausted` for one call. The executor journals the error and the
 * model sees its `message` as the tool's error result: it names the missing
 * authority (which tool, which caveat, why), never a stack.
 *
 * Details: `block` is the index of the block in the token's chain (0 = the
 * issuer's block); a `block` equal to the number of blocks means the proof or
 * seal after the last block. None of these is retryable: the same token and
 * the same call give the same answer (only time and use counts move, and
 * those only towards "no").
 */
import { Schema } from "effect"
import { timeText } from "./Caveat.ts"

/** Not a token at all, or not in the one canonical form (any changed byte lands here or in BadSignature). */
export class CapabilityMalformed extends Schema.TaggedError<CapabilityMalformed>()("CapabilityMalformed", {
  reason: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `malformed capability: ${this.reason}`
  }
}

/** A block's signature, or the proof/seal after the last block, does not check: tampered, reordered, truncated or spliced. */
export class CapabilityBadSignature extends Schema.TaggedError<CapabilityBadSignature>()("CapabilityBadSignature", {
  block: Schema.Number,
  reason: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `capability rejected at block ${this.block}: ${this.reason}`
  }
}

/** Issued by a root key this verifier does not trust (not in its keyring). */
export class CapabilityForeignKey extends Schema.TaggedError<CapabilityForeignKey>()("CapabilityForeignKey", {
  keyId: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `capability issued by an unknown root key ${JSON.stringify(this.keyId)}`
  }
}

/** The token, or a block of it (and so every token derived from that block), is on the revocation list. */
export class CapabilityRevoked extends Schema.TaggedError<CapabilityRevoked>()("CapabilityRevoked", {
  tokenId: Schema.String,
  revokedId: Schema.String,
  block: Schema.Number
}) {
  readonly isRetryable = false
  override get message() {
    return this.block === 0 ? `capability ${this.tokenId} is revoked` : `capability ${this.tokenId} is revoked (its block ${this.block}, ${this.revokedId})`
  }
}

/** A derived block tries to grant more than its parents (a tool, a later expiry, more uses, another approver…). */
export class CapabilityWidened extends Schema.TaggedError<CapabilityWidened>()("CapabilityWidened", {
  block: Schema.Number,
  caveat: Schema.String,
  reason: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `capability block ${this.block} tries to widen its parent: ${this.caveat}: ${this.reason}`
  }
}

/** The token has no proof left: it was sealed and cannot be attenuated (or sealed again with other caveats). */
export class CapabilitySealed extends Schema.TaggedError<CapabilitySealed>()("CapabilitySealed", {
  tokenId: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `capability ${this.tokenId} is sealed: it cannot be attenuated`
  }
}

/** Past its expiry (`now` from Effect's Clock, milliseconds since the epoch). */
export class CapabilityExpired extends Schema.TaggedError<CapabilityExpired>()("CapabilityExpired", {
  tokenId: Schema.String,
  block: Schema.Number,
  expiresAt: Schema.Number,
  now: Schema.Number
}) {
  readonly isRetryable = false
  override get message() {
    return `capability ${this.tokenId} expired at ${timeText(this.expiresAt)} (block ${this.block})`
  }
}

/** A `uses` caveat's budget is spent (the count comes from the journal). */
export class CapabilityExhausted extends Schema.TaggedError<CapabilityExhausted>()("CapabilityExhausted", {
  tool: Schema.String,
  block: Schema.Number,
  blockId: Schema.String,
  max: Schema.Number,
  used: Schema.Number
}) {
  readonly isRetryable = false
  override get message() {
    return `no authority left for ${this.tool}: block ${this.block} allows ${this.max} calls and ${this.used} were made`
  }
}

/** The capability does not cover this call: what the model sees as the tool's error result. */
export class CapabilityDenied extends Schema.TaggedError<CapabilityDenied>()("CapabilityDenied", {
  tool: Schema.String,
  block: Schema.Number,
  caveat: Schema.String,
  reason: Schema.String
}) {
  readonly isRetryable = false
  override get message() {
    return `no authority for ${this.tool}: ${this.reason} (capability block ${this.block}: ${this.caveat})`
  }
}

/** What `verify` can fail with. */
export type CapabilityError = CapabilityMalformed | CapabilityBadSignature | CapabilityForeignKey | CapabilityRevoked | CapabilityWidened | CapabilityExpired

/** What checking one call against a verified capability can fail with. */
export type CallDenied = CapabilityDenied | CapabilityExpired | CapabilityExhausted
