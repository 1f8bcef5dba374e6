/**
 * Which model the example agent talks to: `--model`, else the first API key
 * found (ANTHROPIC_API_KEY, then OPENAI_API_KEY), else the offline scripted
 * model. A missing key is a line of explanation, never a crash.
 *
 * When to use: `chooseModel(flag, process.env)` in the CLI; the result says
 * what was chosen and why (`notice`), for the CLI to print.
 *
 * Details: KEEL_MODEL overrides the model id of a real provider (defaults:
 * `defaultModels`). The SDK adapters are imported only when chosen, so the
 * offline path never loads them (a faster start, and no network code).
 *
 * Gotcha: adapters never read the environment (Model.ts); this module is the
 * one place of the example that does.
 */
import type { ModelShape } from "../../src/model/Model.ts"
import * as ScriptedModel from "../../src/model/ScriptedModel.ts"
import { demoScript } from "./demoScript.ts"

export type ModelChoice = "scripted" | "anthropic" | "openai"

export const defaultModels = { anthropic: "claude-sonnet-4-5", openai: "gpt-5" } as const

export interface ChosenModel {
  readonly model: ModelShape
  readonly kind: ModelChoice
  /** What to tell the user about the choice (e.g. the offline fallback), or undefined. */
  readonly notice: string | undefined
}

const offlineHint = "set ANTHROPIC_API_KEY (or OPENAI_API_KEY) to talk to a real model, or pass --model anthropic|openai"

/** The offline model: the demo script, streamed in small chunks so that it looks like a model. */
export const scripted = (): ModelShape => ScriptedModel.make(demoScript, { name: "scripted (offline)", chunkChars: 24, chunkDelayMs: 4 })

export async function chooseModel(flag: ModelChoice | undefined, env: NodeJS.ProcessEnv): Promise<ChosenModel> {
  const anthropicKey = env.ANTHROPIC_API_KEY?.trim() || undefined
  const openaiKey = env.OPENAI_API_KEY?.trim() || undefined
  const wanted = flag ?? (anthropicKey !== undefined ? "anthropic" : openaiKey !== undefined ? "openai" : "scripted")
  if (wanted === "anthropic" && anthropicKey !== undefined) {
    const { make } = await import("../../src/model/AnthropicModel.ts")
    return { model: make({ apiKey: anthropicKey, model: env.KEEL_MODEL ?? defaultModels.anthropic }), kind: "anthropic", notice: undefined }
  }
  if (wanted === "openai" && openaiKey !== undefined) {
    const [{ make }, { createOpenAI }] = await Promise.all([import("../../src/model/AiSdkModel.ts"), import("@ai-sdk/openai")])
    return { model: make(createOpenAI({ apiKey: openaiKey })(env.KEEL_MODEL ?? defaultModels.openai)), kind: "openai", notice: undefined }
  }
  const notice =
    wanted === "scripted"
      ? flag === "scripted"
        ? undefined
        : `No API key found: using the offline scripted model (${offlineHint}).`
      : `--model ${wanted} needs ${wanted === "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"}, which is not set: using the offline scripted model instead.`
  return { model: scripted(), kind: "scripted", notice }
}
