// PEM files named by *_file keys, read and parsed at load time so a wrong file is reported with
// its key, not at the first TLS handshake. Contents never appear in messages.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { signingKeyFromPem } from '../../audit/keys.js';
import type { Field } from '../validate.js';

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const ENCRYPTED_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;

export interface CertificateFile {
  path: string;
  pem: string;
  certificates: X509Certificate[];
}

export interface PrivateKeyFile {
  path: string;
  pem: string;
  key: KeyObject;
}

/** One or more PEM certificates (a chain, or a CA bundle). */
export function readCertificates(field: Field, what: string): CertificateFile | undefined {
  const file = field.textFile(what);
  if (!file) return undefined;
  const blocks = file.text.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    return field.fail(`${file.shown} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      return field.fail(`${file.shown}: certificate ${index + 1} of ${blocks.length} is not a valid X.509 certificate`);
    }
  }
  return { path: file.path, pem: file.text, certificates };
}

/** An unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1). */
export function readPrivateKey(field: Field): PrivateKeyFile | undefined {
  const file = field.textFile('private key');
  if (!file) return undefined;
  if (ENCRYPTED_KEY.test(file.text)) {
    return field.fail(`${file.shown} is encrypted; warden needs an unencrypted key (protect the file with permissions instead)`);
  }
  try {
    return { path: file.path, pem: file.text, key: createPrivateKey(file.text) };
  } catch {
    return field.fail(`${file.shown} holds no usable PEM private key`);
  }
}

/**
 * The transcript signing key named by an explicit `transcripts.key_file`: it must exist (only the
 * default path is generated, at start) and hold an unencrypted Ed25519 PKCS#8 private key.
 * Returns the absolute path; the key itself is loaded again when warden starts.
 */
export function readSigningKeyFile(field: Field): string | undefined {
  const file = field.textFile('transcript signing key', undefined, '(only the default key file is generated; an explicit key_file must exist)');
  if (!file) return undefined;
  const parsed = signingKeyFromPem(file.text);
  return 'problem' in parsed ? field.fail(`${file.shown} ${parsed.problem}`) : file.path;
}
