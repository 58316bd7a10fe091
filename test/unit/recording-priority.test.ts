// The recording thread's priority (src/pg/recording/priority.ts): background when it can be
// raised back, raised while the thread is behind, lowered again once it has caught up; never
// lowered for good. The kernel's rule is played by a control that refuses what Linux refuses an
// unprivileged thread (a lower nice value than it has); the real kernel is asked at the end, as
// root and as an unprivileged user.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ThreadPriority, type NiceControl } from '../../src/pg/recording/priority.js';

/** A thread's nice value under Linux's rules: `privileged` may lower it (raise priority), others may only raise it. */
function kernel(opts: { privileged: boolean; nice?: number; platform?: NodeJS.Platform }): NiceControl & { nice: number; calls: number[] } {
  const k = {
    platform: opts.platform ?? 'linux',
    nice: opts.nice ?? 0,
    calls: [] as number[],
    get: () => k.nice,
    set(nice: number) {
      k.calls.push(nice);
      if (nice < k.nice && !opts.privileged) throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
      k.nice = nice;
    },
  };
  return k;
}

const lower = (control: NiceControl): ThreadPriority => ThreadPriority.lower({ raiseAtMs: 250, lowerAtMs: 50, control });

describe('the recording thread priority', () => {
  it('goes to the background when it may come back, is raised while behind and lowered once caught up', () => {
    const k = kernel({ privileged: true });
    const p = lower(k);
    expect(p.state()).toEqual({ mode: 'background', nice: 19, raises: 0 });
    // It tried one step down and back up before going to the background.
    expect(k.calls).toEqual([1, 0, 19]);
    expect(p.observe(200)).toBe(true);
    expect(p.state().mode).toBe('background');
    expect(p.observe(251)).toBe(true);
    expect(p.state()).toEqual({ mode: 'raised', nice: 0, raises: 1 });
    expect(k.nice).toBe(0);
    expect(p.observe(100)).toBe(true);
    expect(p.state().mode).toBe('raised');
    expect(p.observe(49)).toBe(true);
    expect(p.state()).toEqual({ mode: 'background', nice: 19, raises: 1 });
    expect(k.nice).toBe(19);
    p.observe(300);
    expect(p.state()).toMatchObject({ mode: 'raised', raises: 2 });
  });

  it('is raised back to the nice value warden started with, not to 0', () => {
    const k = kernel({ privileged: true, nice: 5 });
    const p = lower(k);
    p.observe(1000);
    expect(p.state()).toEqual({ mode: 'raised', nice: 5, raises: 1 });
    expect(k.nice).toBe(5);
  });

  it('stays at normal priority when it could not come back, and says what would let it', () => {
    const k = kernel({ privileged: false });
    const p = lower(k);
    // One step down is where the probe left it: it cannot undo that, and that is all.
    expect(k.nice).toBe(1);
    expect(p.state()).toEqual({
      mode: 'normal',
      nice: 1,
      raises: 0,
      reason: "a thread's priority could not be raised back once lowered (EACCES): that takes CAP_SYS_NICE or an RLIMIT_NICE of at least 20 (systemd: LimitNICE=+0)",
    });
    p.observe(10_000);
    expect(p.state().mode).toBe('normal');
    expect(k.nice).toBe(1);
  });

  it('leaves the priority alone off Linux (elsewhere it is the whole process\'s), or when warden already runs at nice 19', () => {
    const mac = kernel({ privileged: true, platform: 'darwin' });
    expect(lower(mac).state()).toEqual({ mode: 'normal', nice: 0, raises: 0, reason: 'thread priorities are set on Linux only' });
    expect(mac.calls).toEqual([]);
    const niced = kernel({ privileged: true, nice: 19 });
    expect(lower(niced).state()).toEqual({ mode: 'normal', nice: 19, raises: 0, reason: 'warden already runs at nice 19' });
    expect(niced.calls).toEqual([]);
  });

  it('stops changing the priority when a change is refused later, and says why', () => {
    let refuse = false;
    const k = kernel({ privileged: true });
    const control: NiceControl = { ...k, get: k.get, set: (n) => (refuse ? (() => { throw Object.assign(new Error('no'), { code: 'EPERM' }); })() : k.set(n)) };
    const p = lower(control);
    refuse = true;
    expect(p.observe(1000)).toBe(false);
    expect(p.state()).toEqual({ mode: 'background', nice: 19, raises: 0, reason: "cannot set the thread's priority to nice 0 (EPERM)" });
    refuse = false;
    expect(p.observe(1000)).toBe(true);
    expect(p.state().mode).toBe('background');
  });

  const root = process.platform === 'linux' && process.getuid?.() === 0;
  it.skipIf(!root)('asks the real kernel: as root the thread goes to nice 19 and back; as an unprivileged user it stays at normal priority', () => {
    // The module as JavaScript (it imports node built-ins only), run by a fresh node: as root, and as `nobody`.
    const dir = mkdtempSync(join(tmpdir(), 'warden-priority-'));
    try {
      const source = readFileSync(new URL('../../src/pg/recording/priority.ts', import.meta.url), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      writeFileSync(join(dir, 'priority.mjs'), js);
      writeFileSync(
        join(dir, 'probe.mjs'),
        [
          "import { readFileSync } from 'node:fs';",
          "import { ThreadPriority } from './priority.mjs';",
          "const nice = () => Number(readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ')[16]);",
          'const p = ThreadPriority.lower({ raiseAtMs: 250, lowerAtMs: 50 });',
          'const lowered = nice();',
          'p.observe(1000);',
          'const raised = nice();',
          'console.log(JSON.stringify({ state: p.state(), lowered, raised }));',
        ].join('\n'),
      );
      chmodSync(dir, 0o755);
      const probe = (user?: string): { state: Record<string, unknown>; lowered: number; raised: number } =>
        JSON.parse(execFileSync(user ? 'runuser' : process.execPath, user ? ['-u', user, '--', process.execPath, join(dir, 'probe.mjs')] : [join(dir, 'probe.mjs')], { encoding: 'utf8' }));
      const asRoot = probe();
      expect(asRoot.lowered).toBe(19);
      expect(asRoot.raised).toBe(0);
      expect(asRoot.state).toMatchObject({ mode: 'raised', nice: 0, raises: 1 });
      const asNobody = probe('nobody');
      expect(asNobody.lowered).toBe(1);
      expect(asNobody.raised).toBe(1);
      expect(asNobody.state).toMatchObject({ mode: 'normal', nice: 1 });
      expect(String(asNobody.state.reason)).toContain('CAP_SYS_NICE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
