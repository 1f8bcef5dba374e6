/**
 * The agent loop (design §2, §3): a run answers one user entry with turns of
 * the model and the tool calls they propose, until the model answers, the
 * run is cancelled, fails, or runs out of time.
 *
 * When to use: `Agent.make(session, { model, tools })`, then `agent.run(prompt)`
 * for each user message, and `agent.resume` after opening a session that a
 * crash left with a run unfinished.
 *
 * Details: every step is a journal record, and the run's state is the fold of
 * the journal (AgentRuns), so the loop below is a function of that state:
 *   thinking → ask the model for turn n+1 (never for a turn in the journal:
 *              NoReaskInv), journal the turn with its calls in one batch and
 *              wait until it is durable (TurnWalInv);
 *   acting   → ask a person about calls that need it (waiting), then run the
 *              calls through the executor (its own WAL per attempt);
 *   final    → the outcome.
 * A crash anywhere leaves a journal from which `resume` goes on: calls in
 * doubt are resolved by the executor's rules, never run twice blindly.
 * Budgets (turns, tokens, wall clock) are journaled with the run, so a resumed
 * run keeps its deadline. A heartbeat ticks while a run is active; a model
 * call without progress for `modelStallMs` ends the run `timedOut`.
 *
 * Gotcha: interrupting the fiber running `run`/`resume` is how to cancel;
 * the interruption waits until `agent.run.cancelled` is durable.
 *
 * @example
 *   const agent = yield* Agent.make(session, { model: ScriptedModel.make([{ text: "hi" }]), tools: [] })
 *   const outcome = yield* agent.run("hello")   // { state: "done", text: "hi", … }
 */
import { Clock, Duration, Effect, Fiber, Option, Schema, Semaphore } from "effect"
import * as Approvals from "../authority/Approvals.ts"
import type { AgentEvent, RunBudget } from "../Event.ts"
import { assert } from "../internal/assert.ts"
import type { JournalReadError } from "../journal/JournalError.ts"
import { Limits } from "../Limits.ts"
import { isMalformed, type ModelRequest, type ModelShape, type ModelTurn, type ToolSpec } from "../model/Model.ts"
import type { ModelError } from "../model/ModelError.ts"
import { retrying } from "../model/Retry.ts"
import type { Session, WriteError } from "../session/Session.ts"
import type { RunRefused, ToolCallRefused, UnknownBranch, UnknownEntry } from "../session/SessionError.ts"
import * as Executor from "../toolcall/Executor.ts"
import * as Tool from "../toolcall/Tool.ts"
import type { Call } from "../toolcall/ToolCalls.ts"
import { Trace } from "../trace/Trace.ts"
import { finalStates } from "./AgentMachine.ts"
import { isSettled, type Run } from "./AgentRuns.ts"
import type { AgentOptions, AgentStatus, AgentUpdate, Question, RunOutcome } from "./AgentTypes.ts"
import { assemble, assistantEntry, userEntry } from "./Context.ts"

export type { AgentOptions, AgentStatus, AgentUpdate, Answer, Question, RunOutcome } from "./AgentTypes.ts"

/** A run is unfinished (found on open, or still going): resume it before starting another. */
export class AgentBusy extends Schema.TaggedError<AgentBusy>()("AgentBusy", {
  runId: Schema.String,
  state: Schema.String
}) {
  override get message(): string {
    return `run ${this.runId} is unfinished (${this.state}): resume it first`
  }
}

export type AgentError = WriteError | ToolCallRefused | RunRefused | JournalReadError | UnknownBranch | UnknownEntry | AgentBusy

export interface Agent {
  /** Appends `prompt` as a user entry on the active branch and runs the agent until the run ends. */
  readonly run: (prompt: string) => Effect.Effect<RunOutcome, AgentError>
  /** Goes on with the run a crash left unfinished; undefined when there is none. */
  readonly resume: Effect.Effect<RunOutcome | undefined, AgentError>
  /** The run now: state, branch, call running, last heartbeat, counts. */
  readonly status: () => AgentStatus
  /** Updates for a UI, in order; returns the unsubscribe. A listener that throws is dropped. */
  readonly subscribe: (listener: (update: AgentUpdate) => void) => () => void
}

export const defaultBudget: RunBudget = {
  turnsMax: 50,
  toolCallsPerTurnMax: 16,
  wallClockMsMax: 30 * 60 * 1000,
  tokensMax: 2_000_000
}

