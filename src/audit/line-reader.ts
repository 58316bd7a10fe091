// Reads a segment file line by line without holding it in memory. Each line is bounded: a line
// longer than the cap is reported as oversized (and skipped to the next '\n'), never buffered.

import { open } from 'node:fs/promises';

const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;

export interface RawLine {
  /** The line without its '\n' (empty when oversized). */
  bytes: Buffer;
  /** 1-based line number. */
  lineNo: number;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Byte length on disk, '\n' excluded. */
  length: number;
  /** False for trailing bytes without a final '\n' (a torn write, or a file still being written). */
  complete: boolean;
  oversized: boolean;
}

export interface ReadLinesOptions {
  /** Start at this byte offset (must be the start of a line). */
  start?: number;
  /** Line number of the line at `start`; default 1. */
  firstLineNo?: number;
  /** Longest line kept; longer lines come back with `oversized`. */
  maxLineBytes: number;
}

export async function* readLines(path: string, options: ReadLinesOptions): AsyncGenerator<RawLine> {
  const handle = await open(path, 'r');
  try {
    let position = options.start ?? 0;
    let lineNo = options.firstLineNo ?? 1;
    let parts: Buffer[] = [];
    let partsLength = 0;
    let lineStart = position;
    let oversized = false;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let from = 0;
      while (from < bytesRead) {
        const nl = chunk.indexOf(NEWLINE, from);
        const end = nl < 0 || nl >= bytesRead ? bytesRead : nl;
        const piece = end - from;
        if (!oversized && partsLength + piece > options.maxLineBytes) {
          oversized = true;
          parts = [];
        }
        if (!oversized && piece > 0) parts.push(chunk.subarray(from, end));
        partsLength += piece;
        if (end === bytesRead) break;
        yield {
          bytes: oversized ? Buffer.alloc(0) : parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts),
          lineNo,
          offset: lineStart,
          length: partsLength,
          complete: true,
          oversized,
        };
        lineNo += 1;
        lineStart += partsLength + 1;
        parts = [];
        partsLength = 0;
        oversized = false;
        from = end + 1;
      }
    }
    if (partsLength > 0) {
      yield {
        bytes: oversized ? Buffer.alloc(0) : Buffer.concat(parts),
        lineNo,
        offset: lineStart,
        length: partsLength,
        complete: false,
        oversized,
      };
    }
  } finally {
    await handle.close();
  }
}
