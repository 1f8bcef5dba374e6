/**
 * A store in memory, for tests and the memory layer. It keeps real frames
 * (the same codec as the file store), so what passes here passes the same
 * checks on disk; it is durable only as long as the process.
 */
import { frameAt, frameHeaderBytes, headerBytes } from "./Codec.ts"
import { JournalCorrupt, SessionLocked } from "./JournalError.ts"
import type { Location, ScannedFrame, Store, StoreMark } from "./Store.ts"

export class MemoryStore implements Store {
  readonly path: string
  private readonly frames: Array<Uint8Array> = []
  private readonly byOffset = new Map<number, Uint8Array>()
  private checkpointBytes: Uint8Array | undefined
  private size = headerBytes
  private holder: string | undefined

  constructor(path = "memory") {
    this.path = path
  }

  append(frame: Uint8Array): Promise<Location> {
    const location = { segment: 1, offset: this.size, length: frame.length }
    const copy = frame.slice()
    this.frames.push(copy)
    this.byOffset.set(this.size, copy)
    this.size += frame.length
    return Promise.resolve(location)
  }

  readPayload(location: Location): Uint8Array {
    const frame = this.byOffset.get(location.offset)
    if (frame === undefined) throw new JournalCorrupt({ path: this.path, offset: location.offset, reason: "no frame starts here" })
    const at = frameAt(frame, 0)
    if (at.kind !== "frame") throw new JournalCorrupt({ path: this.path, offset: location.offset, reason: at.reason })
    return frame.subarray(frameHeaderBytes)
  }

  readPayloads(locations: ReadonlyArray<Location>): Array<Uint8Array> {
    // Checked in file order, so the first damaged frame is the one reported, as on disk.
    const order = locations.map((_, i) => i).sort((a, b) => (locations[a] as Location).offset - (locations[b] as Location).offset)
    const out = new Array<Uint8Array>(locations.length)
    for (const i of order) out[i] = this.readPayload(locations[i] as Location)
    return out
  }

  /** Every frame, as a file store's scan would return them. */
  scan(): Array<ScannedFrame> {
    let offset = headerBytes
    return this.frames.map((frame) => {
      const location = { segment: 1, offset, length: frame.length }
      offset += frame.length
      return { location, crc: new DataView(frame.buffer, frame.byteOffset).getUint32(8, true), payload: frame.subarray(frameHeaderBytes) }
    })
  }

  mark(): StoreMark {
    return { segment: 1, end: this.size, lastFrame: null }
  }

  writeCheckpoint(bytes: Uint8Array): void {
    this.checkpointBytes = bytes.slice()
  }

  readCheckpoint(): Uint8Array | undefined {
    return this.checkpointBytes
  }

  lock(owner: string, takeover: boolean): void {
    if (this.holder !== undefined && !takeover) throw new SessionLocked({ path: this.path, owner: this.holder })
    this.holder = owner
  }

  unlock(): void {
    this.holder = undefined
  }

  close(): void {
    this.holder = undefined
  }
}
