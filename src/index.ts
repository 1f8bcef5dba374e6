/**
 * Keel: an agent runtime with the discipline of a database. The public API;
 * re-exports only (design §8.1).
 */
export * as Event from "./Event.ts"
export { InvariantViolation } from "./internal/assert.ts"
export type { Durability } from "./journal/FileStore.ts"
export * as Journal from "./journal/Journal.ts"
export * as JournalError from "./journal/JournalError.ts"
export { MemoryStore } from "./journal/MemoryStore.ts"
export { Limits } from "./Limits.ts"
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
