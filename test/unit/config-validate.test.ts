// The validation toolkit on its own: units, ${env:…} interpolation, "did you mean", and the Field
// readers exercised through a small section written the way a later feature would write one.
import { describe, expect, it } from 'vitest';
import { readYaml } from '../../src/config/document.js';
import { interpolate } from '../../src/config/interpolate.js';
import { editDistance, suggest } from '../../src/config/suggest.js';
import { formatBytes, formatDuration, GiB, KiB, MINUTE, parseByteSize, parseDuration, SECOND } from '../../src/config/units.js';
import type { Field } from '../../src/config/validate.js';
import { lineCol } from './config-helpers.js';

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    ['0', 0],
    ['45', 45_000],
    [0.25, 250],
    [60, 60_000],
  ] as const)('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', '5 minutes', '1h30m', '-5s', '0.5ms', '10x', 'ms', '1e3s'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('refuses negative and non-finite numbers of seconds', () => {
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration(Infinity)).toBeUndefined();
    expect(parseDuration(Number.NaN)).toBeUndefined();
  });

  it('formats back to the shortest exact unit', () => {
    expect([1500, 30_000, 90_000, 600_000, 3_600_000, 86_400_000, 0].map(formatDuration)).toEqual([
      '1500ms',
      '30s',
      '90s',
      '10m',
      '1h',
      '1d',
      '0ms',
    ]);
  });
});

describe('byte sizes', () => {
  it.each([
    ['64KiB', 64 * KiB],
    ['1GiB', GiB],
    ['16 MiB', 16 * 1024 * 1024],
    ['1.5KiB', 1536],
    ['512', 512],
    ['512B', 512],
    ['2kib', 2048],
    [4096, 4096],
  ] as const)('%s → %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toEqual({ bytes });
  });

  it('refuses decimal units with a hint toward the binary one', () => {
    const r = parseByteSize('64KB');
    expect(r).toHaveProperty('error');
    expect('error' in r && r.error).toContain('did you mean 64KiB?');
  });

  it.each(['', 'lots', '1.3B', '-1', '5 parsecs'])('refuses %j', (text) => {
    expect(parseByteSize(text)).toHaveProperty('error');
  });

  it('formats back to the shortest exact unit', () => {
    expect([65536, GiB, 1000, 1536].map(formatBytes)).toEqual(['64KiB', '1GiB', '1000B', '1536B']);
  });
});

describe('${env:NAME} interpolation', () => {
  const env = { HOST: 'db.internal', EMPTY: '', PW: 's3cret' };

  it('replaces whole values and parts of values', () => {
    expect(interpolate('${env:PW}', env)).toMatchObject({ value: 's3cret', fromEnv: true });
    expect(interpolate('tcp://${env:HOST}:5432/${env:HOST}', env)).toMatchObject({ value: 'tcp://db.internal:5432/db.internal', fromEnv: true });
    expect(interpolate('${env:EMPTY}', env)).toMatchObject({ value: '', fromEnv: true });
  });

  it('writes a literal ${ for $${ and leaves other dollars alone', () => {
    expect(interpolate('a$${env:PW}b$c$', env)).toMatchObject({ value: 'a${env:PW}b$c$', fromEnv: false });
  });

  it('lists every missing variable', () => {
    const r = interpolate('${env:NOPE}-${env:HOST}-${env:ALSO_NOPE}', env);
    expect(r.value).toBeUndefined();
    expect(r.missing).toEqual(['NOPE', 'ALSO_NOPE']);
  });

  it.each(['${PW}', '${env:}', '${env:1X}', '${env:A B}', 'abc${env:PW', '${file:/etc/passwd}'])('flags %j as malformed', (text) => {
    const r = interpolate(text, env);
    expect(r.malformed).toBe(true);
    expect(r.value).toBeUndefined();
  });
});

