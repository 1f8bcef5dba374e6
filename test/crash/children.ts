// Child processes for the crash tests: a Node that runs .ts, spawned with piped stdio, its stdout
// collected line by line ("ready" marks a child that has loaded and waits for its config).
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, "../..")

/** A Node that runs .ts directly: the one running vitest if it strips types (≥ 22.18), else the project's Node 24. */
export function nodeBinary(): string {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath
  const local = path.join(repo, "node_modules", ".bin", "node")
  if (!fs.existsSync(local)) throw new Error(`${process.execPath} (${process.version}) cannot run .ts files and ${local} does not exist`)
  return local
}

// ---------------------------------------------------------------------------------------------
// Children

export interface Child {
  readonly proc: ChildProcess
  readonly lines: Array<string>
  readonly stderr: () => string
  readonly ready: Promise<void>
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  onLine: (() => void) | undefined
}

/** Spawns `script` as a child on a Node that runs .ts; lines it prints are collected, "ready" resolves `ready`. */
export function startChild(script: string, live: Set<ChildProcess>): Child {
  const proc = spawn(nodeBinary(), [script], {
    cwd: repo,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_COMPILE_CACHE: path.join(os.tmpdir(), "keel-crash-compile-cache") }
  })
  live.add(proc)
  const lines: Array<string> = []
  let partial = ""
  let err = ""
  let markReady: () => void = () => undefined
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    ready,
    closed: new Promise((resolve) =>
      proc.on("close", (code, signal) => {
        live.delete(proc)
        resolve({ code, signal })
      })
    ),
    onLine: undefined
  }
  proc.stdout?.setEncoding("utf8")
  proc.stdout?.on("data", (chunk: string) => {
    partial += chunk
    let nl = partial.indexOf("\n")
    while (nl >= 0) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      if (line === "ready") markReady()
      else lines.push(line)
      nl = partial.indexOf("\n")
    }
    child.onLine?.()
  })
  proc.stderr?.setEncoding("utf8")
  proc.stderr?.on("data", (chunk: string) => (err += chunk))
  proc.stdin?.on("error", () => undefined) // a child that died before reading its config
  return child
}
