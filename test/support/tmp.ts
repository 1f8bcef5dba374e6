// Temporary folders for tests that touch real files; removed when the scope closes.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Schema } from "effect"

export const tempDir = (prefix = "keel-test-"): Effect.Effect<string, never, import("effect").Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** The only segment file of a journal folder (tests write less than one segment). */
export const segmentFile = (dir: string): string => {
  const names = fs
    .readdirSync(path.join(dir, "segments"))
    .filter((n) => n.endsWith(".seg"))
    .sort()
  return path.join(dir, "segments", names[names.length - 1] as string)
}

export const entry = (payload: Schema.Json, branch = "main", parentId = 0) =>
  ({ _tag: "entry.appended", branch, parentId, type: "msg", time: 0, payload }) as const
