// The recording thread's scheduling priority (Linux).
//
// Recording is work that can wait a little; the agents' statements cannot. The thread therefore
// runs at background priority (nice 19): on a machine with a core to spare it runs at once as
// before, and when the cores are busy it takes the time they leave idle instead of the time of
// the event loop, the database or the agents. On two cores shared with PostgreSQL and pgbench
// that was worth about 8% more throughput (bench/README.md).
//
// Background priority must not starve the thread when the cores are busy with other work for
// long: its sessions would then stop being read (the lag bound, thread.ts) behind a thread that
// hardly gets to run. So the thread is raised back to the process's own priority while it is
// behind, and lowered again once it has caught up. Linux lets an unprivileged thread lower its
// priority but not raise it back (that takes CAP_SYS_NICE, or an RLIMIT_NICE of at least 20 -
// base): where it cannot be raised back, the thread is never lowered, and the reason is logged.
//
// On Linux setpriority(PRIO_PROCESS, 0, …) sets the calling thread's nice value only (the nice
// value is per thread there); elsewhere it would set the whole process's, so this is Linux only.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const BACKGROUND_NICE = 19;

export type PriorityMode = 'background' | 'raised' | 'normal';

export interface PriorityState {
  /** background: nice 19; raised: back at the process's priority to catch up; normal: never lowered (see reason). */
  mode: PriorityMode;
  nice: number;
  /** How many times the thread was raised to catch up. */
  raises: number;
  /** Why the thread runs at normal priority, or why it could not be raised. */
  reason?: string;
  /** The thread's id (Linux), as in /proc/<pid>/task/<tid>. */
  tid?: number;
}

/** How the thread's nice value is read and set: the calling thread's (os.getPriority/setPriority on Linux). */
export interface NiceControl {
  platform: NodeJS.Platform;
  get(): number;
  set(nice: number): void;
}

const OWN_THREAD: NiceControl = {
  platform: process.platform,
  get: () => getPriority(0),
  set: (nice) => setPriority(0, nice),
};

function errorCode(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message ?? String(err);
}

/** The calling thread's id on Linux (/proc/thread-self → <pid>/task/<tid>). */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}

export class ThreadPriority {
  private mode: PriorityMode;
  private raises = 0;
  private reason: string | undefined;
  /** A change was refused: the priority stays as it is. */
  private frozen = false;

  private constructor(
    private readonly control: NiceControl,
    /** The nice value the thread started with (the process's): what it is raised back to. */
    private readonly base: number,
    /** The thread's nice value now. */
    private nice: number,
    reason: string | undefined,
    private readonly raiseAtMs: number,
    private readonly lowerAtMs: number,
    private readonly tid: number | undefined,
  ) {
    this.mode = reason === undefined ? 'background' : 'normal';
    this.reason = reason;
  }

  /**
   * Lowers the calling thread to background priority if it may be raised back, found by trying:
   * one step down, then back up. `raiseAtMs`/`lowerAtMs`: the lag (observe) above which the
   * thread is raised and below which it is lowered again.
   */
  static lower(opts: { raiseAtMs: number; lowerAtMs: number; control?: NiceControl }): ThreadPriority {
    const c = opts.control ?? OWN_THREAD;
    const tid = c === OWN_THREAD && process.platform === 'linux' ? threadId() : undefined;
    const make = (base: number, nice: number, reason?: string): ThreadPriority =>
      new ThreadPriority(c, base, nice, reason, opts.raiseAtMs, opts.lowerAtMs, tid);
    if (c.platform !== 'linux') return make(0, 0, 'thread priorities are set on Linux only');
    let base: number;
    try {
      base = c.get();
    } catch (err) {
      return make(0, 0, `cannot read the thread's priority (${errorCode(err)})`);
    }
    if (base >= BACKGROUND_NICE) return make(base, base, `warden already runs at nice ${base}`);
    try {
      c.set(base + 1);
    } catch (err) {
      return make(base, base, `cannot lower the thread's priority (${errorCode(err)})`);
    }
    try {
      c.set(base);
    } catch (err) {
      // Left one step down (nice base+1): harmless, and the reason says why it goes no further.
      return make(
        base,
        base + 1,
        `a thread's priority could not be raised back once lowered (${errorCode(err)}): that takes CAP_SYS_NICE or an RLIMIT_NICE of at least ${20 - base} (systemd: LimitNICE=${base >= 0 ? '+' : ''}${base})`,
      );
    }
    try {
      c.set(BACKGROUND_NICE);
    } catch (err) {
      return make(base, base, `cannot lower the thread's priority (${errorCode(err)})`);
    }
    return make(base, BACKGROUND_NICE);
  }

  /**
   * The thread is `lagMs` behind (how long ago the oldest chunk it is taking was read): raised
   * above raiseAtMs, lowered back under lowerAtMs. False when a change was refused (the reason
   * says why): the thread then stays as it is.
   */
  observe(lagMs: number): boolean {
    if (this.frozen) return true;
    if (this.mode === 'background' && lagMs > this.raiseAtMs) return this.to('raised', this.base);
    if (this.mode === 'raised' && lagMs < this.lowerAtMs) return this.to('background', BACKGROUND_NICE);
    return true;
  }

  private to(mode: PriorityMode, nice: number): boolean {
    try {
      this.control.set(nice);
    } catch (err) {
      // Priorities stop changing: a thread left in the background is still bounded by the lag limit.
      this.reason = `cannot set the thread's priority to nice ${nice} (${errorCode(err)})`;
      this.mode = this.mode === 'raised' ? 'normal' : this.mode;
      this.frozen = true;
      return false;
    }
    this.mode = mode;
    this.nice = nice;
    if (mode === 'raised') this.raises++;
    return true;
  }

  get current(): PriorityMode {
    return this.mode;
  }

  state(): PriorityState {
    return {
      mode: this.mode,
      nice: this.nice,
      raises: this.raises,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.tid !== undefined ? { tid: this.tid } : {}),
    };
  }
}
