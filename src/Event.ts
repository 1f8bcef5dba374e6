/**
 * The one event vocabulary: every journal record is one of these events.
 * Each event is named after the TLA+ action that produces it (spec/README.md
 * holds the table), e.g. `entry.appended` ↔ `Append` in spec/Session.tla.
 *
 * Events are validated with their Schema before they are appended and again
 * after they are decoded (design §8.5: assertions paired at the boundary).
 */
import { Schema } from "effect"
import { Limits } from "./Limits.ts"

const Position = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Name = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(Limits.branchNameLengthMax))
const Time = Schema.Finite

/** Init: the first record of every session. */
export const SessionCreated = Schema.TaggedStruct("session.created", {
  sessionId: Schema.String.check(Schema.isMinLength(1)),
  time: Time
})
/** AcquireLease: a writer took the lease; every later append carries `epoch`. */
export const LeaseAcquired = Schema.TaggedStruct("lease.acquired", {
  epoch: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  owner: Schema.String,
  time: Time
})
/** Append: a new entry on `branch`, whose head moves from `parentId` to it. */
export const EntryAppended = Schema.TaggedStruct("entry.appended", {
  branch: Name,
  parentId: Position,
  type: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(Limits.entryTypeLengthMax)),
  time: Time,
  payload: Schema.Json
})
/** Fork: a new branch whose head is entry `from` (0 = the empty root). O(1). */
export const BranchForked = Schema.TaggedStruct("branch.forked", {
  branch: Name,
  from: Position,
  time: Time
})
/** Switch: the active branch becomes `branch`. */
export const BranchSwitched = Schema.TaggedStruct("branch.switched", {
  branch: Name,
  time: Time
})
/** Label: a human name on an entry (the latest label wins; "" removes it). */
export const EntryLabelled = Schema.TaggedStruct("entry.labelled", {
  entryId: Position,
  label: Schema.String.check(Schema.isMaxLength(Limits.labelLengthMax)),
  time: Time
})
/** Suspend: the writer let go of the session cleanly (active → suspended). */
export const SessionSuspended = Schema.TaggedStruct("session.suspended", { time: Time })
/** Close: the session is finished; nothing is appended after this. */
export const SessionClosed = Schema.TaggedStruct("session.closed", { time: Time })

const CallId = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(Limits.callIdLengthMax))
const Attempt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(Limits.retryAttemptsMax))

/** Propose: the model asked for a call; recorded with the assistant entry that asked (same batch). */
export const ToolCallProposed = Schema.TaggedStruct("tool.call.proposed", {
  callId: CallId,
  entryId: Position,
  tool: Schema.String,
  input: Schema.Json,
  /** Part of its entry's atomic group (a saga): all succeed, or the succeeded ones are compensated. */
  atomic: Schema.Boolean,
  time: Time
})
/** Start (and Retry, Rerun): the WAL record; the effect may run only once this is durable. */
export const ToolCallStarted = Schema.TaggedStruct("tool.call.started", {
  callId: CallId,
  key: Schema.String.check(Schema.isMinLength(1)),
  attempt: Attempt,
  time: Time
})
/** Succeed (and Reconcile when the effect ran): the encoded output the model will see. */
export const ToolCallSucceeded = Schema.TaggedStruct("tool.call.succeeded", {
  callId: CallId,
  attempt: Attempt,
  output: Schema.Json,
  reconciled: Schema.Boolean,
  time: Time
})
/**
 * Fail, Reject (before any start: attempt 0), Reconcile (effect did not run)
 * and CloseUnknown (reason "unknown": the outcome of an unsafe call was lost).
 */
