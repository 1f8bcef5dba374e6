/** Expected session failures, as tagged data naming what is wrong. */
import { Schema } from "effect"

export class UnknownBranch extends Schema.TaggedError<UnknownBranch>()("UnknownBranch", {
  branch: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `no branch named "${this.branch}" (branches: ${this.known.slice(0, 20).join(", ")})`
  }
}

export class UnknownEntry extends Schema.TaggedError<UnknownEntry>()("UnknownEntry", {
  entryId: Schema.Number,
  head: Schema.Number
}) {
  override get message() {
    return `no entry ${this.entryId} in this session (positions 1..${this.head})`
  }
}

export class BranchExists extends Schema.TaggedError<BranchExists>()("BranchExists", {
  branch: Schema.String
}) {
  override get message() {
    return `a branch named "${this.branch}" already exists`
  }
}

/** The request is not allowed in the session's lifecycle state (e.g. appending to a suspended or closed session). */
export class SessionNotActive extends Schema.TaggedError<SessionNotActive>()("SessionNotActive", {
  state: Schema.String,
  request: Schema.String
}) {
  override get message() {
    return `cannot ${this.request}: the session is ${this.state}`
  }
}

/** A name or payload the session refuses before writing anything. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** A tool-call event the call's lifecycle does not allow now (a duplicate id, an outcome for a call never started, …). */
export class ToolCallRefused extends Schema.TaggedError<ToolCallRefused>()("ToolCallRefused", {
  callId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** An agent-run record the run's machine refuses now (a second run while one is active, a turn out of order…); nothing was written. */
export class RunRefused extends Schema.TaggedError<RunRefused>()("RunRefused", {
  runId: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId}: ${this.reason}`
  }
}
