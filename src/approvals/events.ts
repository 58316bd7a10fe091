// The live feed of approval events for the admin API's server-sent events stream. Each event has a
// sequence number (the SSE `id`); a short backlog (bounded by count and size) lets a client that
// reconnects with `Last-Event-ID` catch up on what it missed.
import type { StoreEvent } from './model.js';

export interface ApprovalEvent {
  seq: number;
  event: StoreEvent;
  data: Record<string, unknown>;
  /** `data` as JSON, serialized once for every stream. */
  json: string;
}

const BACKLOG_EVENTS = 256;
const BACKLOG_CHARS = 4 * 1024 * 1024;

export class ApprovalEvents {
  private seq = 0;
  private readonly backlog: ApprovalEvent[] = [];
  private backlogChars = 0;
  private readonly listeners = new Set<(e: ApprovalEvent) => void>();

  emit(event: StoreEvent, data: Record<string, unknown>): void {
    const e: ApprovalEvent = { seq: ++this.seq, event, data, json: JSON.stringify(data) };
    this.backlog.push(e);
    this.backlogChars += e.json.length;
    while (this.backlog.length > BACKLOG_EVENTS || (this.backlogChars > BACKLOG_CHARS && this.backlog.length > 1)) {
      this.backlogChars -= (this.backlog.shift() as ApprovalEvent).json.length;
    }
    for (const l of this.listeners) l(e);
  }

  /** Listens from now on; `after` replays the backlog newer than that sequence number first. */
  subscribe(listener: (e: ApprovalEvent) => void, after?: number): () => void {
    if (after !== undefined) for (const e of this.backlog) if (e.seq > after) listener(e);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