export const ToolCallFailed = Schema.TaggedStruct("tool.call.failed", {
  callId: CallId,
  attempt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(Limits.retryAttemptsMax)),
  reason: Schema.Literals(["error", "invalidInput", "invalidOutput", "unknownTool", "defect", "unknown"]),
  message: Schema.String,
  retryable: Schema.Boolean,
  time: Time
})
/** Cancel: the call was interrupted; its effect may or may not have happened. */
export const ToolCallCancelled = Schema.TaggedStruct("tool.call.cancelled", {
  callId: CallId,
  attempt: Attempt,
  time: Time
})
/** TimeOut: the call ran past its budget and was interrupted. */
export const ToolCallTimedOut = Schema.TaggedStruct("tool.call.timedOut", {
  callId: CallId,
  attempt: Attempt,
  time: Time
})
/** Compensate: a succeeded compensatable call was undone (saga). */
export const ToolCallCompensated = Schema.TaggedStruct("tool.call.compensated", {
  callId: CallId,
  time: Time
})

// ------------------------------------------------------------------------------------------------
// Agent runs (spec/Agent.tla). A run answers one user entry: turns of the
// model, each journaled with the calls it proposes before any of them starts.

const RunId = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(Limits.callIdLengthMax))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** The bounds of one run, journaled with it so that a resumed run keeps them (deadlines come from the journal). */
export const RunBudget = Schema.Struct({
  turnsMax: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(Limits.turnsPerRunMax)),
  toolCallsPerTurnMax: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(Limits.toolCallsPerTurnMax)),
  wallClockMsMax: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(Limits.runWallClockMsMax)),
  tokensMax: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
})
export type RunBudget = typeof RunBudget.Type

/** StartRun: a user entry and the run that answers it (same batch). */
export const AgentRunStarted = Schema.TaggedStruct("agent.run.started", {
  runId: RunId,
  /** The user entry the run answers. */
  entryId: Position,
  branch: Name,
  budget: RunBudget,
  time: Time
})
/**
 * RecordTurn: the model's turn, journaled with its entry and the calls it
 * proposes in one batch, before any call starts (TurnWalInv). `turn` counts
 * from 1; a turn in the journal is never asked of the model again (NoReaskInv).
 */
export const AgentTurnRecorded = Schema.TaggedStruct("agent.turn.recorded", {
  runId: RunId,
  turn: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(Limits.turnsPerRunMax)),
  entryId: Position,
  callIds: Schema.Array(CallId),
  inputTokens: Count,
  outputTokens: Count,
  time: Time
})
/** Wait: the run needs a person (an approval, an answer); durable, so a restart asks again. */
export const AgentRunWaiting = Schema.TaggedStruct("agent.run.waiting", {
  runId: RunId,
  /** The call the question is about. */
  forCall: CallId,
  question: Schema.String,
  time: Time
})
/** Answer: the person answered; the run goes on acting. */
export const AgentRunAnswered = Schema.TaggedStruct("agent.run.answered", {
  runId: RunId,
  forCall: CallId,
  answer: Schema.String,
  by: Schema.String,
  time: Time
})
/** Finish: the model answered without asking for tools; journaled with that last turn. */
export const AgentRunDone = Schema.TaggedStruct("agent.run.done", { runId: RunId, time: Time })
/** Cancel: interrupted (Ctrl-C, AbortSignal, Effect interruption); the session stays resumable. */
export const AgentRunCancelled = Schema.TaggedStruct("agent.run.cancelled", { runId: RunId, reason: Schema.String, time: Time })
/** Fail: the model failed for good, or a budget (turns, tokens) ran out. */
export const AgentRunFailed = Schema.TaggedStruct("agent.run.failed", {
  runId: RunId,
  reason: Schema.Literals(["model", "contextTooLong", "turnsExhausted", "tokensExhausted"]),
  message: Schema.String,
  time: Time
})
/** TimeOut: the run's wall clock ran out, or the model stalled (no progress within its budget). */
export const AgentRunTimedOut = Schema.TaggedStruct("agent.run.timedOut", {
  runId: RunId,
  reason: Schema.Literals(["wallClock", "modelStalled"]),
  message: Schema.String,
  time: Time
})

// ------------------------------------------------------------------------------------------------
// Authority (spec/Authority.tla): the one edge from proposed to started, through a capability
// check and, where the capability demands it, an approval with a durable deadline.

