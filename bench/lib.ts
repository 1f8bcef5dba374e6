/**
 * Shared helpers for the benchmarks: sample statistics, number formatting,
 * the markdown table, temporary folders, the page cache and a trace of the
 * file-system calls the journal makes.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as os from "node:os"
import * as nodePath from "node:path"
import { frameHeaderBytes } from "../src/journal/Codec.ts"

// ---------------------------------------------------------------- statistics

export interface Stats {
  readonly n: number
  readonly mean: number
  readonly p50: number
  readonly p99: number
  readonly min: number
  readonly max: number
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ReadonlyArray<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

export function stats(samples: ReadonlyArray<number>): Stats {
  const sorted = [...samples].sort((a, b) => a - b)
  let sum = 0
  for (const x of sorted) sum += x
  return {
    n: sorted.length,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

export const median = (xs: ReadonlyArray<number>): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50
  )

// ---------------------------------------------------------------- formatting

/** A duration given in milliseconds, in the most readable unit. */
export function dur(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a"
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : 1)} µs`
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

export function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "n/a"
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export const opsPerSec = (ops: number, ms: number): string => `${num((ops / ms) * 1000)} ops/s`
export const ratio = (x: number, digits = 2): string => (Number.isFinite(x) ? `${x.toFixed(digits)}×` : "n/a")

export function bytes(n: number): string {
  if (n < 1024) return `${num(n, n % 1 === 0 ? 0 : 1)} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

// ---------------------------------------------------------------- the table

export type Status = "PASS" | "MISS" | "info" | "ERROR"

export interface Row {
  readonly id: string
  readonly measure: string
  readonly result: string
  readonly baseline: string
  readonly ratio: string
  readonly target: string
  readonly status: Status
}

export const verdict = (ok: boolean): Status => (ok ? "PASS" : "MISS")

const escapeCell = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ")

