// The child process of kill9.test.ts: appends to a file journal (or a session) until it is killed
// with SIGKILL. It loads its modules first and says `ready`, then reads its ChildConfig as one JSON
// line on stdin, so the parent can start the next child while it checks the last kill.
//
// Protocol (stdout, one line each, written synchronously to the pipe):
//   journal: open <head> <epoch> <tornOffset|-> <checkpointHead|->
//            lease <epoch> <position>
//            begin <k> <count>            before batch k is handed to the journal
//            ack <k> <firstPosition> <count>   once batch k is durable
//            checkpoint <head>
//   session: open <epoch> <leasePosition> <activeBranch>
//            begin <group> append <j> <branch> | begin <group> fork <j> <name> <from> | begin <group> switch <j> <name>
//            ack <group> append <j> <id> <parentId> | ack <group> fork <j> | ack <group> switch <j>
//            checkpoint <head>
// Run by hand: node test/crash/appender.ts, then type
//   {"mode":"journal","dir":"/tmp/x","owner":"me","seed":1,"start":1,"segmentBytesMax":0,"durability":"fsync"}
import { Effect, type Scope } from "effect"
import * as Journal from "../../src/journal/Journal.ts"
import * as Session from "../../src/session/Session.ts"
import { between, type ChildConfig, emit, journalEvent, prng, sessionPayload } from "./shared.ts"

const segmentOption = (config: ChildConfig) => (config.segmentBytesMax > 0 ? { segmentBytesMax: config.segmentBytesMax } : {})

/** Batches 1–4 events; 1–3 batches in flight (sequence now, wait for `durable` later) so group commit batches them. */
const runJournal = (config: ChildConfig) =>
  Effect.gen(function* () {
    const rng = prng(config.seed)
    const journal = yield* Journal.openFile(config.dir, { owner: config.owner, durability: config.durability, ...segmentOption(config) })
    const torn = journal.recovery.tornTail
    emit(`open ${journal.head()} ${journal.epoch()} ${torn === null ? "-" : torn.offset} ${journal.recovery.checkpoint?.head ?? "-"}`)
    let fence = yield* journal.acquireLease(config.owner)
    emit(`lease ${fence.epoch} ${fence.head}`)
    let k = config.start
    let window = 1
    const inflight: Array<{ k: number; first: number; count: number; durable: Effect.Effect<unknown, unknown> }> = []
    while (true) {
      if (rng() < 0.15) window = between(rng, 1, 3)
      if (inflight.length === 0 && rng() < 0.03) {
        yield* journal.checkpoint({ k })
        emit(`checkpoint ${journal.head()}`)
      }
      if (window === 1 && inflight.length === 0 && rng() < 0.5) {
        // The plain Effect API: append resolves once durable.
        const count = between(rng, 1, 4)
        const events = Array.from({ length: count }, (_, i) => journalEvent(k, i))
        emit(`begin ${k} ${count}`)
        const first = fence.head + 1
        fence = yield* journal.append(events, fence)
        emit(`ack ${k} ${first} ${count}`)
        k++
        continue
      }
      while (inflight.length < window) {
        const count = between(rng, 1, 4)
        const events = Array.from({ length: count }, (_, i) => journalEvent(k, i))
        emit(`begin ${k} ${count}`)
        const sequenced = journal.sequence(events, fence)
        if (!("durable" in sequenced)) return yield* Effect.fail(sequenced)
        inflight.push({ k, first: fence.head + 1, count, durable: sequenced.durable })
        fence = sequenced.fence
        k++
      }
      const oldest = inflight.shift() as (typeof inflight)[number]
      yield* oldest.durable
      emit(`ack ${oldest.k} ${oldest.first} ${oldest.count}`)
    }
  })

/** Session operations, one group at a time: a fork, a switch, or 1–3 concurrent appends on the active branch. */
const runSession = (config: ChildConfig) =>
  Effect.gen(function* () {
    const rng = prng(config.seed)
    const session = yield* Session.openFile(config.dir, { owner: config.owner, durability: config.durability, ...segmentOption(config) })
    emit(`open ${session.fence().epoch} ${session.fence().head} ${session.activeBranch()}`)
    let j = config.start
    for (let group = 0; ; group++) {
      const r = rng()
      const branches = session.branches()
      if (r < 0.1 && branches.length < 40) {
        const ids = session.tree().pathTo(yield* session.head())
        const from = ids.length === 0 || rng() < 0.15 ? 0 : (ids[Math.floor(rng() * ids.length)] as number)
        const name = `b${j}`
        emit(`begin ${group} fork ${j} ${name} ${from}`)
        yield* session.fork(from, name)
        emit(`ack ${group} fork ${j}`)
        j++
      } else if (r < 0.2) {
        const name = (branches[Math.floor(rng() * branches.length)] as { name: string }).name
        emit(`begin ${group} switch ${j} ${name}`)
        yield* session.switchTo(name)
        emit(`ack ${group} switch ${j}`)
        j++
      } else if (r < 0.23) {
        yield* session.checkpoint
        emit(`checkpoint ${session.fence().head}`)
      } else {
        const n = rng() < 0.35 ? between(rng, 2, 3) : 1
        const branch = session.activeBranch()
        const js = Array.from({ length: n }, (_, m) => j + m)
        for (const jj of js) emit(`begin ${group} append ${jj} ${branch}`)
        j += n
        yield* Effect.forEach(
          js,
          (jj) =>
            session
              .append("msg", sessionPayload(jj))
              .pipe(Effect.tap((entry) => Effect.sync(() => emit(`ack ${group} append ${jj} ${entry.id} ${entry.parentId}`)))),
          { concurrency: "unbounded" }
        )
      }
    }
  })

function readConfig(): Promise<ChildConfig> {
  return new Promise((resolve, reject) => {
    let buffer = ""
    process.stdin.setEncoding("utf8")
    process.stdin.on("data", (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf("\n")
      if (nl >= 0) {
        process.stdin.pause()
        resolve(JSON.parse(buffer.slice(0, nl)) as ChildConfig)
      }
    })
    process.stdin.on("end", () => reject(new Error("stdin closed before a config arrived")))
  })
}

emit("ready")
const config = await readConfig().catch(() => process.exit(0))
const program = config.mode === "journal" ? runJournal(config) : runSession(config)
Effect.runPromise(Effect.scoped(program as Effect.Effect<unknown, unknown, Scope.Scope>)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`appender failed: ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : JSON.stringify(error)}\n`)
    process.exit(2)
  }
)
