// The child process of toolcalls.test.ts: an agent loop over a file session, killed with SIGKILL
// at a random moment. It loads its modules and says `ready`, reads its config (one JSON line on
// stdin), opens the session as the writer, resolves what the previous kill left (Recovery.recover),
// then proposes turns of 1–6 parallel tool calls of every semantics and runs them, until killed.
// The tools append every real execution to the ledger (ledger.ts), the ground truth of the world.
//
// Protocol (stdout, one line each, written synchronously to the pipe):
//   open <sessionId> <epoch> <inDoubt> <proposed>   the writer opened; calls found without an outcome
//   recovered <count>                               Recovery.recover returned
//   context <entries>                               session.context() after recovery
//   propose <turn> <calls>                          before propose
//   ran <turn>                                      runCalls returned
// Run by hand: node test/crash/toolcaller.ts, then type
//   {"dir":"/tmp/x","ledger":"/tmp/x.ledger","owner":"me","seed":1,"sabotage":""}
import { Effect, type Scope } from "effect"
import * as Session from "../../src/session/Session.ts"
import * as Executor from "../../src/toolcall/Executor.ts"
import * as Recovery from "../../src/toolcall/Recovery.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { allowAll } from "../support/authority.ts"
import { readConfig } from "./children.ts"
import { appendLedger, type CallInput, makeTools, type ToolCallerConfig, toolNames, toolTable } from "./ledger.ts"
import { between, emit, prng } from "./shared.ts"

const ms = (rng: () => number, max: number) => (rng() < 0.25 ? 0 : between(rng, 0, max))

/** One call's plan: its tool (every semantics), its timings and failures. */
function planCall(rng: () => number, n: number): { tool: string; input: CallInput } {
  const tool = toolNames[Math.floor(rng() * toolNames.length)] as string
  const rerunnable = (toolTable[tool]?.attemptsMax ?? 1) > 1
  const r = rng()
  return {
    tool,
    input: {
      n,
      before: [ms(rng, 10), ms(rng, 10), ms(rng, 10)],
      after: [ms(rng, 10), ms(rng, 10), ms(rng, 10)],
      fail: r < 0.7 ? 0 : r < 0.88 ? 1 : rerunnable && r < 0.96 ? 2 : 3,
      decline: !rerunnable && rng() < 0.1
    }
  }
}

const run = (config: ToolCallerConfig) =>
  Effect.gen(function* () {
    const rng = prng(config.seed)
    const tools = makeTools(config.ledger, config.sabotage)
    const registry = Executor.registry(tools, allowAll)
    const session = yield* Session.openFile(config.dir, { owner: config.owner })
    const unresolved = session.calls().unresolved()
    const inDoubt = unresolved.filter((c) => c.state === "inDoubt")
    emit(`open ${session.id} ${session.fence().epoch} ${inDoubt.length} ${unresolved.length - inDoubt.length}`)
    if (config.sabotage === "rerun-unsafe") {
      // Broken recovery: runs in-doubt compensatable/unsafe calls again, straight through the tool.
      for (const call of inDoubt) {
        const tool = tools.find((t) => t.name === call.tool) as Tool.AnyTool
        if (tool.semantics !== "compensatable" && tool.semantics !== "unsafe") continue
        const ctx = {
          callId: call.callId,
          idempotencyKey: Tool.idempotencyKey(session.id, call.callId),
          attempt: call.attempt,
          signal: new AbortController().signal
        }
        yield* Effect.ignore(tool.run(call.input, ctx))
      }
    }
    const recovered = config.sabotage === "skip-recover" ? [] : yield* Recovery.recover(session, registry)
    emit(`recovered ${recovered.length}`)
    if (config.sabotage !== "skip-recover") emit(`context ${(yield* session.context()).length}`)
    for (let turn = 0; ; turn++) {
      const count = between(rng, 1, 6)
      const calls = Array.from({ length: count }, (_, i) => ({ callId: `${config.owner}-${turn}-${i}`, ...planCall(rng, turn * 10 + i) }))
      emit(`propose ${turn} ${count}`)
      const { calls: proposed } = yield* session.propose("assistant", { owner: config.owner, turn }, calls)
      if (config.sabotage === "early-ledger") {
        // Broken WAL: the world sees the first attempt before its started record is durable.
        // (Only for the calls whose first attempt does reach the world: the tools skip that write.)
        yield* Effect.forEach(
          calls.filter((c) => (toolTable[c.tool]?.attemptsMax ?? 1) > 1 || (!c.input.decline && c.input.fail < 1)),
          (c) =>
            Effect.promise(() => appendLedger(config.ledger, { key: Tool.idempotencyKey(session.id, c.callId), callId: c.callId, attempt: 1, tool: c.tool }))
        )
      }
      yield* Executor.runCalls(
        session,
        registry,
        proposed.map((c) => c.callId)
      )
      emit(`ran ${turn}`)
      if (rng() < 0.3) yield* session.append("user", { owner: config.owner, turn, text: "go on" })
    }
  })

emit("ready")
const config = await readConfig<ToolCallerConfig>().catch(() => process.exit(0))
Effect.runPromise(Effect.scoped(run(config) as Effect.Effect<unknown, unknown, Scope.Scope>)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`toolcaller failed: ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : JSON.stringify(error)}\n`)
    process.exit(2)
  }
)
