// Child-process entry for the codec fuzz tests: `node --import tsx pg-fuzz-child.ts <target> <seed> <runs>`.
// Prints one JSON line: {"ok":true,"ms":…,"rss":…} or {"ok":false,"error":"…"}. Running in a child
// lets the test kill a decoder that hangs, which an in-process synchronous loop would not allow.
import { fuzz, type FuzzTarget } from './pg-fuzz.js';

const [target, seed, runs] = process.argv.slice(2);
const started = Date.now();
try {
  fuzz(target as FuzzTarget, Number(seed), Number(runs));
  process.stdout.write(`${JSON.stringify({ ok: true, ms: Date.now() - started, rss: process.memoryUsage().rss })}\n`);
} catch (err) {
  const e = err as Error & { cause?: unknown };
  const cause = e.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}\n` : '';
  process.stdout.write(`${JSON.stringify({ ok: false, error: `${cause}${e.message}`.slice(0, 4000) })}\n`);
  process.exitCode = 1;
}