export function markdownTable(rows: ReadonlyArray<Row>): string {
  const header = ["#", "Measure", "Result", "Baseline (same run)", "Ratio", "Target", "Status"]
  const cells = rows.map((r) => [r.id, r.measure, r.result, r.baseline, r.ratio, r.target, r.status].map(escapeCell))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)))
  const line = (cs: ReadonlyArray<string>) => `| ${cs.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n")
}

// ---------------------------------------------------------------- temp folders

const created: Array<string> = []

/** A fresh folder under os.tmpdir(), removed by `removeTempDirs` (also on exit and Ctrl-C). */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), `keel-bench-${prefix}-`))
  created.push(dir)
  return dir
}

export function removeTempDirs(): void {
  while (created.length > 0) {
    const dir = created.pop() as string
    try {
      fs.rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
}

process.on("exit", removeTempDirs)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    removeTempDirs()
    process.exit(130)
  })
}

/** Sum of the sizes of the regular files in `dir` (not recursive). */
export function filesSize(dir: string): { files: number; bytes: number } {
  let total = 0
  let files = 0
  for (const name of fs.readdirSync(dir)) {
    const stat = fs.statSync(nodePath.join(dir, name))
    if (stat.isFile()) {
      total += stat.size
      files++
    }
  }
  return { files, bytes: total }
}

// ---------------------------------------------------------------- page cache

/**
 * Empties the page cache: `sync; echo 3 > /proc/sys/vm/drop_caches` (root
 * only). If that is refused, evicts just `files` with fadvise(DONTNEED)
 * through `dd iflag=nocache`. Says which one worked.
 */
export function dropCaches(files: ReadonlyArray<string>): "drop_caches" | "fadvise" | "none" {
  try {
    execFileSync("sh", ["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], { stdio: "ignore" })
    return "drop_caches"
  } catch {
    // not root, or a container that forbids it
  }
  try {
    for (const file of files) execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"], { stdio: "ignore" })
    return "fadvise"
  } catch {
    return "none"
  }
}

/** Fraction (0..1) of `files`' bytes resident in the page cache, by `fincore`; undefined if unavailable. */
export function residency(files: ReadonlyArray<string>): number | undefined {
  try {
    const out = execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES,SIZE", ...files], { encoding: "utf8" })
    let res = 0
    let size = 0
    for (const line of out.trim().split("\n")) {
      const [r, s] = line.trim().split(/\s+/).map(Number)
      res += r ?? 0
      size += s ?? 0
    }
    return size === 0 ? undefined : res / size
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------- file-system trace

/** What the FileStore did during a traced body. */
export interface FsTrace {
  /** Bytes of every writeSync (one per group-commit cycle, plus segment headers and checkpoints). */
  readonly writes: Array<number>
  /** Journal frames in each of those writes (0 for a write that is not frames: a segment header, a checkpoint). */
  readonly frames: Array<number>
  /** fdatasync calls, on the thread pool and on the main thread (a lone appender's cycle). */
  readonly fsyncs: number
  readonly fsyncsSync: number
  /** fsyncSync calls (checkpoint files). */
  readonly fullFsyncs: number
  /** Wall time fdatasync calls were in flight (thread pool and main thread). */
  readonly fsyncMs: number
}

/** Journal frames laid end to end in `bytes[offset, offset + length)`; stops at the first thing that is not a frame header. */
function framesIn(bytes: Uint8Array, offset: number, length: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length)
  let at = 0
  let n = 0
  while (at + frameHeaderBytes <= length) {
    const size = view.getUint32(at, true)
    if (view.getUint32(at + 4, true) !== ~size >>> 0 || at + frameHeaderBytes + size > length) break
    n++
    at += frameHeaderBytes + size
  }
  return n
}

/**
 * Counts what the FileStore does during `body`: writes (one per group-commit
 * cycle), the frames each carried, fdatasync calls and their wall time. Wraps
 * node:fs in place (the FileStore's `import * as fs` sees the wrappers through
 * syncBuiltinESMExports) and restores it afterwards.
 */
export async function instrumentFs<A>(body: () => Promise<A>): Promise<{ result: A } & FsTrace> {
  const fsCjs = createRequire(import.meta.url)("node:fs") as Record<string, unknown>
  const writeSync = fsCjs.writeSync as (...args: Array<unknown>) => number
  const fdatasync = fsCjs.fdatasync as (fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => void
  const fdatasyncSync = fsCjs.fdatasyncSync as (fd: number) => void
  const fsyncSync = fsCjs.fsyncSync as (fd: number) => void
  const writes: Array<number> = []
  const frames: Array<number> = []
  let fsyncs = 0
  let fsyncsSync = 0
  let fullFsyncs = 0
  let fsyncMs = 0
  fsCjs.writeSync = (...args: Array<unknown>) => {
    const n = writeSync(...args)
    writes.push(n)
    const [, buffer, offset] = args
    frames.push(buffer instanceof Uint8Array ? framesIn(buffer, typeof offset === "number" ? offset : 0, n) : 0)
    return n
  }
  fsCjs.fdatasync = (fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    const t = performance.now()
    fsyncs++
    fdatasync(fd, (e) => {
      fsyncMs += performance.now() - t
      cb(e)
    })
  }
  fsCjs.fdatasyncSync = (fd: number) => {
    const t = performance.now()
    fsyncsSync++
    try {
      fdatasyncSync(fd)
    } finally {
      fsyncMs += performance.now() - t
    }
  }
  fsCjs.fsyncSync = (fd: number) => {
    fullFsyncs++
    fsyncSync(fd)
  }
  syncBuiltinESMExports()
  try {
    return { result: await body(), writes, frames, fsyncs, fsyncsSync, fullFsyncs, fsyncMs }
  } finally {
    fsCjs.writeSync = writeSync
    fsCjs.fdatasync = fdatasync
    fsCjs.fdatasyncSync = fdatasyncSync
    fsCjs.fsyncSync = fsyncSync
    syncBuiltinESMExports()
  }
}