const Principal = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(Limits.principalLengthMax))
const Hash = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))

/** Authorize: a verified capability covers the call's decoded arguments; `capability` is its id (uses are counted per id). */
export const ToolCallAuthorized = Schema.TaggedStruct("tool.call.authorized", {
  callId: CallId,
  capability: Hash,
  /** The token's block ids: each one's use counter counts this call (a parent's budget counts a sub-agent's calls). */
  blocks: Schema.Array(Hash),
  /** The capability demands an approval: the call may start only once approved (never straight from authorized). */
  approvalRequired: Schema.Boolean,
  time: Time
})
/** Deny: no capability covers the call; nothing runs, and the model sees `message` (the missing authority). */
export const ToolCallDenied = Schema.TaggedStruct("tool.call.denied", {
  callId: CallId,
  reason: Schema.String,
  message: Schema.String,
  time: Time
})
/** RequestApproval: the capability demands a person's yes; bound to the arguments' hash, decided by `deadline` (ms, from the Clock) or expired. */
export const ToolCallAwaitingApproval = Schema.TaggedStruct("tool.call.awaitingApproval", {
  callId: CallId,
  argsHash: Hash,
  approvers: Schema.Array(Principal),
  deadline: Time,
  time: Time
})
/** Approve: an allowed approver said yes to these exact arguments before the deadline. */
export const ToolCallApproved = Schema.TaggedStruct("tool.call.approved", {
  callId: CallId,
  by: Principal,
  argsHash: Hash,
  time: Time
})
/** RejectApproval: said no (or the run was cancelled while asking); nothing runs. */
export const ToolCallRejected = Schema.TaggedStruct("tool.call.rejected", {
  callId: CallId,
  by: Principal,
  reason: Schema.String,
  time: Time
})
/** Expire: the deadline passed with no decision; silence means no. */
export const ToolCallExpired = Schema.TaggedStruct("tool.call.expired", {
  callId: CallId,
  deadline: Time,
  time: Time
})
/** IgnoreDecision: a decision that does not count (late, second, by someone not allowed, for other arguments), kept for the audit. */
export const ToolCallDecisionIgnored = Schema.TaggedStruct("tool.call.decisionIgnored", {
  callId: CallId,
  by: Principal,
  decision: Schema.Literals(["approve", "reject"]),
  why: Schema.String,
  time: Time
})

export const Event = Schema.Union([
  SessionCreated,
  LeaseAcquired,
  EntryAppended,
  BranchForked,
  BranchSwitched,
  EntryLabelled,
  SessionSuspended,
  SessionClosed,
  ToolCallProposed,
  ToolCallStarted,
  ToolCallSucceeded,
  ToolCallFailed,
  ToolCallCancelled,
  ToolCallTimedOut,
  ToolCallCompensated,
  ToolCallAuthorized,
  ToolCallDenied,
  ToolCallAwaitingApproval,
  ToolCallApproved,
  ToolCallRejected,
  ToolCallExpired,
  ToolCallDecisionIgnored,
  AgentRunStarted,
  AgentTurnRecorded,
  AgentRunWaiting,
  AgentRunAnswered,
  AgentRunDone,
  AgentRunCancelled,
  AgentRunFailed,
  AgentRunTimedOut
])
export type Event = typeof Event.Type
export type EventTag = Event["_tag"]

/** The events of one tool call's lifecycle (folded by the ToolCall machine). */
export type ToolCallEvent = Extract<Event, { readonly _tag: `tool.call.${string}` }>
export const isToolCallEvent = (event: Event): event is ToolCallEvent => event._tag.startsWith("tool.call.")

/** The events of one agent run's lifecycle (folded by the Agent machine). */
export type AgentEvent = Extract<Event, { readonly _tag: `agent.${string}` }>
export const isAgentEvent = (event: Event): event is AgentEvent => event._tag.startsWith("agent.")
