/**
 * What the agent loop takes and gives: options, the status snapshot, the
 * update stream for UIs and the outcome of a run. The loop itself is in
 * Agent.ts.
 */
import type { Effect } from "effect"
import type { Authority } from "../authority/Authority.ts"
import type { RunBudget } from "../Event.ts"
import type { ModelShape } from "../model/Model.ts"
import type { ModelError } from "../model/ModelError.ts"
import type * as Tool from "../toolcall/Tool.ts"
import type { Call } from "../toolcall/ToolCalls.ts"
import type { RunState } from "./AgentMachine.ts"

/** A question to a person about one call that awaits approval (its capability demands one). */
export interface Question {
  readonly runId: string
  readonly callId: string
  readonly tool: string
  readonly input: unknown
  readonly text: string
  /** Who may approve: an answer by anyone else is journaled and ignored. */
  readonly approvers: ReadonlyArray<string>
  /** When the request expires (ms since the epoch, from the journal): then the call is rejected. */
  readonly deadline: number
}

export interface Answer {
  readonly approve: boolean
  /** Who answered ("terminal", a user name); journaled. */
  readonly by: string
  readonly note?: string
}

export interface AgentOptions {
  readonly model: ModelShape
  readonly tools: ReadonlyArray<Tool.AnyTool>
  /** The system prompt. */
  readonly system?: string
  /** Bounds of each run (defaults: see `defaultBudget`), journaled with the run. */
  readonly budget?: Partial<RunBudget>
  /** What the run's tool calls may do: every call is checked against it before it starts (no ambient authority). */
  readonly authority: Authority
  /**
   * Asks a person about a call that awaits approval; the answer is journaled and applied.
   * Without it, such a call waits for a decision through `Approvals` until its deadline (then it is expired: silence means no).
   */
  readonly ask?: (question: Question) => Effect.Effect<Answer>
  /** Characters of the branch shown to the model; older entries are left out (default Limits.contextCharsMax). */
  readonly contextCharsMax?: number
  /** Output tokens per turn (default 4096). */
  readonly maxOutputTokens?: number
  /** Interval of the heartbeat while a run is active (default 1000 ms). */
  readonly heartbeatMs?: number
  /** A model call with no progress for this long is stalled: the run ends `timedOut` (default 120 s). */
  readonly modelStallMs?: number
  /** Retries of retryable model errors (defaults: 5 attempts, 500 ms base, 30 s cap; `retry-after` honoured). */
  readonly modelRetry?: { readonly attemptsMax?: number; readonly baseMs?: number; readonly capMs?: number }
  /** Tool calls running at once within a turn (default 4). */
  readonly concurrency?: number
}

/** How a run ended; exactly one per run. */
export interface RunOutcome {
  readonly runId: string
  readonly state: "done" | "cancelled" | "failed" | "timedOut"
  /** Why (for done: "answered"). */
  readonly reason: string
  readonly message: string
  /** The model's last text. */
  readonly text: string
  readonly turns: number
}

export interface AgentStatus {
  readonly state: RunState
  readonly runId: string | undefined
  readonly branch: string
  readonly model: string
  /** The call running now, if any, and since when (ms since the epoch). */
  readonly currentCall: { readonly callId: string; readonly tool: string; readonly since: number } | undefined
  readonly lastHeartbeat: number | undefined
  readonly turns: number
  readonly toolCalls: number
  readonly inputTokens: number
  readonly outputTokens: number
}

/** What a UI sees, in order. */
export type AgentUpdate =
  | { readonly _tag: "runStarted"; readonly runId: string; readonly resumed: boolean }
  | { readonly _tag: "turnStarted"; readonly runId: string; readonly turn: number; readonly attempt: number }
  | { readonly _tag: "textDelta"; readonly runId: string; readonly turn: number; readonly text: string }
  | { readonly _tag: "modelRetry"; readonly runId: string; readonly error: ModelError; readonly delayMs: number }
  | {
      readonly _tag: "turnRecorded"
      readonly runId: string
      readonly turn: number
      readonly entryId: number
      readonly text: string
      readonly calls: ReadonlyArray<{ readonly callId: string; readonly tool: string; readonly input: unknown }>
    }
  | {
      readonly _tag: "toolCallStarted"
      readonly runId: string
      readonly callId: string
      readonly tool: string
      readonly input: unknown
      readonly attempt: number
    }
  | { readonly _tag: "toolCallFinished"; readonly runId: string; readonly call: Call }
  | { readonly _tag: "waiting"; readonly runId: string; readonly question: Question }
  | { readonly _tag: "heartbeat"; readonly runId: string; readonly at: number; readonly state: RunState }
  | { readonly _tag: "runEnded"; readonly outcome: RunOutcome }