describe('did you mean', () => {
  const keys = ['name', 'issuer', 'jwks_uri', 'jwks_file', 'audiences', 'cert_file', 'key_file'];
  it.each([
    ['jwks_url', 'jwks_uri'],
    ['jwksUri', 'jwks_uri'],
    ['jwks-file', 'jwks_file'],
    ['audience', 'audiences'],
    ['isuser', 'issuer'],
    ['cert', 'cert_file'],
    ['nmae', 'name'],
  ])('%s → %s', (word, expected) => {
    expect(suggest(word, keys)).toBe(expected);
  });

  it('prefers the key a plural is made from over a longer key that merely starts with the same letters', () => {
    const transcriptKeys = ['recording_thread', 'recording_thread_max_lag', 'recording_thread_stall_timeout'];
    expect(suggest('recording_threads', transcriptKeys)).toBe('recording_thread');
    expect(suggest('recording_thread_stall', transcriptKeys)).toBe('recording_thread_stall_timeout');
    expect(suggest('recording', transcriptKeys)).toBe('recording_thread');
    expect(suggest('recordingThreadMaxLag', transcriptKeys)).toBe('recording_thread_max_lag');
  });

  it('stays quiet when nothing is close', () => {
    expect(suggest('timeout', keys)).toBeUndefined();
    expect(suggest('', keys)).toBeUndefined();
  });

  it('counts a transposition as one edit', () => {
    expect(editDistance('nmae', 'name')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
});

// A section as a later feature would add it: a few lines over the toolkit.
interface ApprovalsConfig {
  timeout: number;
  maxPending: number;
  notify: boolean;
  queueBytes: number;
  approvers: string[];
  channels: Map<string, { url: string }>;
}

function readApprovals(field: Field): ApprovalsConfig | undefined {
  const s = field.section(['timeout', 'max_pending', 'notify', 'queue_bytes', 'approvers', 'channels']);
  if (!s) return undefined;
  const channels = new Map<string, { url: string }>();
  for (const [name, f] of s.get('channels').entries() ?? []) {
    const c = f.section(['url']);
    const url = c?.need('url').string();
    if (url !== undefined) channels.set(name, { url });
  }
  return {
    timeout: s.get('timeout').duration({ min: SECOND, max: 10 * MINUTE }) ?? 5 * MINUTE,
    maxPending: s.get('max_pending').integer({ min: 1, max: 1000 }) ?? 100,
    notify: s.get('notify').boolean() ?? true,
    queueBytes: s.get('queue_bytes').bytes({ max: GiB }) ?? 64 * KiB,
    approvers: s.need('approvers').strings({ nonEmpty: true }) ?? [],
    channels,
  };
}

function approvals(text: string, env: NodeJS.ProcessEnv = {}) {
  return readYaml(text, (root) => readApprovals(root), { source: 'a.yaml', env });
}

describe('Field readers (a section written with the toolkit)', () => {
  it('reads values and applies defaults', () => {
    const { value, problems } = approvals('approvers: [alice, bob]\nchannels:\n  teams: { url: https://x }\n');
    expect(problems).toEqual([]);
    expect(value).toEqual({
      timeout: 5 * MINUTE,
      maxPending: 100,
      notify: true,
      queueBytes: 64 * KiB,
      approvers: ['alice', 'bob'],
      channels: new Map([['teams', { url: 'https://x' }]]),
    });
  });

  it('reports every problem with its path and the position of the value', () => {
    const text = [
      'timeout: 1h', //                 1
      'max_pending: 0', //              2
      'notify: yes', //                 3
      'queue_bytes: 2GiB', //           4
      'approvers: []', //               5
      'channels:', //                   6
      '  teams: { uri: https://x }', // 7
      'timout: 5m', //                  8
    ].join('\n');
    const { problems } = approvals(text);
    const got = problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.reason}`);
    expect(got).toEqual([
      `1:10 timeout: must be between 1s and 10m, got "1h"`,
      `2:14 max_pending: must be an integer between 1 and 1000, got 0`,
      `3:9 notify: must be true or false, got "yes"`,
      `4:14 queue_bytes: must be at most 1GiB, got "2GiB"`,
      `5:12 approvers: must not be an empty list`,
      `7:3 channels.teams.url: is required`,
      `7:12 channels.teams.uri: unknown key (did you mean "url"?)`,
      `8:1 timout: unknown key (did you mean "timeout"?)`,
    ]);
  });

  it('points a missing key at the key of the map it belongs in', () => {
    const text = 'approvers: [a]\nchannels:\n  teams:\n    urls: x\n';
    const { problems } = approvals(text);
    expect(problems).toContainEqual(expect.objectContaining({ path: 'channels.teams.url', reason: 'is required', ...lineCol(text, 'teams') }));
  });

  it('reports duplicate keys at the second one, naming the first line', () => {
    const text = 'approvers: [a]\ntimeout: 1m\nnotify: true\ntimeout: 2m\n';
    const { problems } = approvals(text);
    expect(problems).toEqual([{ source: 'a.yaml', path: 'timeout', reason: 'duplicate key (first written at line 2)', ...lineCol(text, 'timeout: 2m') }]);
  });

  it('distinguishes a missing key from a key with no value', () => {
    expect(approvals('timeout: 1m\n').problems.map((p) => p.reason)).toEqual(['is required']);
    expect(approvals('approvers:\n').problems.map((p) => p.reason)).toEqual(['is required but has no value']);
  });

  it('reports wrong shapes: a scalar for a list, a list for a map, an empty list item', () => {
    const text = 'approvers: alice\nchannels: [a]\n';
    expect(approvals(text).problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      'approvers: must be a list, got "alice" (write a single item as [item] or as a "- item" line)',
      'channels: must be a map of keys and values, got a list',
    ]);
    const items = 'approvers:\n  - alice\n  -\n  - 7\n';
    expect(approvals(items).problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.reason}`)).toEqual([
      '3:4 approvers[1]: is an empty list item',
      '4:5 approvers[2]: must be a string, got 7; put it in quotes',
    ]);
  });

  it('reads integers, booleans, durations and sizes from ${env:…} without echoing the value', () => {
    const env = { T: '90s', N: '12', B: 'false', Q: '1MiB' };
    const text = 'timeout: ${env:T}\nmax_pending: ${env:N}\nnotify: ${env:B}\nqueue_bytes: ${env:Q}\napprovers: [a]\n';
    expect(approvals(text, env).value).toMatchObject({ timeout: 90_000, maxPending: 12, notify: false, queueBytes: 1024 * 1024 });
    const bad = approvals('max_pending: ${env:N}\napprovers: [a]\n', { N: 'lots-of-them' });
    expect(bad.problems.map((p) => p.reason)).toEqual(['must be an integer between 1 and 1000, got the value from "${env:N}"']);
    expect(JSON.stringify(bad.problems)).not.toContain('lots-of-them');
  });

  it('does not take a quoted number as an integer', () => {
    expect(approvals('max_pending: "12"\napprovers: [a]\n').problems.map((p) => p.reason)).toEqual([
      'must be an integer between 1 and 1000, got "12"',
    ]);
  });

  it('expands aliases, and points problems at the anchored value and at each alias', () => {
    const text = 'approvers: &people [alice, bob]\nchannels:\n  a: &ch { url: https://a }\n  b: *ch\n';
    expect(approvals(text).value?.channels.get('b')).toEqual({ url: 'https://a' });
    const bad = 'approvers: [a]\ntimeout: &t nope\nchannels: {}\nmax_pending: *t\n';
    expect(approvals(bad).problems.map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual(['2:13 timeout', '4:14 max_pending']);
  });

  it('bounds alias expansion (no "billion laughs")', () => {
    const items = Array.from({ length: 1200 }, () => '*a').join(', ');
    const { problems } = approvals(`x: &a alice\napprovers: [${items}]\n`);
    expect(problems.some((p) => p.reason.startsWith('too many alias expansions'))).toBe(true);
  });

  it('turns YAML syntax errors into positioned problems and stops there', () => {
    const text = 'approvers: [a, b\ntimeout: 5m\n';
    const { value, problems } = approvals(text);
    expect(value).toBeUndefined();
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatchObject({ source: 'a.yaml', path: '', line: 2, col: 1 });
    expect(problems[0]?.reason).toMatch(/^YAML: /);
  });

  it('refuses tags it does not know and binary values', () => {
    const { problems } = approvals('approvers: [!secret a]\ntimeout: !!binary aGVsbG8=\n');
    expect(problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      expect.stringMatching(/^: YAML: Unresolved tag: !secret/),
      'timeout: must be a duration such as "500ms", "30s", "5m", "2h", "1d" or a number of seconds, got a tagged value',
    ]);
  });

  it('names entries with odd keys unambiguously in the path', () => {
    const { problems } = approvals('approvers: [a]\nchannels:\n  "a.b": {}\n');
    expect(problems.map((p) => p.path)).toEqual(['channels."a.b".url']);
  });
});
