import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { decodeHeader, decodePayloadBytes, encodeFrame, encodeHeader, frameAt, frameHeaderBytes, validateEvents } from "../../src/journal/Codec.ts"
import { entry } from "../support/tmp.ts"

const payloadOf = (frame: Uint8Array) => frame.subarray(frameHeaderBytes)

describe("Codec", () => {
  it("round-trips a batch through a frame", () => {
    const batch = { position: 7, epoch: 2, events: [entry({ text: "héllo ✓" }), entry([1, 2, null])] }
    const frame = encodeFrame(batch)
    assert.deepStrictEqual(frameAt(frame, 0).kind, "frame")
    assert.deepStrictEqual(decodePayloadBytes(payloadOf(frame), new Map()), batch)
  })

  it("frames cost 12 bytes beyond the payload", () => {
    const frame = encodeFrame({ position: 1, epoch: 1, events: [entry("x")] })
    const json = JSON.stringify({ v: 1, p: 1, e: 1, r: [entry("x")] })
    assert.strictEqual(frame.length - new TextEncoder().encode(json).length, 12)
  })

  it("every truncation of a frame is a torn tail, never a frame or corruption", () => {
    const frame = encodeFrame({ position: 1, epoch: 1, events: [entry({ a: "b".repeat(100) })] })
    for (let cut = 0; cut < frame.length; cut++) assert.strictEqual(frameAt(frame.subarray(0, cut), 0).kind, "torn", `cut at ${cut}`)
  })

  it("a bit flip anywhere in a frame followed by another frame is corruption", () => {
    const a = encodeFrame({ position: 1, epoch: 1, events: [entry({ a: 1 })] })
    const b = encodeFrame({ position: 2, epoch: 1, events: [entry({ b: 2 })] })
    fc.assert(
      fc.property(fc.integer({ min: 0, max: a.length * 8 - 1 }), (bit) => {
        const bytes = new Uint8Array(a.length + b.length)
        bytes.set(a, 0)
        bytes.set(b, a.length)
        bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7))
        assert.strictEqual(frameAt(bytes, 0).kind, "corrupt", `bit ${bit}`)
      })
    )
  })

  it("a bit flip in the last frame is a torn tail (the last write may be partial)", () => {
    const a = encodeFrame({ position: 1, epoch: 1, events: [entry({ a: 1 })] })
    const bytes = a.slice()
    bytes[a.length - 2] = (bytes[a.length - 2] as number) ^ 1
    assert.strictEqual(frameAt(bytes, 0).kind, "torn")
  })

  it("validates events before append and after decode", () => {
    assert.include(validateEvents([]) ?? "", "at least one")
    assert.include(validateEvents([{ _tag: "entry.appended", branch: "", parentId: 0, type: "t", time: 0, payload: 1 }]) ?? "", "event 0")
    assert.include(validateEvents([{ _tag: "no.such.event" }]) ?? "", "event 0")
    const bad = new TextEncoder().encode(JSON.stringify({ v: 1, p: 1, e: 1, r: [{ _tag: "entry.appended" }] }))
    const result = decodePayloadBytes(bad, new Map())
    assert.strictEqual("kind" in result && result.kind, "invalid")
  })

  it("refuses a newer record version and migrates an older one", () => {
    const newer = new TextEncoder().encode(JSON.stringify({ v: 99, p: 1, e: 1, r: [entry(1)] }))
    const r1 = decodePayloadBytes(newer, new Map())
    assert.deepStrictEqual("kind" in r1 && r1.kind, "version")
    const older = new TextEncoder().encode(JSON.stringify({ v: 0, pos: 1, e: 1, r: [entry(1)] }))
    const r2 = decodePayloadBytes(older, new Map([[0, ({ pos, ...rest }) => ({ ...rest, v: 1, p: pos })]]))
    assert.deepStrictEqual(r2, { position: 1, epoch: 1, events: [entry(1)] })
    const r3 = decodePayloadBytes(older, new Map())
    assert.deepStrictEqual("kind" in r3 && r3.reason, "no migration from record version 0")
  })

  it("checks the segment header: magic, checksum, version", () => {
    const header = encodeHeader(42)
    assert.deepStrictEqual(decodeHeader(header), { version: 1, firstPosition: 42 })
    const flipped = header.slice()
    flipped[9] = (flipped[9] as number) ^ 1
    assert.strictEqual((decodeHeader(flipped) as { kind: string }).kind, "corrupt")
    assert.strictEqual((decodeHeader(new TextEncoder().encode("hello world, not a journal")) as { kind: string }).kind, "invalid")
  })
})
