// Shared by the kill -9 test (kill9.test.ts) and its child process (appender.ts): the seeded PRNG,
// the deterministic payloads (so the parent can check an event's exact content from its k and i
// alone), and the line protocol the child writes to stdout.
import * as fs from "node:fs"

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [lo, hi] (inclusive). */
export const between = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))

/** A 32-bit hash of two integers (splitmix-like finaliser). */
function hash2(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d) >>> 0
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b) >>> 0
  h ^= h >>> 16
  return h >>> 0
}

/** Payload size of event i of batch k: 10 B – 20 KiB, mostly small, sometimes crossing a 4 KiB page. */
export function padLength(k: number, i: number): number {
  const h = hash2(k, i)
  const bucket = h % 100
  const r = hash2(h, 7)
  if (bucket < 45) return 10 + (r % 190)
  if (bucket < 80) return 200 + (r % 3900)
  return 4096 + (r % (20 * 1024 - 4096 + 1))
}

/** The pad of event i of batch k: a pattern (with one non-ASCII character) that names its batch. */
export function padFor(k: number, i: number): string {
  const unit = `<${k}.${i}é>`
  const n = padLength(k, i)
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n)
}

export const journalPayload = (k: number, i: number) => ({ k, i, pad: padFor(k, i) })
export const sessionPayload = (j: number) => ({ j, pad: padFor(j, 0) })

/** The one event shape the journal scenario appends. */
export const journalEvent = (k: number, i: number) =>
  ({ _tag: "entry.appended", branch: "main", parentId: 0, type: "msg", time: 0, payload: journalPayload(k, i) }) as const

/** Writes one protocol line to stdout synchronously (a pipe: it is in the parent's hands before we go on). */
export function emit(line: string): void {
  const bytes = Buffer.from(line + "\n")
  let written = 0
  while (written < bytes.length) {
    try {
      written += fs.writeSync(1, bytes, written, bytes.length - written)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e
    }
  }
}

/** What the parent sends the child on stdin (one JSON line) once the child has loaded. */
export interface ChildConfig {
  readonly mode: "journal" | "session"
  readonly dir: string
  readonly owner: string
  readonly seed: number
  /** First batch number (journal) or operation number (session) this child uses. */
  readonly start: number
  /** 0 = the default segment size; otherwise small segments so that segments roll over. */
  readonly segmentBytesMax: number
  /** "fsync" mostly; "os" (acked once handed to the OS) must survive a process crash too, and tears more tails. */
  readonly durability: "fsync" | "os"
}
