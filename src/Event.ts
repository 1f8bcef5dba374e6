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

export const Event = Schema.Union([SessionCreated, LeaseAcquired, EntryAppended, BranchForked, BranchSwitched, EntryLabelled, SessionSuspended, SessionClosed])
export type Event = typeof Event.Type
export type EventTag = Event["_tag"]
