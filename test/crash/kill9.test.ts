import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Event } from "../../src/Event.ts"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import { ChildPool, runScoped } from "./children.ts"
import { between, type ChildConfig, journalEvent, prng, sessionPayload } from "./shared.ts"

const SEED = process.env.SEED !== undefined && process.env.SEED !== "" ? Number(process.env.SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
const KILLS_JOURNAL = Number(process.env.KILLS_JOURNAL ?? 48)
const KILLS_SESSION = Number(process.env.KILLS_SESSION ?? 14)
/** KILL9_VERBOSE=1 prints one line per kill. */
const VERBOSE = process.env.KILL9_VERBOSE !== undefined && process.env.KILL9_VERBOSE !== ""

const here = path.dirname(fileURLToPath(import.meta.url))
const appender = path.join(here, "appender.ts")

// ---------------------------------------------------------------------------------------------
// Children

let root = ""
let failed = false
const pool = new ChildPool(appender)

// ---------------------------------------------------------------------------------------------
// Opening and reading in the parent

interface View {
  readonly head: number
  /** The records from `from` (1 unless asked otherwise) to the head. */
  readonly records: ReadonlyArray<Journal.Committed>
  readonly torn: { readonly offset: number; readonly reason: string } | null
  readonly checkpointHead: number | undefined
}

const openJournal = (dir: string, writer: boolean, from = 1): Promise<View> =>
  runScoped(
    Effect.gen(function* () {
      const journal = yield* Journal.openFile(dir, { owner: "verifier", writer, create: false })
      const records = yield* journal.read(from)
      if (records.length !== Math.max(0, journal.head() - from + 1) || journal.durableHead() !== journal.head()) {
        throw new Error(`read ${records.length} records from ${from} but head is ${journal.head()} (durable ${journal.durableHead()})`)
      }
      return { head: journal.head(), records, torn: journal.recovery.tornTail, checkpointHead: journal.recovery.checkpoint?.head }
    })
  )

const tornOffset = (view: View) => (view.torn === null ? null : view.torn.offset)
const lastEpoch = (records: ReadonlyArray<Journal.Committed>) => records[records.length - 1]?.epoch ?? 0
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** A failed check: names the seed and the kill so that the failure can be replayed. */
class CheckFailed extends Error {
  override readonly name = "CheckFailed"
}

type Check = (condition: unknown, message: string | (() => string)) => asserts condition

function checker(context: () => string): Check {
  return (condition, message) => {
    if (!condition) throw new CheckFailed(`SEED=${SEED} ${context()}: ${typeof message === "string" ? message : message()}`)
  }
}

/** Invariants of any journal: positions 1..n, epochs never decrease, lease epochs count up by one. */
function checkShape(check: Check, records: ReadonlyArray<Journal.Committed>, leases: number): void {
  let epoch = 0
  let leaseCount = 0
  for (const [i, r] of records.entries()) {
    check(r.position === i + 1, () => `record ${i} has position ${r.position}, expected ${i + 1}`)
    check(r.epoch >= epoch, () => `epoch goes down at position ${r.position}: ${r.epoch} after ${epoch}`)
    if (r.event._tag === "lease.acquired") {
      check(
        r.event.epoch === epoch + 1 && r.epoch === r.event.epoch,
        () => `lease.acquired at ${r.position} has epoch ${r.event._tag === "lease.acquired" ? r.event.epoch : "?"} after ${epoch}`
      )
      leaseCount++
    } else {
      check(r.epoch === epoch || (epoch === 0 && i === 0), () => `record ${r.position} has epoch ${r.epoch} but the lease in force is ${epoch}`)
    }
    epoch = r.epoch
  }
  check(leaseCount === leases, () => `${leaseCount} lease.acquired records, expected ${leases} (one per writer start)`)
}

/**
 * Opens `dir` as a reader, checks the prefix and shape, then opens it as a writer (in place, or a
 * copy when `inPlace` is false) and checks that recovery changes nothing but the torn tail.
 * Returns the reader's view.
 */
async function readerThenWriter(check: Check, dir: string, base: ReadonlyArray<Journal.Committed>, leases: number, inPlace: boolean): Promise<View> {
  let reader: View
  try {
    reader = await openJournal(dir, false)
  } catch (e) {
    check(false, `the journal does not open for reading after a kill: ${String(e)}`)
    throw e
  }
  check(reader.records.length >= base.length, () => `the journal shrank from ${base.length} to ${reader.records.length} records`)
  for (let i = 0; i < base.length; i++) {
    check(
      sameJson(reader.records[i], base[i]),
      () => `record ${i + 1} changed after the kill: ${JSON.stringify(base[i]).slice(0, 200)} → ${JSON.stringify(reader.records[i]).slice(0, 200)}`
    )
  }
  checkShape(check, reader.records, leases)
  check(reader.checkpointHead === undefined || reader.checkpointHead <= reader.records.length, "the checkpoint is ahead of the log")

  const target = inPlace ? dir : `${dir}.copy`
  if (!inPlace) fs.cpSync(dir, target, { recursive: true })
  try {
    let writer: View
    try {
      writer = await openJournal(target, true)
    } catch (e) {
      check(false, `the journal does not reopen as a writer after a kill: ${String(e)}`)
      throw e
    }
    check(tornOffset(writer) === tornOffset(reader), () => `reader saw torn tail ${JSON.stringify(reader.torn)}, writer ${JSON.stringify(writer.torn)}`)
    check(sameJson(writer.records, reader.records), "the writer recovered different records than the reader read")
    const after = await openJournal(target, false, reader.records.length + 1)
    check(after.torn === null, () => `the torn tail is still there after a writer's open: ${JSON.stringify(after.torn)}`)
    check(after.head === reader.records.length, () => `head is ${after.head} after the torn tail was cut, expected ${reader.records.length}`)
  } finally {
    if (!inPlace) fs.rmSync(target, { recursive: true, force: true })
  }
  return reader
}

// ---------------------------------------------------------------------------------------------

const summary = {
  seed: SEED,
  kills: 0,
  journalKills: 0,
  sessionKills: 0,
  freshFolders: 0,
  tornTails: 0,
  tornReasons: {} as Record<string, number>,
  childSawTornTail: 0,
  checkpointRecoveries: 0,
  maxSegmentFiles: 0,
  checkpointsWritten: 0,
  batchesChecked: 0,
  ackedBatches: 0,
  unackedDurable: 0,
  unackedLost: 0,
  overlappingBatches: 0,
  sessionOps: 0,
  sessionAckedOps: 0,
  sessionUnackedDurable: 0,
  entriesChecked: 0,
  branchesChecked: 0,
  ms: { journal: 0, session: 0 }
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "keel-kill9-"))
  console.log(`SEED=${SEED} (set SEED=${SEED} to repeat the random choices) folders in ${root}`)
})

