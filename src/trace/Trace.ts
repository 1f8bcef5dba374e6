/**
 * Trace of TLA+ actions (design §6, trace validation as in CCF and etcd):
 * with tracing on, the runtime writes one event per step, named after the
 * spec's action (`Start`, `Succeed`, `Retry`, …) with its arguments; a
 * checker accepts a trace only if the model can take every step of it.
 *
 * Off by default: nothing is emitted unless a `Trace` service is provided
 * (`layerMemory` for tests, `layerNdjson(path)` for a file). Emitting is
 * synchronous so that a trace step is taken in the same tick as the journal
 * event it mirrors, keeping trace order = journal order.
 *
 * @example
 *   const steps: Array<Trace.Step> = []
 *   program.pipe(Effect.provide(Trace.layerMemory(steps)))
 */
import * as fs from "node:fs"
import { Context, Layer, type Schema } from "effect"

export interface Step {
  /** The spec whose action this is ("ToolCall", "Session"). */
  readonly spec: string
  /** The TLA+ action name. */
  readonly action: string
  /** The action's arguments, in implementation terms (the checker maps them to the model's). */
  readonly args: { readonly [key: string]: Schema.Json }
}

export interface TraceShape {
  readonly emit: (step: Step) => void
}

export class Trace extends Context.Service<Trace, TraceShape>()("keel/Trace") {}

/** Collects steps in an array (tests). */
export const layerMemory = (sink: Array<Step>): Layer.Layer<Trace> => Layer.succeed(Trace, { emit: (step) => void sink.push(step) })

/** Appends steps to an NDJSON file, one line each. */
export const layerNdjson = (path: string): Layer.Layer<Trace> =>
  Layer.succeed(Trace, {
    emit: (step) => fs.appendFileSync(path, `${JSON.stringify(step)}\n`)
  })

/** Reads an NDJSON trace back. */
export const readNdjson = (path: string): Array<Step> =>
  fs
    .readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Step)
