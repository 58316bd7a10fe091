// A small Prometheus registry: counters and gauges with labels, rendered in the text exposition
// format (https://prometheus.io/docs/instrumenting/exposition_formats/). Updating a metric is a
// map lookup and an add, cheap enough for the relay's per-message path.

type Labels = Record<string, string>;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k] as string)}"`).join(',');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

abstract class Metric {
  protected readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    if (this.values.size === 0 && this.type === 'gauge') lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(k ? `${this.name}{${k}} ${v}` : `${this.name} ${v}`);
    return lines.join('\n');
  }

  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
}

/** A counter bound to one label set: for hot paths, where building the label key per call would cost. */
export interface BoundCounter {
  inc(by?: number): void;
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** A handle that adds to this label set without recomputing its key. */
  bind(labels?: Labels): BoundCounter {
    const k = labelKey(labels);
    if (!this.values.has(k)) this.values.set(k, 0);
    const values = this.values;
    return { inc: (by = 1) => values.set(k, (values.get(k) as number) + by) };
  }
}

export class Gauge extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  set(v: number, labels?: Labels): void {
    this.values.set(labelKey(labels), v);
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }
}

/** warden's metrics. One instance per process (or per server in tests). */
export class Metrics {
  readonly sessionsActive = new Gauge('warden_sessions_active', 'Sessions currently open, by protocol and target.');
  readonly sessionsTotal = new Counter('warden_sessions_total', 'Sessions established, by protocol and target.');
  readonly connectionsTotal = new Counter('warden_connections_total', 'Client connections accepted, by protocol.');
  readonly authFailuresTotal = new Counter('warden_auth_failures_total', 'Refused logins, by protocol and reason.');
  readonly upstreamFailuresTotal = new Counter('warden_upstream_failures_total', 'Failed upstream logins, by target and kind.');
  readonly queriesTotal = new Counter('warden_queries_total', 'Statements sent (simple Query and Execute messages), by protocol and target.');
  readonly bytesTotal = new Counter('warden_bytes_total', 'Bytes relayed, by direction (client_to_upstream, upstream_to_client).');
  readonly protocolErrorsTotal = new Counter('warden_protocol_errors_total', 'Sessions ended by a protocol error, by protocol and side.');
  readonly cancelsTotal = new Counter('warden_cancel_requests_total', 'Cancel requests, by result (forwarded, unknown_key).');
  readonly transcriptFailuresTotal = new Counter('warden_transcript_write_failures_total', 'Times the transcript store became unwritable.');
  readonly verdictsTotal = new Counter('warden_statement_verdicts_total', 'Statement verdicts, by protocol and verdict (allow, deny, hold, grant).');

  private readonly all: Metric[] = [
    this.sessionsActive,
    this.sessionsTotal,
    this.connectionsTotal,
    this.authFailuresTotal,
    this.upstreamFailuresTotal,
    this.queriesTotal,
    this.bytesTotal,
    this.protocolErrorsTotal,
    this.cancelsTotal,
    this.verdictsTotal,
    this.transcriptFailuresTotal,
  ];

  /** Gauges and counters read when /metrics is rendered (a value another part keeps). */
  private readonly sampled: { name: string; help: string; read: () => number; type: 'gauge' | 'counter' }[] = [];

  /** The statement-verdict counters of one protocol, bound once per session flow. */
  verdictCounters(protocol: 'postgres' | 'tds'): Record<'allow' | 'deny' | 'hold' | 'grant', BoundCounter> {
    const bound = (verdict: string): BoundCounter => this.verdictsTotal.bind({ protocol, verdict });
    return { allow: bound('allow'), deny: bound('deny'), hold: bound('hold'), grant: bound('grant') };
  }

  /** Lets other parts register their own metrics. */
  register<M extends Metric>(metric: M): M {
    this.all.push(metric);
    return metric;
  }

  /** A gauge without labels whose value is read at each scrape. */
  sample(name: string, help: string, read: () => number): void {
    this.sampled.push({ name, help, read, type: 'gauge' });
  }

  /** A counter without labels (`…_total`) whose value, kept elsewhere and only ever growing, is read at each scrape. */
  sampleCounter(name: string, help: string, read: () => number): void {
    this.sampled.push({ name, help, read, type: 'counter' });
  }

  render(): string {
    const mem = process.memoryUsage();
    const extra = [
      '# HELP warden_process_resident_memory_bytes Resident set size.',
      '# TYPE warden_process_resident_memory_bytes gauge',
      `warden_process_resident_memory_bytes ${mem.rss}`,
      '# HELP warden_process_heap_used_bytes V8 heap in use.',
      '# TYPE warden_process_heap_used_bytes gauge',
      `warden_process_heap_used_bytes ${mem.heapUsed}`,
      ...this.sampled.flatMap((g) => [`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} ${g.type}`, `${g.name} ${g.read()}`]),
    ];
    return `${[...this.all.map((m) => m.render()), ...extra].join('\n')}\n`;
  }
}
