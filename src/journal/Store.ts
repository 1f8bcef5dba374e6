/**
 * The byte-level log under a Journal. A store keeps frames (see Codec.ts) in
 * order and says where each one is; it knows nothing of events, epochs or
 * sessions. Two implementations: MemoryStore (tests, the memory layer) and
 * FileStore (segment files, group commit, lock file).
 */
import type { JournalIOError, SessionLocked, StaleWriter } from "./JournalError.ts"

/** Where a frame lives: the segment (named by its first position), byte offset and length. */
export interface Location {
  readonly segment: number
  readonly offset: number
  readonly length: number
}

/** A whole frame found by a scan, with its payload bytes (not yet decoded). */
export interface ScannedFrame {
  readonly location: Location
  readonly crc: number
  readonly payload: Uint8Array
}

/** Where a trusted prefix ends, as recorded by a checkpoint. */
export interface StoreMark {
  readonly segment: number
  readonly end: number
  readonly lastFrame: { readonly offset: number; readonly crc: number } | null
}

export interface Store {
  readonly path: string
  /** Writes one frame after all earlier ones; resolves once durable (per the store's durability). */
  append(frame: Uint8Array, firstPosition: number): Promise<Location>
  /** The payload bytes of a frame, checksum verified. */
  readPayload(location: Location): Uint8Array
  /**
   * The payload bytes of several frames, each checksum verified, in the order
   * of `locations` (which may repeat): what `readPayload` gives for each, with
   * fewer reads (neighbouring frames may share one). A damaged frame fails the
   * whole call as `readPayload` would, the first one in file order.
   */
  readPayloads(locations: ReadonlyArray<Location>): Array<Uint8Array>
  /** Where the log ends now (for checkpoints). */
  mark(): StoreMark
  /** Replaces the checkpoint atomically (a crash leaves the old one or the new one). */
  writeCheckpoint(bytes: Uint8Array): void
  readCheckpoint(): Uint8Array | undefined
  /** Takes the single-writer lock (fails with SessionLocked). */
  lock(owner: string, takeover: boolean): void
  unlock(): void
  close(): void
}

/** Errors a store's promises reject with (already typed for the Journal). */
export type StoreError = JournalIOError | StaleWriter | SessionLocked
