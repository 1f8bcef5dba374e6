// The child process of agent.test.ts: the agent loop over a file session (fsync), killed with
// SIGKILL at a random moment. It loads its modules and says `ready`, reads its config (one JSON
// line on stdin), opens the session as the writer, `agent.resume`s the run the previous kill left,
// then starts runs ("task <k>") until the session holds `config.runs` of them; then it waits to be
// killed, or (the last incarnation) exits.
//
// The model is a ScriptedModel whose script is a function of the request alone: the prompt names
// the task, the assistant messages since the prompt give the turn; each task takes 1–3 turns of
// 1–3 tool calls (readOnly `lookup`, idempotent `put`, unsafe `charge` with reconcile and `send`
// without), then answers. Before answering, the model appends one fsync'd line per call to the
// asks file (AskLine); the tools append one per real execution to the ledger (ledger.ts). Every
// unsafe call is approved (`ask` says yes after a short sleep), so it runs.
//
// Protocol (stdout, one line each, written synchronously to the pipe):
//   open <sessionId> <epoch> <activeRunId|-> <state|-> <turns> <runs>   the writer opened
//   resumed <runId|-> <state|-> <turns>                                  agent.resume returned
//   ran <runId> <state> <turns>                                          agent.run returned
//   final <json: [{ runId, state, turns, reason }]>                      every run is done (the live fold)
// Run by hand: node test/crash/agentrunner.ts, then type
//   {"dir":"/tmp/a","ledger":"/tmp/a.ledger","asks":"/tmp/a.asks","incarnation":0,"salt":1,"seed":1,"runs":3,"exit":true,"unsafePerTurnMax":3,"sabotage":""}
import { Effect, type Scope } from "effect"
import * as Agent from "../../src/agent/Agent.ts"
import * as Authority from "../../src/authority/Authority.ts"
import * as Caveat from "../../src/authority/Caveat.ts"
import type { ModelRequest, ModelShape } from "../../src/model/Model.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import * as Session from "../../src/session/Session.ts"
import * as Tool from "../../src/toolcall/Tool.ts"
import { readConfig } from "./children.ts"
import { type AgentRunnerConfig, type AskLine, appendJsonLine, appendLedger, type CallInput, makeTools, toolTable } from "./ledger.ts"
import { between, emit, prng } from "./shared.ts"

/** The tools the script proposes: one readOnly, one idempotent, two unsafe (with and without reconcile). */
const proposable = ["lookup", "put", "charge", "send"] as const

/** A seed from the script's salt, the task and the turn (0: the task's own choices). */
const mix = (salt: number, k: number, turn: number) => (salt ^ Math.imul(k + 1, 0x9e3779b1) ^ Math.imul(turn + 7, 0x85ebca6b)) >>> 0

/** The task a request is about and the turn it asks for: assistant messages since the task's prompt, plus one. */
function turnOf(request: ModelRequest): { readonly k: number; readonly turn: number } {
  const messages = request.messages
  let prompt = messages.length - 1
  while (prompt >= 0 && messages[prompt]?.role !== "user") prompt--
  const message = messages[prompt]
  const match = message?.role === "user" ? /^task (\d+)$/.exec(message.text) : null
  if (match === null) throw new Error(`the request has no "task <k>" prompt: ${JSON.stringify(messages).slice(0, 300)}`)
  const turn = messages.slice(prompt + 1).filter((m) => m.role === "assistant").length + 1
  return { k: Number(match[1]), turn }
}

const ms = (rng: () => number, max: number) => (rng() < 0.25 ? 0 : between(rng, 0, max))

/** The script: a deterministic function of the request (and the salt, the same for every incarnation). */
function script(salt: number, unsafePerTurnMax: number): ScriptedModel.Script {
  return (request) => {
    const { k, turn } = turnOf(request)
    const rng = prng(mix(salt, k, turn))
    const stallMs = rng() < 0.3 ? 0 : between(rng, 1, 12)
    const toolTurns = between(prng(mix(salt, k, 0)), 1, 3)
    const last = request.messages.at(-1)
    const errors = last?.role === "tool" ? last.results.filter((r) => r.isError).length : 0
    if (turn > toolTurns) return { text: `task ${k} is done (${turn - 1} turns of tools, ${errors} errors last)`, stallMs }
    const count = between(rng, 1, 3)
    let unsafe = 0
    const toolCalls = Array.from({ length: count }, (_, c) => {
      const pick = Math.floor(rng() * proposable.length)
      // Past the turn's unsafe calls: lookup instead of charge, put instead of send.
      const tool = proposable[toolTable[proposable[pick] as string]?.semantics === "unsafe" && unsafe >= unsafePerTurnMax ? pick - 2 : pick] as string
      const rerunnable = (toolTable[tool]?.attemptsMax ?? 1) > 1
      if (!rerunnable) unsafe++
      const r = rng()
      const input: CallInput = {
        n: k * 100 + turn * 10 + c,
        before: [ms(rng, 10), ms(rng, 10), ms(rng, 10)],
        after: [ms(rng, 10), ms(rng, 10), ms(rng, 10)],
        fail: r < 0.75 ? 0 : r < 0.9 ? 1 : rerunnable && r < 0.96 ? 2 : 3,
        decline: !rerunnable && rng() < 0.1
      }
      return { name: tool, input: { ...input } }
    })
    return { text: `task ${k}, turn ${turn}: ${count} calls`, toolCalls, stallMs }
  }
}

