// The admin listener speaks plain HTTP and receives bearer tokens: warden warns at start when it is
// bound where other hosts can reach it. (Tests may only listen on 127.0.0.1, so the rule is tested.)
import { describe, expect, it } from 'vitest';
import { adminExposureWarning } from '../../src/admin/server.js';

describe('admin listener exposure', () => {
  it('warns for wildcard and routable addresses', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.20', 'fe80::1']) {
      expect(adminExposureWarning(host)).toBe(
        `the admin listener on ${host} can be reached from other hosts and speaks plain HTTP: bearer tokens (approvers, auditors, POST /tickets) would cross the network in clear; keep it on 127.0.0.1 or put a TLS-terminating proxy in front of it`,
      );
    }
  });

  it('says nothing for loopback', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) expect(adminExposureWarning(host)).toBeUndefined();
  });
});
