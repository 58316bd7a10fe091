// The output slab: messages handed out are never written again (a socket may still be sending
// them), a message that outgrows the slab moves to a new one with its bytes so far, and a slab
// grown for one large message is not kept afterwards.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutputSlab } from '../../src/masking/output-slab.js';

/** Builds one message of `bytes` in `parts` writes, each after ensure(). */
function build(slab: OutputSlab, bytes: Buffer, parts: number): void {
  slab.begin();
  const step = Math.max(1, Math.ceil(bytes.length / parts));
  for (let at = 0; at < bytes.length; at += step) {
    const piece = bytes.subarray(at, at + step);
    slab.ensure(piece.length);
    piece.copy(slab.buf, slab.w);
    slab.w += piece.length;
  }
}

describe('OutputSlab', () => {
  it('keeps every message handed out as it was written, whatever their sizes', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ size: fc.oneof(fc.nat(300), fc.nat(200_000)), parts: fc.integer({ min: 1, max: 5 }), dropped: fc.boolean() }), { maxLength: 20 }), (msgs) => {
        const slab = new OutputSlab();
        const kept: { view: Buffer; bytes: Buffer }[] = [];
        msgs.forEach(({ size, parts, dropped }, i) => {
          const bytes = Buffer.alloc(size, i % 251);
          build(slab, bytes, parts);
          // A message not handed out (an unchanged row) is dropped by the next begin().
          if (!dropped) kept.push({ view: slab.take(), bytes });
        });
        for (const k of kept) expect(k.view.equals(k.bytes)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('puts consecutive messages next to each other in one buffer, and lets a grown slab go', () => {
    const slab = new OutputSlab();
    build(slab, Buffer.from('first'), 1);
    const a = { buf: slab.buf, from: slab.start, to: slab.w };
    slab.commit();
    build(slab, Buffer.from('second'), 1);
    expect(slab.buf).toBe(a.buf);
    expect(slab.start).toBe(a.to);
    slab.commit();
    build(slab, Buffer.alloc(1 << 20, 7), 4);
    expect(slab.buf.length).toBeGreaterThan(1 << 20);
    const big = slab.take();
    expect(big.length).toBe(1 << 20);
    expect(slab.buf.length).toBeLessThan(1 << 20);
  });
});
