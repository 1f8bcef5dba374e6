/**
 * The CLI's input: lines from stdin (a TTY or a pipe) and Ctrl-C, as one
 * ordered stream, plus a way for a running turn to take Ctrl-C instead.
 *
 * When to use: `openTerminal()` once; the prompt loop awaits `next`, an
 * approval question awaits `take`, a running turn registers `onInterrupt`.
 *
 * Details: lines are queued as they arrive, so a pipe that delivers all its
 * lines at once is read one at a time, in order (a scripted session can
 * answer a y/N question with the next line). Ctrl-C is delivered to the
 * handler of the running turn if there is one (cancel it), and otherwise
 * queued as an `interrupt` input (at the prompt: leave). SIGTERM, and an
 * output that went away (EPIPE: `cli | head`), are treated as Ctrl-C followed
 * by end of input: the turn is cancelled, then the CLI leaves cleanly.
 *
 * Gotcha: in a TTY, readline turns Ctrl-C into its own "SIGINT" event; with
 * a pipe, the process gets the signal. Both are handled.
 */
import * as readline from "node:readline"

export type Input = { readonly _tag: "line"; readonly text: string } | { readonly _tag: "interrupt" } | { readonly _tag: "eof" }

export interface Terminal {
  /** stdin is a TTY (a person typing) rather than a pipe. */
  readonly interactive: boolean
  /** Waits for the next input; the returned function withdraws the wait (nothing is lost). */
  readonly take: (receive: (input: Input) => void) => () => void
  /** The next input, as a promise. */
  readonly next: () => Promise<Input>
  /** Routes Ctrl-C to `handler` until the returned function is called. */
  readonly onInterrupt: (handler: () => void) => () => void
  /** Shows the prompt (TTY only). */
  readonly prompt: (text: string) => void
  readonly close: () => void
}

/** Inputs waiting for a reader; bounded (a runaway pipe must not grow memory without end). */
const queuedInputsMax = 10_000

export function openTerminal(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout): Terminal {
  const interactive = input.isTTY === true
  const rl = readline.createInterface({ input, output, terminal: interactive })
  const queue: Array<Input> = []
  const waiters: Array<(input: Input) => void> = []
  let interruptHandler: (() => void) | undefined
  let ended = false

  const deliver = (item: Input) => {
    const waiter = waiters.shift()
    if (waiter !== undefined) waiter(item)
    else if (queue.length < queuedInputsMax) queue.push(item)
  }
  const interrupt = () => {
    if (interruptHandler !== undefined) interruptHandler()
    else deliver({ _tag: "interrupt" })
  }
  const end = () => {
    if (ended) return
    ended = true
    deliver({ _tag: "eof" })
  }
  const terminate = () => {
    interrupt()
    end()
  }

  rl.on("line", (text) => deliver({ _tag: "line", text }))
  rl.on("close", end)
  rl.on("SIGINT", interrupt)
  process.on("SIGINT", interrupt)
  process.on("SIGTERM", terminate)
  // Without a listener, a write to a closed pipe would throw from wherever it happens.
  const outputGone = (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") terminate()
  }
  output.on("error", outputGone)

  const take = (receive: (input: Input) => void): (() => void) => {
    const queued = queue.shift()
    if (queued !== undefined) {
      receive(queued)
      return () => undefined
    }
    // End of input stays the answer for every later reader.
    if (ended) {
      receive({ _tag: "eof" })
      return () => undefined
    }
    waiters.push(receive)
    return () => {
      const at = waiters.indexOf(receive)
      if (at >= 0) waiters.splice(at, 1)
    }
  }

  return {
    interactive,
    take,
    next: () => new Promise((resolve) => take(resolve)),
    onInterrupt: (handler) => {
      interruptHandler = handler
      return () => {
        if (interruptHandler === handler) interruptHandler = undefined
      }
    },
    prompt: (text) => {
      if (!interactive) return
      rl.setPrompt(text)
      rl.prompt()
    },
    close: () => {
      process.off("SIGINT", interrupt)
      process.off("SIGTERM", terminate)
      rl.close()
      input.pause()
    }
  }
}
