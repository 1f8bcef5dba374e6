/**
 * Every bound in Keel, in one place (TigerBeetle style: a limit on
 * everything, qualifier last). A loop, a queue or a record that could grow
 * without bound is a denial of service waiting for its input.
 */
export const Limits = {
  /** Events in one atomic batch (one journal frame). */
  batchEventsMax: 1024,
  /** Bytes of one frame payload; a bigger record is refused before any write. */
  frameBytesMax: 16 * 1024 * 1024,
  /** A segment rolls over once it holds this many bytes; frames never span segments. */
  segmentBytesMax: 64 * 1024 * 1024,
  /** Bytes written by one group-commit cycle (one write + one fsync). */
  groupCommitBytesMax: 8 * 1024 * 1024,
  /** Appends waiting for a group-commit cycle before new ones are refused. */
  appendsPendingMax: 65_536,
  /** Branch names, labels and entry types. */
  branchNameLengthMax: 128,
  labelLengthMax: 256,
  entryTypeLengthMax: 64,
  /** Branches in one session. */
  branchesMax: 100_000,
  /** A tool call's time budget may not exceed this (a tool without an end is a stalled agent). */
  toolTimeoutMsMax: 15 * 60 * 1000,
  /** Attempts of one tool call, the first included. */
  retryAttemptsMax: 10,
  /** Characters of a call id (it is part of the idempotency key sent to external APIs). */
  callIdLengthMax: 128,
  /** Model turns in one agent run (each is a paid model call). */
  turnsPerRunMax: 1000,
  /** Tool calls one model turn may propose; the calls beyond are journaled and rejected. */
  toolCallsPerTurnMax: 64,
  /** Wall-clock budget of one run, waiting included (deadlines come from the journal). */
  runWallClockMsMax: 24 * 60 * 60 * 1000,
  /** A model call that shows no progress (no streamed token) for this long has stalled. */
  modelStallMsMax: 10 * 60 * 1000,
  /** Attempts of one model call on retryable errors (rate limit, overload, network), the first included. */
  modelAttemptsMax: 8,
  /** Characters of a branch shown to the model: older entries are left out, from a user entry on (the window is finite). */
  contextCharsMax: 400_000,
  /** Decoded entries a session keeps in memory (they never change; the journal has them all). */
  entryCacheMax: 65_536,
  /** Characters of a tool result shown to the model (the journal keeps the whole output). */
  toolResultCharsMax: 64 * 1024,
  /** Listeners of one agent's event stream. */
  agentListenersMax: 64,
  /** Characters of a principal's name (who approves, who is granted). */
  principalLengthMax: 128,
  /** An approval request's deadline: at most this long after the request (silence means no). */
  approvalTimeoutMsMax: 24 * 60 * 60 * 1000,
  /** Decisions (counted or ignored) one approval request may receive; more is a flood, not a conversation. */
  decisionsPerCallMax: 1000,
  /** Records appended between two checkpoints of the session index. */
  checkpointIntervalRecords: 4096
} as const
