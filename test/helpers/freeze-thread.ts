// Stops one thread of this process, as a debugger would, to play a thread that is stuck (in a
// loop, or in a write to a disk that does not answer): ptrace(PTRACE_SEIZE) then PTRACE_INTERRUPT
// on its thread id, from a helper process (python3's ctypes: no native module to build). Only
// that thread stops; the rest of the process runs on. It runs again when release() ends the
// helper: a tracer that exits detaches from its tracees.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const PYTHON = '/usr/bin/python3';

const SCRIPT = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
tid = int(sys.argv[1])
for request in (PTRACE_SEIZE, PTRACE_INTERRUPT):
    if libc.ptrace(request, tid, None, None) != 0:
        sys.stderr.write('ptrace: ' + os.strerror(ctypes.get_errno()) + '\\n')
        sys.exit(1)
sys.stdout.write('frozen\\n')
sys.stdout.flush()
sys.stdin.read()
`;

/** Linux with python3: what freezeThread needs. */
export const canFreezeThreads = process.platform === 'linux' && existsSync(PYTHON);

export interface FrozenThread {
  /** Lets the thread run again (idempotent). */
  release(): Promise<void>;
}

/** Stops thread `tid` of this process until release(); rejects if it cannot (ptrace refused). */
export async function freezeThread(tid: number): Promise<FrozenThread> {
  const helper = spawn(PYTHON, ['-c', SCRIPT, String(tid)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  helper.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => helper.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    helper.stdout.once('data', () => resolve());
    helper.once('exit', (code) => reject(new Error(`cannot freeze thread ${tid} (exit ${code}): ${stderr.trim()}`)));
    helper.once('error', reject);
  });
  return {
    release: async () => {
      helper.stdin.end();
      await exited;
    },
  };
}
