// Where an instance's chain ended on disk: the newest whole record of its newest segment that has
// one, whether that segment was sealed, and how many bytes of a torn write follow. A starting
// writer continues from there and records it in its first segment's `open` record.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { endOfLastLine, parseLine, RECORD_KIND } from './frame.js';
import { listTranscriptDir, segmentsOf } from './segment-files.js';
import type { OpenAfter } from './segment-writer.js';

interface ChainTail {
  maxIndex: number;
  last?: OpenAfter;
  abandoned: string[];
}

/** Finds the instance's newest whole record on disk, newest segment first. */
export function findChainTail(dir: string, instance: string, recordBytes: number): ChainTail {
  const segments = segmentsOf(listTranscriptDir(dir)).filter((s) => s.instance === instance);
  const maxIndex = segments.reduce((m, s) => Math.max(m, s.index), 0);
  const abandoned: string[] = [];
  for (const s of segments.reverse()) {
    const tail = readTail(join(dir, s.name), recordBytes);
    if (tail) return { maxIndex, abandoned, last: { segment: s.index, file: s.name, ...tail } };
    abandoned.push(s.name);
  }
  return { maxIndex, abandoned };
}

function readTail(path: string, recordBytes: number): Omit<OpenAfter, 'segment' | 'file'> | undefined {
  const fd = openSync(path, 'r');
  let buf: Buffer;
  let windowStart: number;
  try {
    const size = fstatSync(fd).size;
    const window = Math.min(size, 2 * recordBytes + 2);
    windowStart = size - window;
    buf = Buffer.alloc(window);
    let got = 0;
    while (got < window) {
      const n = readSync(fd, buf, got, window - got, windowStart + got);
      if (n === 0) break;
      got += n;
    }
    buf = buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
  const end = endOfLastLine(buf);
  const tornBytes = buf.length - end;
  let lineEnd = end - 1; // index of a '\n'
  let isLast = true;
  while (lineEnd >= 0) {
    const start = lineEnd === 0 ? 0 : buf.lastIndexOf(0x0a, lineEnd - 1) + 1;
    if (start === 0 && windowStart > 0) break; // the window begins inside this line
    const parsed = parseLine(buf.subarray(start, lineEnd));
    if (parsed.ok && parsed.hashOk) {
      const r = parsed.record;
      return { lastSeq: r.seq, lastHash: r.hash, sealed: isLast && tornBytes === 0 && r.k === RECORD_KIND.seal, tornBytes };
    }
    isLast = false;
    lineEnd = start - 1;
  }
  return undefined;
}
