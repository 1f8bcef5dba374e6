/**
 * Expected journal failures, as tagged data (design §8.4). Each names what is
 * wrong and where, so an operator can act on it without reading the code.
 */
import { Schema } from "effect"

/** A checksum or framing failure before the tail: committed data is damaged. Never skipped. */
export class JournalCorrupt extends Schema.TaggedError<JournalCorrupt>()("JournalCorrupt", {
  path: Schema.String,
  offset: Schema.Number,
  reason: Schema.String
}) {
  override get message() {
    return `journal ${this.path} is corrupt at byte ${this.offset}: ${this.reason}`
  }
}

/** A whole, checksummed record whose content fails the event Schema. */
export class JournalRecordInvalid extends Schema.TaggedError<JournalRecordInvalid>()("JournalRecordInvalid", {
  path: Schema.String,
  offset: Schema.Number,
  reason: Schema.String
}) {
  override get message() {
    return `invalid record in ${this.path} at byte ${this.offset}: ${this.reason}`
  }
}

/** The file was written by a newer Keel whose format this one cannot read. */
export class JournalVersionUnsupported extends Schema.TaggedError<JournalVersionUnsupported>()("JournalVersionUnsupported", {
  path: Schema.String,
  version: Schema.Number,
  supported: Schema.Number
}) {
  override get message() {
    return `journal ${this.path} has format version ${this.version}; this Keel reads up to ${this.supported}`
  }
}

/** The path exists but is not a Keel journal (wrong magic, a plain file, a foreign folder). */
export class JournalNotFound extends Schema.TaggedError<JournalNotFound>()("JournalNotFound", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path} is not a Keel journal: ${this.reason}`
  }
}

/** The operating system refused a read, write or fsync. After a failed fsync the journal is closed (fail-stop). */
export class JournalIOError extends Schema.TaggedError<JournalIOError>()("JournalIOError", {
  path: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.operation} failed on ${this.path}: ${this.reason}`
  }
}

/** An append was refused before any byte was written: the batch is malformed or too large. */
export class JournalAppendRejected extends Schema.TaggedError<JournalAppendRejected>()("JournalAppendRejected", {
  reason: Schema.String
}) {
  override get message() {
    return `append rejected: ${this.reason}`
  }
}

/**
 * The writer's fence is out of date: another writer took the lease (a newer
 * epoch) or appended since this writer last looked (a different head).
 * Nothing was written. Re-open the session to continue from the new state.
 */
export class StaleWriter extends Schema.TaggedError<StaleWriter>()("StaleWriter", {
  path: Schema.String,
  expectedEpoch: Schema.Number,
  actualEpoch: Schema.Number,
  expectedHead: Schema.Number,
  actualHead: Schema.Number
}) {
  override get message() {
    return `stale writer on ${this.path}: fence (epoch ${this.expectedEpoch}, head ${this.expectedHead}) but journal is at (epoch ${this.actualEpoch}, head ${this.actualHead})`
  }
}

/** Another live process holds the session's write lease. Readers never need it. */
export class SessionLocked extends Schema.TaggedError<SessionLocked>()("SessionLocked", {
  path: Schema.String,
  owner: Schema.String
}) {
  override get message() {
    return `session ${this.path} is being written by ${this.owner}`
  }
}

export type JournalReadError = JournalCorrupt | JournalRecordInvalid | JournalVersionUnsupported | JournalIOError
export type JournalAppendError = StaleWriter | JournalAppendRejected | JournalIOError