/** A run record the machine refuses here is a bug of the loop, not an expected error. */
const recordRunOrDie = <A, E>(effect: Effect.Effect<A, E | RunRefused>): Effect.Effect<A, Exclude<E, RunRefused>> =>
  effect.pipe(Effect.catchIf((e): e is RunRefused => (e as { _tag?: string })._tag === "RunRefused", Effect.die)) as Effect.Effect<A, Exclude<E, RunRefused>>

const isRecord = (x: unknown): x is { readonly [key: string]: unknown } => typeof x === "object" && x !== null && !Array.isArray(x)

/** Why a run may not start calls or ask people any more (spec: Exhaust). */
interface Spent {
  readonly kind: "wallClock" | "tokens"
  readonly message: string
}

/** How a model call ended other than with a turn. */
type AskFailure = { readonly _tag: "model"; readonly error: ModelError } | { readonly _tag: "stalled" } | { readonly _tag: "wallClock" }

export const make = (session: Session, options: AgentOptions): Effect.Effect<Agent> =>
  Effect.sync(() => {
    const tools = Executor.registry(options.tools, options.authority)
    const specs: ReadonlyArray<ToolSpec> = options.tools.map((t) => {
      const d = Tool.describe(t)
      return { name: d.name, description: d.description, inputSchema: d.inputSchema as ToolSpec["inputSchema"] }
    })
    const budget: RunBudget = { ...defaultBudget, ...options.budget }
    // One question to a person at a time: the run waits on one call (the Agent machine's `awaiting`).
    const asking = Semaphore.makeUnsafe(1)
    const heartbeatMs = options.heartbeatMs ?? 1000
    const stallMs = Math.min(options.modelStallMs ?? 120_000, Limits.modelStallMsMax)
    const listeners = new Set<(update: AgentUpdate) => void>()
    /** Runs this process has seen out of budget (traced once each). */
    const exhausted = new Set<string>()
    const live: { runId: string | undefined; currentCall: AgentStatus["currentCall"]; lastHeartbeat: number | undefined; progress: number } = {
      runId: undefined,
      currentCall: undefined,
      lastHeartbeat: undefined,
      progress: 0
    }

    const emit = (update: AgentUpdate): void => {
      for (const listener of listeners) {
        try {
          listener(update)
        } catch {
          listeners.delete(listener)
        }
      }
    }

    const model: ModelShape = retrying(options.model, options.modelRetry, (error, delayMs) => {
      // A retry is progress: the watchdog must not call a model stalled while it waits out a rate limit.
      live.progress++
      if (live.runId !== undefined) emit({ _tag: "modelRetry", runId: live.runId, error, delayMs })
    })

    const runOf = (runId: string): Run => {
      const run = session.runs().get(runId)
      assert(run !== undefined, "OneTerminalInv", `no run ${runId}`)
      return run
    }

    const callOf = (callId: string): Call => Executor.current(session, callId)

    const runOptions: Executor.RunOptions = {
      concurrency: options.concurrency ?? 4,
      onStart: (call, attempt, since) => {
        live.currentCall = { callId: call.callId, tool: call.tool, since }
        if (live.runId !== undefined) emit({ _tag: "toolCallStarted", runId: live.runId, callId: call.callId, tool: call.tool, input: call.input, attempt })
      }
    }

    /** Journals the end of a run (only once nothing is pending: the loop settles first). */
    const end = (build: (time: number) => AgentEvent): Effect.Effect<void, AgentError> => session.recordRun(build).pipe(Effect.asVoid)

    const outcomeOf = (run: Run): Effect.Effect<RunOutcome, AgentError> =>
      Effect.gen(function* () {
        assert(run.end !== undefined, "OneTerminalInv", `run ${run.runId} is ${run.state} without an end record`)
        const last = run.lastTurnEntryId === 0 ? undefined : yield* session.entry(run.lastTurnEntryId)
        const payload = last?.payload
        const text = isRecord(payload) && typeof payload.text === "string" ? payload.text : ""
        return { runId: run.runId, state: run.end.state, reason: run.end.reason, message: run.end.message, text, turns: run.turns }
      })

    // ---------------------------------------------------------------------------------------------
    // thinking: one model turn

    const think = (run: Run): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        const elapsed = (yield* Clock.currentTimeMillis) - run.startedAt
        const spent = yield* budgetSpent(run)
        if (spent?.kind === "wallClock") {
          return yield* end((time) => ({ _tag: "agent.run.timedOut", runId: run.runId, reason: "wallClock", message: spent.message, time }))
        }
        if (run.turns >= run.budget.turnsMax) {
          return yield* end((time) => ({
            _tag: "agent.run.failed",
            runId: run.runId,
            reason: "turnsExhausted",
            message: `the model used all ${run.budget.turnsMax} turns of the run without answering`,
            time
          }))
        }
        if (spent?.kind === "tokens") {
          return yield* end((time) => ({ _tag: "agent.run.failed", runId: run.runId, reason: "tokensExhausted", message: spent.message, time }))
        }
        const context = yield* assemble(session, run.branch, run.entryId, options.contextCharsMax)
        const request: ModelRequest = {
          system: options.system ?? "",
          messages: context.messages,
          tools: specs,
          maxOutputTokens: options.maxOutputTokens ?? 4096
        }
        const turn = run.turns + 1
        emit({ _tag: "turnStarted", runId: run.runId, turn, attempt: 1 })
        const tracer = yield* Effect.serviceOption(Trace)
        if (Option.isSome(tracer)) tracer.value.emit({ spec: "Agent", action: "AskModel", args: { run: run.runId, turn } })
        const asked = yield* ask(request, run.runId, turn, run.budget.wallClockMsMax - elapsed)
        if (asked._tag === "Failure") return yield* failRun(run.runId, asked.failure)
        yield* record(run, turn, asked.turn)
      })

    /** The model call, watched: no progress for `stallMs` is a stall; the run's remaining wall clock bounds it. */
    const ask = (
      request: ModelRequest,
      runId: string,
      turn: number,
      remainingMs: number
    ): Effect.Effect<{ readonly _tag: "Success"; readonly turn: ModelTurn } | { readonly _tag: "Failure"; readonly failure: AskFailure }> => {
      const call = model
        .turn(request, (progress) => {
          live.progress++
          if (progress._tag === "textDelta") emit({ _tag: "textDelta", runId, turn, text: progress.text })
        })
        .pipe(Effect.mapError((error): AskFailure => ({ _tag: "model", error })))
      const watchdog = Effect.gen(function* () {
        for (;;) {
          const seen = live.progress
          yield* Effect.sleep(Duration.millis(stallMs))
          if (live.progress === seen) return yield* Effect.fail<AskFailure>({ _tag: "stalled" })
        }
      })
      return Effect.raceFirst(call, watchdog).pipe(
        Effect.timeoutOrElse({ duration: Duration.millis(Math.max(1, remainingMs)), orElse: () => Effect.fail<AskFailure>({ _tag: "wallClock" }) }),
        Effect.match({ onSuccess: (t) => ({ _tag: "Success", turn: t }) as const, onFailure: (failure) => ({ _tag: "Failure", failure }) as const })
      )
    }

    const failRun = (runId: string, failure: AskFailure): Effect.Effect<void, AgentError> =>
      end((time): AgentEvent => {
        switch (failure._tag) {
          case "stalled":
            return { _tag: "agent.run.timedOut", runId, reason: "modelStalled", message: `the model showed no progress for ${stallMs} ms`, time }
          case "wallClock":
            return { _tag: "agent.run.timedOut", runId, reason: "wallClock", message: "the run's wall-clock budget ran out during a model call", time }
          case "model":
            return failure.error._tag === "ModelContextTooLong"
              ? { _tag: "agent.run.failed", runId, reason: "contextTooLong", message: failure.error.message, time }
              : { _tag: "agent.run.failed", runId, reason: "model", message: `${failure.error._tag}: ${failure.error.message}`, time }
        }
      })

    /** Journals the turn with its calls (one batch, durable before any call starts), then rejects the calls that can never run. */
    const record = (run: Run, turn: number, modelTurn: ModelTurn): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        const calls = modelTurn.toolCalls.map((c, k) => ({
          callId: `${run.runId}_t${turn}_c${k + 1}`,
          tool: c.name,
          input: isMalformed(c) ? c.malformed : c.input
        }))
        const payload = { text: modelTurn.text, model: model.name, stopReason: modelTurn.stopReason }
        const { entry } = yield* session.propose(assistantEntry, payload, calls, {
          turn: {
            runId: run.runId,
            turn,
            inputTokens: Math.max(0, Math.round(modelTurn.usage.inputTokens)),
            outputTokens: Math.max(0, Math.round(modelTurn.usage.outputTokens)),
            final: calls.length === 0
          }
        })
        emit({ _tag: "turnRecorded", runId: run.runId, turn, entryId: entry.id, text: modelTurn.text, calls })
        for (const [k, proposed] of modelTurn.toolCalls.entries()) {
          const call = callOf(calls[k]?.callId ?? "")
          if (isMalformed(proposed)) {
            yield* Executor.reject(session, call, "invalidInput", `the arguments are not a JSON object (${proposed.error}); nothing ran`)
          } else if (k >= run.budget.toolCallsPerTurnMax) {
            yield* Executor.reject(session, call, "error", `not run: a turn may propose at most ${run.budget.toolCallsPerTurnMax} tool calls`)
          } else continue
          emit({ _tag: "toolCallFinished", runId: run.runId, call: callOf(call.callId) })
        }
      })

    // ---------------------------------------------------------------------------------------------
    // acting: approvals, then the calls

    const act = (run: Run): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        const spent = yield* budgetSpent(run)
        if (spent !== undefined) {
          // Out of budget (spec: Exhaust): no call starts and nobody is asked any more; the turn is settled and `think` ends the run.
          yield* settleUnstarted(run.runId, spent.message)
          for (const callId of runOf(run.runId).pending) {
            if (callOf(callId).state === "inDoubt") yield* Executor.resolveInDoubt(session, tools, callId, runOptions)
          }
          return
        }
        const onApproval = (call: Call) => askAbout(run.runId, call)
        const options_: Executor.RunOptions = { ...runOptions, onApproval }
        yield* Effect.forEach(
          run.pending,
          (callId) => {
            const call = callOf(callId)
            const done = (c: Call) =>
              Effect.sync(() => {
                if (live.currentCall?.callId === c.callId) live.currentCall = undefined
                emit({ _tag: "toolCallFinished", runId: run.runId, call: c })
              })
            switch (call.state) {
              case "proposed":
                return Executor.runCall(session, tools, callId, options_).pipe(Effect.tap(done))
              case "awaitingApproval":
                return Executor.continueApproval(session, tools, callId, options_).pipe(Effect.tap(done))
              case "authorized":
              case "approved":
                return Executor.startApproved(session, tools, callId, options_).pipe(Effect.tap(done))
              case "inDoubt":
                return Executor.resolveInDoubt(session, tools, callId, options_).pipe(Effect.tap(done))
              case "failed":
                return Executor.retryCall(session, tools, callId, options_).pipe(Effect.tap(done))
              default:
                assert(false, "PairingInv", `call ${callId} of run ${run.runId} is ${call.state} while the run acts`)
            }
          },
          { concurrency: options.concurrency ?? 4 }
        )
        const after = runOf(run.runId)
        assert(
          after.pending.every((id) => isSettled(callOf(id))) && after.pending.length === 0,
          "TerminalSettledInv",
          `run ${run.runId} acted and calls are still pending`
        )
      })

    /** Why the run may not start calls any more (wall clock or tokens spent), or undefined; traced once per run (spec: Exhaust). */
    const budgetSpent = (run: Run): Effect.Effect<Spent | undefined> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const why: Spent | undefined =
          now - run.startedAt >= run.budget.wallClockMsMax
            ? { kind: "wallClock", message: `the run's wall-clock budget of ${run.budget.wallClockMsMax} ms is spent` }
            : run.inputTokens + run.outputTokens >= run.budget.tokensMax
              ? { kind: "tokens", message: `the run used ${run.inputTokens + run.outputTokens} tokens of its budget of ${run.budget.tokensMax}` }
              : undefined
        if (why !== undefined && !exhausted.has(run.runId)) {
          exhausted.add(run.runId)
          const tracer = yield* Effect.serviceOption(Trace)
          if (Option.isSome(tracer)) tracer.value.emit({ spec: "Agent", action: "Exhaust", args: { run: run.runId } })
        }
        return why
      })

    /**
     * A call awaits approval (its capability demands one): the run waits,
     * durably, and a person is asked through `ask`; their answer is journaled
     * (agent.run.answered) and applied as a decision (Approvals). A decision
     * made elsewhere (the API) ends the wait as well; the executor interrupts
     * this at the deadline. One question at a time: the run waits on one call.
     */
    const askAbout = (runId: string, call: Call): Effect.Effect<void, Executor.ExecutorError> =>
      asking.withPermits(1)(
        Effect.gen(function* () {
          const run = runOf(runId)
          const request = call.approval
          assert(request !== undefined, "AuthorityInv", `call ${call.callId} awaits approval without a request`)
          if (callOf(call.callId).state !== "awaitingApproval") return
          // Past the deadline nobody is asked any more (spec: Wait needs the budget): the request is withdrawn.
          const spent = yield* budgetSpent(run)
          if (spent !== undefined) return yield* Approvals.withdraw(session, call.callId, spent.message)
          // Answered before a restart that lost the decision: nobody is asked twice (spec: one question per call). A no
          // stands; a yes cannot be applied again (the fold keeps the answer, not who gave it, and only an approver's
          // decision counts): the request is withdrawn, and the model may propose the call again.
          const given = run.answers[call.callId]
          if (given !== undefined) {
            const why = given === "no" ? "the person asked said no" : "the yes was lost in a restart before it was recorded; propose the call again"
            return yield* Approvals.withdraw(session, call.callId, why)
          }
          const question: Question = {
            runId,
            callId: call.callId,
            tool: call.tool,
            input: call.input,
            text: `Run ${call.tool} ${JSON.stringify(call.input).slice(0, 500)}?`,
            approvers: request.approvers,
            deadline: request.deadline
          }
          if (!(run.state === "waiting" && run.awaiting === call.callId)) {
            yield* recordRunOrDie(session.recordRun((time) => ({ _tag: "agent.run.waiting", runId, forCall: call.callId, question: question.text, time })))
          }
          emit({ _tag: "waiting", runId, question })
          const ask = options.ask
          const person =
            ask === undefined
              ? Effect.never
              : Effect.gen(function* () {
                  const answer = yield* ask(question)
                  // The answer first (the run stops waiting), then the decision (which may settle the call).
                  yield* recordRunOrDie(
                    session.recordRun((time) => ({
                      _tag: "agent.run.answered",
                      runId,
                      forCall: call.callId,
                      answer: answer.approve ? "yes" : "no",
                      by: answer.by,
                      time
                    }))
                  )
                  // A yes that comes after the run's deadline starts nothing (spec: StartCall needs the budget).
                  const late = yield* budgetSpent(runOf(runId))
                  if (late !== undefined) return yield* Approvals.withdraw(session, call.callId, late.message)
                  const decided = answer.approve
                    ? Approvals.approve(session, call.callId, answer.by, { argsHash: request.argsHash })
                    : Approvals.reject(session, call.callId, answer.by, answer.note ?? "declined")
                  // A decision that does not count (not an approver, too late) is journaled as ignored; the wait goes on.
                  yield* decided.pipe(
                    Effect.catchTag("ApprovalIgnored", () => Effect.void),
                    Effect.catchTag("ApprovalUnknownCall", () => Effect.void)
                  )
                  yield* Approvals.awaitDecision(session, call.callId)
                })
          // Nor past the run's wall-clock deadline (spec: the run winds down): then the request is withdrawn.
          const now = yield* Clock.currentTimeMillis
          const deadline = Effect.sleep(Duration.millis(Math.max(1, run.startedAt + run.budget.wallClockMsMax - now))).pipe(
            Effect.andThen(budgetSpent(runOf(runId))),
            Effect.flatMap((why) => Approvals.withdraw(session, call.callId, why?.message ?? "the run's wall-clock budget is spent"))
          )
          yield* Effect.raceFirst(Effect.raceFirst(person, Approvals.awaitDecision(session, call.callId)), deadline)
          // A yes made durable only after the run's deadline starts nothing either (spec: StartCall needs the budget).
          const decided = callOf(call.callId)
          if (decided.state === "approved") {
            const spentNow = yield* budgetSpent(runOf(runId))
            if (spentNow !== undefined) {
              yield* Executor.reject(session, decided, "error", `not run: ${spentNow.message}`)
              emit({ _tag: "toolCallFinished", runId, call: callOf(call.callId) })
            }
          }
        })
      )

    /** Rejects (before any start) the calls of the run's turn that have not started, and withdraws its approval requests. */
    const settleUnstarted = (runId: string, why: string): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        for (const callId of runOf(runId).pending) {
          const call = callOf(callId)
          if (call.state === "proposed" || call.state === "authorized" || call.state === "approved") yield* declined(runId, call, why)
          else if (call.state === "awaitingApproval") yield* Approvals.withdraw(session, callId, why)
          else if (call.state === "failed") yield* Executor.abandonRetry(session, callId)
        }
      })

    const declined = (runId: string, call: Call, why: string): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        yield* Executor.reject(session, call, "error", `not run: ${why}`)
        emit({ _tag: "toolCallFinished", runId, call: callOf(call.callId) })
      })

    // ---------------------------------------------------------------------------------------------
    // cancellation: settle every call of the turn, then the end record

    const cancel = (runId: string, reason: string): Effect.Effect<void, AgentError> =>
      Effect.gen(function* () {
        const run = session.runs().get(runId)
        if (run === undefined || finalStates.has(run.state)) return
        // A call in doubt (found after a crash) keeps its doubt for the next resume: it is resolved, never guessed.
        yield* settleUnstarted(runId, `the run was cancelled (${reason})`)
        if (runOf(runId).pending.length > 0) return
        yield* session.recordRun((time) => ({ _tag: "agent.run.cancelled", runId, reason, time }))
      })

    // ---------------------------------------------------------------------------------------------
    // the loop

    const drive = (runId: string, resumed: boolean): Effect.Effect<RunOutcome, AgentError> =>
      Effect.gen(function* () {
        live.runId = runId
        live.progress = 0
        emit({ _tag: "runStarted", runId, resumed })
        const branch = runOf(runId).branch
        if (session.activeBranch() !== branch) yield* session.switchTo(branch)
        const heartbeat = yield* Effect.forkChild(beat(runId))
        const outcome = yield* loop(runId).pipe(
          Effect.onInterrupt(() =>
            cancel(runId, "interrupted").pipe(
              // Calls the interruption ended (cancelled by the executor, or rejected unstarted) are finished too, for the UI.
              Effect.andThen(
                Effect.sync(() => {
                  const run = runOf(runId)
                  const entryCalls = run.lastTurnEntryId === 0 ? [] : session.calls().ofEntry(run.lastTurnEntryId)
                  for (const call of entryCalls) if (isSettled(call)) emit({ _tag: "toolCallFinished", runId, call })
                })
              ),
              Effect.andThen(Effect.suspend(() => (finalStates.has(runOf(runId).state) ? outcomeOf(runOf(runId)) : Effect.void))),
              Effect.tap((o) => Effect.sync(() => o !== undefined && emit({ _tag: "runEnded", outcome: o }))),
              Effect.ignore
            )
          ),
          Effect.ensuring(Fiber.interrupt(heartbeat))
        )
        emit({ _tag: "runEnded", outcome })
        return outcome
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            live.runId = undefined
            live.currentCall = undefined
          })
        )
      )

    const loop = (runId: string): Effect.Effect<RunOutcome, AgentError> =>
      Effect.gen(function* () {
        for (;;) {
          const run = runOf(runId)
          if (finalStates.has(run.state)) return yield* outcomeOf(run)
          if (run.state === "thinking") yield* think(run)
          else if (run.state === "acting" || run.state === "waiting") yield* act(run)
          else assert(false, "OneTerminalInv", `run ${runId} is ${run.state} in the loop`)
        }
      })

    const beat = (runId: string) =>
      Effect.gen(function* () {
        for (;;) {
          const at = yield* Clock.currentTimeMillis
          live.lastHeartbeat = at
          emit({ _tag: "heartbeat", runId, at, state: runOf(runId).state })
          yield* Effect.sleep(Duration.millis(heartbeatMs))
        }
      })

    const nextRunId = (): string => `run${session.runs().size + 1}`

    const agent: Agent = {
      run: (prompt) =>
        Effect.gen(function* () {
          const active = session.runs().active()
          if (active !== undefined) return yield* new AgentBusy({ runId: active.runId, state: active.state })
          const runId = nextRunId()
          yield* session.append(userEntry, { text: prompt }, { run: { runId, budget } })
          return yield* drive(runId, false)
        }),
      resume: Effect.suspend(() => {
        const active = session.runs().active()
        return active === undefined ? Effect.succeed(undefined) : drive(active.runId, true)
      }),
      status: () => {
        const runs = session.runs()
        const run = runs.active() ?? runs.all().at(-1)
        return {
          state: run?.state ?? "idle",
          runId: run?.runId,
          branch: session.activeBranch(),
          model: options.model.name,
          currentCall: live.currentCall,
          lastHeartbeat: live.lastHeartbeat,
          turns: run?.turns ?? 0,
          toolCalls: run?.toolCalls ?? 0,
          inputTokens: run?.inputTokens ?? 0,
          outputTokens: run?.outputTokens ?? 0
        }
      },
      subscribe: (listener) => {
        if (listeners.size >= Limits.agentListenersMax) throw new RangeError(`at most ${Limits.agentListenersMax} listeners`)
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      }
    }
    return agent
  })