/** The scripted model, with one fsync'd ask line per call before it answers. */
function askingModel(config: AgentRunnerConfig, session: Session.Session): ModelShape {
  const scripted = ScriptedModel.make(script(config.salt, config.unsafePerTurnMax), { name: "scripted-crash" })
  let asked = 0
  return {
    name: scripted.name,
    turn: (request, onProgress) =>
      Effect.gen(function* () {
        const run = session.runs().active()
        const runId = run?.runId ?? ""
        const line: AskLine = { incarnation: config.incarnation, runId, turn: turnOf(request).turn, runTurn: (run?.turns ?? -1) + 1 }
        if (config.sabotage === "reask" && asked === 0 && line.turn > 1) {
          yield* Effect.promise(() => appendJsonLine(config.asks, { ...line, turn: line.turn - 1, runTurn: line.runTurn - 1 }))
        }
        asked++
        yield* Effect.promise(() => appendJsonLine(config.asks, line))
        const answer = yield* scripted.turn(request, onProgress)
        if (config.sabotage === "early-tool" && answer.toolCalls.length > 0) {
          // The world sees the first attempts of the turn's calls (named <runId>_t<turn>_c<k> by the loop) before
          // the turn is journaled; the tools skip that write (only for calls whose first attempt reaches the world).
          for (const [k, call] of answer.toolCalls.entries()) {
            const input = ("input" in call ? call.input : {}) as unknown as CallInput
            if ((toolTable[call.name]?.attemptsMax ?? 1) === 1 && (input.decline || input.fail >= 1)) continue
            const callId = `${runId}_t${line.turn}_c${k + 1}`
            const key = Tool.idempotencyKey(session.id, callId)
            yield* Effect.promise(() => appendLedger(config.ledger, { key, callId, attempt: 1, tool: call.name, incarnation: config.incarnation }))
          }
          yield* Effect.sleep(20)
        }
        return answer
      })
  }
}

const run = (config: AgentRunnerConfig) =>
  Effect.gen(function* () {
    const rng = prng(config.seed)
    const session = yield* Session.openFile(config.dir, { owner: `i${config.incarnation}`, durability: "fsync" })
    const active = session.runs().active()
    emit(`open ${session.id} ${session.fence().epoch} ${active?.runId ?? "-"} ${active?.state ?? "-"} ${active?.turns ?? 0} ${session.runs().size}`)
    // The same root key in every incarnation (from the run's salt): a resumed session verifies its calls with it.
    const seed = new Uint8Array(32)
    new DataView(seed.buffer).setUint32(0, config.salt >>> 0)
    const { authority } = yield* Authority.issue([Caveat.needsApproval(["crash-test"], { tools: ["charge", "send"] })], { seed })
    const agent = yield* Agent.make(session, {
      authority,
      model: askingModel(config, session),
      tools: makeTools(config.ledger, config.sabotage === "early-tool" ? "early-ledger" : "", config.incarnation),
      ask: () => Effect.sleep(ms(rng, 6)).pipe(Effect.as({ approve: true, by: "crash-test" }))
    })
    const resumed = yield* agent.resume
    emit(`resumed ${resumed?.runId ?? "-"} ${resumed?.state ?? "-"} ${resumed?.turns ?? 0}`)
    while (session.runs().size < config.runs) {
      const outcome = yield* agent.run(`task ${session.runs().size + 1}`)
      emit(`ran ${outcome.runId} ${outcome.state} ${outcome.turns}`)
    }
    const runs = session.runs().all()
    emit(`final ${JSON.stringify(runs.map((r) => ({ runId: r.runId, state: r.state, turns: r.turns, reason: r.end?.reason ?? "" })))}`)
    // Effect.never alone does not keep Node's event loop alive: an idle child would exit 0 before its kill.
    if (!config.exit) yield* Effect.sleep("1 hour").pipe(Effect.forever)
  })

emit("ready")
const config = await readConfig<AgentRunnerConfig>().catch(() => process.exit(0))
Effect.runPromise(Effect.scoped(run(config) as Effect.Effect<unknown, unknown, Scope.Scope>)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`agentrunner failed: ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : JSON.stringify(error)}\n`)
    process.exit(2)
  }
)