afterAll(() => {
  pool.stop()
  console.log(`kill9 summary ${JSON.stringify(summary)}`)
  if (failed) console.log(`kept ${root} for inspection`)
  else fs.rmSync(root, { recursive: true, force: true })
})

function countSegments(dir: string): number {
  return fs.readdirSync(path.join(dir, "segments")).filter((n) => n.endsWith(".seg")).length
}

describe("kill -9 while appending", () => {
  it(`journal: acknowledged batches survive, the rest is a whole-batch prefix (${KILLS_JOURNAL} kills)`, async () => {
    const started = Date.now()
    const rng = prng(SEED)
    let context = "journal"
    const check: Check = checker(() => context)
    let nextK = 1
    let folders = 0
    let dir = ""
    let base: ReadonlyArray<Journal.Committed> = []
    let leases = 0
    let killsHere = 0
    let segmentBytesMax = 0
    let durability: ChildConfig["durability"] = "fsync"
    let pendingTorn: number | null = null
    try {
      for (let kill = 0; kill < KILLS_JOURNAL; kill++) {
        if (dir === "" || killsHere >= (durability === "os" ? 3 : 8) || rng() < 0.15) {
          dir = path.join(root, `journal-${folders++}`)
          base = []
          leases = 0
          killsHere = 0
          pendingTorn = null
          segmentBytesMax = rng() < 0.4 ? between(rng, 24, 96) * 1024 : 0
          durability = rng() < 0.25 ? "os" : "fsync"
          summary.freshFolders++
        }
        const owner = `child-${kill}`
        const delay = between(rng, 5, 150)
        const config: ChildConfig = { mode: "journal", dir, owner, seed: (rng() * 2 ** 32) >>> 0, start: nextK, segmentBytesMax, durability }
        const inPlace = rng() < 0.6
        context = `journal kill ${kill} (${dir}, ${durability}, ${killsHere} earlier kills here, delay ${delay} ms)`
        const t0 = Date.now()
        const lines = await pool.runAndKill(config, delay, "ack ")
        const t1 = Date.now()
        leases++
        killsHere++
        summary.kills++
        summary.journalKills++

        // What the child said.
        const open = lines[0]?.split(" ") ?? []
        check(open[0] === "open", () => `first line is ${lines[0]}`)
        check(
          Number(open[1]) === base.length && Number(open[2]) === lastEpoch(base),
          () => `child opened at head ${open[1]} epoch ${open[2]}, expected ${base.length}, ${lastEpoch(base)}`
        )
        check((open[3] === "-" ? null : Number(open[3])) === pendingTorn, () => `child saw torn tail ${open[3]}, the parent saw ${pendingTorn}`)
        if (pendingTorn !== null) summary.childSawTornTail++
        const lease = lines[1]?.split(" ") ?? []
        check(lease[0] === "lease" && Number(lease[1]) === lastEpoch(base) + 1 && Number(lease[2]) === base.length + 1, () => `second line is ${lines[1]}`)
        const begun: Array<{ k: number; count: number }> = []
        const acked = new Map<number, { first: number; count: number }>()
        let inFlight = 0
        for (const line of lines.slice(2)) {
          const [kind, a, b, c] = line.split(" ")
          if (kind === "begin") {
            check(Number(a) === nextK + begun.length, () => `batch numbers skip: ${line}`)
            begun.push({ k: Number(a), count: Number(b) })
            inFlight++
            if (inFlight > 1) summary.overlappingBatches++
          } else if (kind === "ack") {
            acked.set(Number(a), { first: Number(b), count: Number(c) })
            inFlight--
          } else {
            check(kind === "checkpoint", () => `unknown line ${line}`)
            summary.checkpointsWritten++
          }
        }
        check(acked.size > 0, "no batch was acknowledged")

        // What survived.
        const view = await readerThenWriter(check, dir, base, leases, inPlace)
        if (view.torn !== null) {
          summary.tornTails++
          summary.tornReasons[view.torn.reason] = (summary.tornReasons[view.torn.reason] ?? 0) + 1
        }
        if (view.checkpointHead !== undefined) summary.checkpointRecoveries++
        const rest = view.records.slice(base.length)
        const leaseRecord = rest[0]
        check(
          leaseRecord?.event._tag === "lease.acquired" && leaseRecord.event.owner === owner && leaseRecord.epoch === lastEpoch(base) + 1,
          () => `the child's lease.acquired is missing: ${JSON.stringify(leaseRecord)}`
        )
        const epoch = leaseRecord.epoch
        let at = 1
        let present = 0
        for (const batch of begun) {
          if (at === rest.length) break
          check(rest.length - at >= batch.count, () => `batch ${batch.k} is partial: ${rest.length - at} of its ${batch.count} events are in the journal`)
          for (let i = 0; i < batch.count; i++) {
            const record = rest[at + i] as Journal.Committed
            check(
              sameJson(record.event, journalEvent(batch.k, i)) && record.epoch === epoch,
              () => `position ${record.position} should hold event ${i} of batch ${batch.k} (epoch ${epoch}), holds ${JSON.stringify(record).slice(0, 200)}`
            )
          }
          const ack = acked.get(batch.k)
          if (ack !== undefined) {
            check(
              ack.first === (rest[at] as Journal.Committed).position && ack.count === batch.count,
              () => `batch ${batch.k} was acked at ${ack.first} but is at ${rest[at]?.position}`
            )
          } else summary.unackedDurable++
          at += batch.count
          present++
        }
        check(at === rest.length, () => `${rest.length - at} records after the last begun batch: ${JSON.stringify(rest[at]).slice(0, 200)}`)
        for (const [k] of acked)
          check(k < nextK + present, () => `acknowledged batch ${k} is not in the journal (only ${present} of ${begun.length} begun batches are)`)
        summary.batchesChecked += present
        summary.ackedBatches += acked.size
        summary.unackedLost += begun.length - present
        summary.maxSegmentFiles = Math.max(summary.maxSegmentFiles, countSegments(dir))

        base = view.records
        if (VERBOSE)
          console.log(
            `${context}: ran ${t1 - t0} ms, checked in ${Date.now() - t1} ms, ${begun.length} batches begun, ${acked.size} acked, ${present} in the journal, torn tail ${tornOffset(view)}, ${base.length} records`
          )
        pendingTorn = inPlace ? null : tornOffset(view)
        nextK += begun.length
      }
    } catch (e) {
      failed = true
      throw e
    } finally {
      summary.ms.journal = Date.now() - started
    }
    expect(summary.journalKills).toBe(KILLS_JOURNAL)
  }, 80_000)

  it(`session: acknowledged appends, forks and switches survive and replay (${KILLS_SESSION} kills)`, async () => {
    const started = Date.now()
    const rng = prng(SEED ^ 0x5e55)
    let context = "session"
    const check: Check = checker(() => context)
    let nextJ = 1
    let folders = 0
    let dir = ""
    let base: ReadonlyArray<Journal.Committed> = []
    let leases = 0
    let killsHere = 0
    let segmentBytesMax = 0
    /** Every acknowledged append of the current folder: it must stay on its branch forever. */
    let ackedEntries: Array<{ j: number; id: number; branch: string }> = []
    try {
      for (let kill = 0; kill < KILLS_SESSION; kill++) {
        if (dir === "" || killsHere >= 6 || rng() < 0.15) {
          dir = path.join(root, `session-${folders++}`)
          base = []
          leases = 0
          killsHere = 0
          ackedEntries = []
          segmentBytesMax = rng() < 0.3 ? between(rng, 24, 96) * 1024 : 0
          summary.freshFolders++
        }
        const owner = `session-child-${kill}`
        const delay = between(rng, 5, 150)
        const inPlace = rng() < 0.6
        const config: ChildConfig = { mode: "session", dir, owner, seed: (rng() * 2 ** 32) >>> 0, start: nextJ, segmentBytesMax, durability: "fsync" }
        context = `session kill ${kill} (${dir}, ${killsHere} earlier kills here, delay ${delay} ms)`
        const lines = await pool.runAndKill(config, delay, "ack ")
        leases++
        killsHere++
        summary.kills++
        summary.sessionKills++

        // What the child said.
        const open = lines[0]?.split(" ") ?? []
        const created = base.length === 0 ? 1 : 0
        check(
          open[0] === "open" && Number(open[1]) === lastEpoch(base) + 1 && Number(open[2]) === base.length + created + 1,
          () => `first line is ${lines[0]}, expected lease epoch ${lastEpoch(base) + 1} at ${base.length + created + 1}`
        )
        type Op = { group: number; op: "append" | "fork" | "switch"; j: number; name: string; from: number }
        const begun: Array<Op> = []
        const acked = new Map<number, { id: number; parentId: number }>()
        for (const line of lines.slice(1)) {
          const [kind, group, op, j, x, y] = line.split(" ")
          if (kind === "begin") begun.push({ group: Number(group), op: op as Op["op"], j: Number(j), name: x as string, from: Number(y ?? 0) })
          else if (kind === "ack") acked.set(Number(j), { id: Number(x ?? 0), parentId: Number(y ?? 0) })
          else {
            check(kind === "checkpoint", () => `unknown line ${line}`)
            summary.checkpointsWritten++
          }
        }
        check(acked.size > 0, "no operation was acknowledged")
        summary.sessionOps += begun.length
        summary.sessionAckedOps += acked.size

        // The raw journal: the prefix, the shape, and the child's operations as a prefix of what it began.
        // The raw writer's recovery is checked on a copy: the Session writer below recovers the folder itself.
        const view = await readerThenWriter(check, dir, base, leases, false)
        if (view.torn !== null) {
          summary.tornTails++
          summary.tornReasons[view.torn.reason] = (summary.tornReasons[view.torn.reason] ?? 0) + 1
        }
        if (view.checkpointHead !== undefined) summary.checkpointRecoveries++
        const rest = view.records.slice(base.length)
        if (created === 1) check(rest[0]?.event._tag === "session.created", "a fresh session does not start with session.created")
        const lease = rest[created]
        check(lease?.event._tag === "lease.acquired" && lease.event.owner === owner, () => `the child's lease.acquired is missing: ${JSON.stringify(lease)}`)
        let at = created + 1
        const groups = [...new Set(begun.map((o) => o.group))]
        let complete = true
        for (const group of groups) {
          if (at === rest.length) break
          check(complete, () => `group ${group} is in the journal after an incomplete group`)
          const ops = begun.filter((o) => o.group === group)
          const left = new Set(ops)
          while (left.size > 0 && at < rest.length) {
            const record = rest[at] as Journal.Committed
            const e = record.event
            const op = [...left].find((o) =>
              o.op === "append"
                ? e._tag === "entry.appended" && sameJson(e.payload, sessionPayload(o.j)) && e.branch === o.name && e.type === "msg"
                : o.op === "fork"
                  ? e._tag === "branch.forked" && e.branch === o.name && e.from === o.from
                  : e._tag === "branch.switched" && e.branch === o.name
            )
            check(op !== undefined, () => `position ${record.position} holds ${JSON.stringify(e).slice(0, 200)}, which no operation of group ${group} wrote`)
            left.delete(op)
            const ack = acked.get(op.j)
            if (op.op === "append" && ack !== undefined) {
              check(
                ack.id === record.position && e._tag === "entry.appended" && ack.parentId === e.parentId,
                () => `append ${op.j} was acked as entry ${ack.id} (parent ${ack.parentId}) but is ${JSON.stringify(record).slice(0, 200)}`
              )
            }
            if (ack === undefined) summary.sessionUnackedDurable++
            at++
          }
          for (const op of left) check(!acked.has(op.j), () => `acknowledged ${op.op} ${op.j} is not in the journal`)
          complete = left.size === 0
        }
        check(at === rest.length, () => `${rest.length - at} records after the child's last operation: ${JSON.stringify(rest[at]).slice(0, 200)}`)
        const present = new Set<number>()
        for (const r of rest) if (r.event._tag === "entry.appended") present.add((r.event.payload as { j: number }).j)
        for (const op of begun) check(!acked.has(op.j) || op.op !== "append" || present.has(op.j), () => `acknowledged append ${op.j} is missing`)

        // An independent fold of the raw records: entries, branch heads, the active branch.
        const parent = new Map<number, number>()
        const entryBranch = new Map<number, string>()
        const heads = new Map<string, number>([["main", 0]])
        let active = "main"
        for (const r of view.records) {
          const e: Event = r.event
          if (e._tag === "entry.appended") {
            check(heads.get(e.branch) === e.parentId, () => `entry ${r.position} extends ${e.branch} at ${e.parentId} but its head is ${heads.get(e.branch)}`)
            parent.set(r.position, e.parentId)
            entryBranch.set(r.position, e.branch)
            heads.set(e.branch, r.position)
          } else if (e._tag === "branch.forked") {
            check(!heads.has(e.branch) && (e.from === 0 || parent.has(e.from)), () => `bad fork at ${r.position}: ${JSON.stringify(e)}`)
            heads.set(e.branch, e.from)
          } else if (e._tag === "branch.switched") {
            check(heads.has(e.branch), () => `switch to a missing branch at ${r.position}`)
            active = e.branch
          }
        }
        const pathTo = (head: number) => {
          const ids: Array<number> = []
          for (let id = head; id !== 0; id = parent.get(id) as number) {
            check(parent.has(id), () => `${id} is not an entry`)
            ids.push(id)
          }
          return ids.reverse()
        }
        for (const a of begun) {
          const ack = acked.get(a.j)
          if (ack !== undefined && a.op === "append") ackedEntries.push({ j: a.j, id: ack.id, branch: a.name })
          if (ack !== undefined && a.op === "fork") {
            check(heads.has(a.name), () => `acknowledged fork ${a.name} does not exist`)
            check(a.from === 0 || pathTo(heads.get(a.name) as number).includes(a.from), () => `branch ${a.name} no longer descends from ${a.from}`)
          }
        }

        // The Session API, as a reader and then as a writer (replay): the same tree as the fold, and
        // every acknowledged entry of this folder on its branch (session.path) with its payload.
        const ackedBranches = [...new Set(ackedEntries.map((a) => a.branch))]
        const sessionView = (writer: boolean, target: string) =>
          runScoped(
            Effect.gen(function* () {
              const session = yield* Session.openFile(target, { owner: "verifier", writer, create: false })
              const paths = new Map<string, Map<number, unknown>>()
              for (const branch of ackedBranches) {
                const entries = yield* session.path(branch)
                paths.set(branch, new Map(entries.map((x) => [x.id, x.payload])))
              }
              const tree = session.tree()
              return {
                branches: session.branches().map((b) => [b.name, b.head] as const),
                active: session.activeBranch(),
                pathIds: [...heads.values()].map((head) => tree.pathTo(head)),
                paths
              }
            })
          )
        const checkSession = async (writer: boolean, target: string) => {
          const what = writer ? "the session reopened as a writer" : "the session opened for reading"
          let got: Awaited<ReturnType<typeof sessionView>>
          try {
            got = await sessionView(writer, target)
          } catch (e) {
            check(false, `${what} fails after a kill: ${String(e)}`)
            throw e
          }
          check(
            sameJson([...got.branches].sort(), [...heads].sort()),
            () => `${what} has branches ${JSON.stringify(got.branches)}, the journal ${JSON.stringify([...heads])}`
          )
          check(got.active === active, () => `${what} has active branch ${got.active}, the journal ${active}`)
          check(sameJson(got.pathIds, [...heads.values()].map(pathTo)), () => `${what} has different branch paths than the journal`)
          for (const a of ackedEntries) {
            check(entryBranch.get(a.id) === a.branch, () => `acknowledged entry ${a.id} (append ${a.j}) is not an entry of ${a.branch} in the journal`)
            const onPath = got.paths.get(a.branch) as Map<number, unknown>
            check(onPath.has(a.id), () => `${what}: acknowledged entry ${a.id} (append ${a.j}) is not on branch ${a.branch}`)
            check(sameJson(onPath.get(a.id), sessionPayload(a.j)), () => `${what}: entry ${a.id} has the wrong payload`)
          }
          summary.entriesChecked += ackedEntries.length
          summary.branchesChecked += ackedBranches.length
        }
        await checkSession(false, dir)
        const target = inPlace ? dir : `${dir}.copy`
        if (!inPlace) fs.cpSync(dir, target, { recursive: true })
        try {
          await checkSession(true, target)
        } finally {
          if (!inPlace) fs.rmSync(target, { recursive: true, force: true })
        }
        if (inPlace) {
          // The verifier's writer took a lease and suspended on close: that is the next child's starting point.
          leases++
          const after = await openJournal(dir, false, view.records.length + 1)
          const added = after.records.map((r) => r.event._tag)
          check(sameJson(added, ["lease.acquired", "session.suspended"]), () => `the verifier's writer appended ${JSON.stringify(added)}`)
          base = [...view.records, ...after.records]
        } else base = view.records
        summary.maxSegmentFiles = Math.max(summary.maxSegmentFiles, countSegments(dir))
        nextJ = Math.max(nextJ, ...begun.map((o) => o.j + 1))
      }
    } catch (e) {
      failed = true
      throw e
    } finally {
      summary.ms.session = Date.now() - started
    }
    expect(summary.sessionKills).toBe(KILLS_SESSION)
  }, 60_000)
})
