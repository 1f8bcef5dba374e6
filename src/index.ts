/**
 * Keel: an agent runtime with the discipline of a database. The public API;
 * re-exports only (design §8.1).
 */
export * as Agent from "./agent/Agent.ts"
export * as AgentMachine from "./agent/AgentMachine.ts"
export * as Event from "./Event.ts"
export { InvariantViolation } from "./internal/assert.ts"
export type { Durability } from "./journal/FileStore.ts"
export * as Journal from "./journal/Journal.ts"
export * as JournalError from "./journal/JournalError.ts"
export { MemoryStore } from "./journal/MemoryStore.ts"
export { Limits } from "./Limits.ts"
// The adapters for `ai` and `@anthropic-ai/sdk` are subpath exports (keel/model/ai-sdk, keel/model/anthropic): optional peers.
export * as Model from "./model/Model.ts"
export * as ModelError from "./model/ModelError.ts"
export * as RecordReplay from "./model/RecordReplay.ts"
export * as ModelRetry from "./model/Retry.ts"
export * as ScriptedModel from "./model/ScriptedModel.ts"
export * as Session from "./session/Session.ts"
export * as SessionError from "./session/SessionError.ts"
export * as SessionMachine from "./session/SessionMachine.ts"
export { drawTree, type TreeNode } from "./session/TreeView.ts"
export * as Executor from "./toolcall/Executor.ts"
export * as Recovery from "./toolcall/Recovery.ts"
export * as Saga from "./toolcall/Saga.ts"
export * as Tool from "./toolcall/Tool.ts"
export * as ToolCallMachine from "./toolcall/ToolCallMachine.ts"
export * as Trace from "./trace/Trace.ts"
