// The Ed25519 key that signs transcript checkpoints and seals. The private key is a PKCS#8 PEM
// file (mode 0600); its public half is published next to it as `<name>.pub.pem` (SPKI) for
// auditors. An auditor should pin that public key somewhere the warden host cannot write: anyone
// who can replace both the transcripts and the published key can forge a consistent store.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { errnoCode, TranscriptReadError } from './errors.js';

export const DEFAULT_KEY_NAME = 'transcript-ed25519.pem';

export function defaultKeyFile(dataDir: string): string {
  return join(dataDir, 'keys', DEFAULT_KEY_NAME);
}

export function defaultPublicKeyFile(dataDir: string): string {
  return publicKeyFileFor(defaultKeyFile(dataDir));
}

/** `/x/transcript-ed25519.pem` → `/x/transcript-ed25519.pub.pem`. */
export function publicKeyFileFor(keyFile: string): string {
  return keyFile.endsWith('.pem') ? `${keyFile.slice(0, -4)}.pub.pem` : `${keyFile}.pub.pem`;
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** RFC 7638 thumbprint of the public key, put in every signature's `kid`. */
  kid: string;
  keyFile: string;
  publicKeyFile: string;
}

export interface VerifyKey {
  publicKey: KeyObject;
  kid: string;
  /** Where it came from, for reports. */
  source: string;
}

/**
 * Loads the signing key from `keyFile`. When the file is absent and `create` is set, generates a
 * new key there (exclusive create, mode 0600); otherwise a missing key is an error (fail closed).
 * Writes the public key file when it is missing. (The configuration loader checks an explicit
 * key_file the same way, with signingKeyFromPem, so these errors are normally reported there.)
 */
export async function loadSigningKey(keyFile: string, options: { create: boolean }): Promise<SigningKey> {
  let pem: string;
  try {
    pem = readFileSync(keyFile, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || !options.create) {
      throw new TranscriptReadError(`cannot read the transcript signing key ${keyFile}: ${readFailure(err)}`);
    }
    pem = createKeyFile(keyFile);
  }
  const parsed = signingKeyFromPem(pem);
  if ('problem' in parsed) throw new TranscriptReadError(`the transcript signing key ${keyFile} ${parsed.problem}`);
  const privateKey = parsed.privateKey;
  const publicKey = createPublicKey(privateKey);
  const publicKeyFile = publicKeyFileFor(keyFile);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let published: string | undefined;
  try {
    published = readFileSync(publicKeyFile, 'utf8');
  } catch {
    published = undefined;
  }
  if (published !== publicPem) writeFileSync(publicKeyFile, publicPem, { mode: 0o644 });
  return { privateKey, publicKey, kid: await keyId(publicKey), keyFile, publicKeyFile };
}

const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;
const CERTIFICATE_PEM = /-----BEGIN CERTIFICATE-----/;
const ED25519_HINT = 'transcripts are signed with Ed25519 (openssl genpkey -algorithm ed25519 makes one)';
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/**
 * The Ed25519 private key in `pem` (PKCS#8, unencrypted), or why the text is not one, phrased to
 * follow the file's name: `is encrypted; …`, `holds an RSA private key; …`, `holds a public key; …`.
 */
export function signingKeyFromPem(pem: string): { privateKey: KeyObject } | { problem: string } {
  if (ENCRYPTED_PEM.test(pem)) return { problem: 'is encrypted; warden needs an unencrypted key (protect the file with permissions instead)' };
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    if (CERTIFICATE_PEM.test(pem)) return { problem: 'holds a certificate, not a private key' };
    try {
      createPublicKey(pem);
      return { problem: 'holds a public key; key_file must name the private key (warden writes its public key next to it as *.pub.pem)' };
    } catch {
      return { problem: 'holds no usable PEM private key (an Ed25519 private key in PKCS#8 PEM, "-----BEGIN PRIVATE KEY-----", was expected)' };
    }
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') return { problem: `holds ${keyTypeName(privateKey)} private key; ${ED25519_HINT}` };
  return { privateKey };
}

/** "an RSA", "an EC (P-256)", "an X25519", … for messages. */
function keyTypeName(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  switch (type) {
    case 'rsa':
      return 'an RSA';
    case 'rsa-pss':
      return 'an RSA-PSS';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === undefined ? 'an EC' : `an EC (${CURVES[curve] ?? curve})`;
    }
    case 'dsa':
      return 'a DSA';
    case 'x25519':
      return 'an X25519';
    case 'x448':
      return 'an X448';
    case 'ed448':
      return 'an Ed448';
    default:
      return type === undefined ? 'a non-asymmetric' : `a ${type}`;
  }
}

/** Why a key file could not be read, for messages. */
function readFailure(err: unknown): string {
  switch (errnoCode(err)) {
    case 'ENOENT':
      return 'no such file (only the default key file is generated; an explicit transcripts.key_file must exist)';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return errnoCode(err) ?? String(err);
  }
}

function createKeyFile(keyFile: string): string {
  try {
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  } catch (err) {
    // EEXIST/ENOTDIR: a file where a directory of the path should be (e.g. data_dir is a file).
    const code = errnoCode(err);
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a part of the path is not a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? String(err));
    throw new TranscriptReadError(`cannot create the transcript signing key ${keyFile}: ${why}`);
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    writeFileSync(keyFile, pem, { mode: 0o600, flag: 'wx' });
    return pem;
  } catch (err) {
    // Another process created it first: use theirs.
    if (errnoCode(err) === 'EEXIST') return readFileSync(keyFile, 'utf8');
    throw new TranscriptReadError(`cannot create the transcript signing key ${keyFile}: ${errnoCode(err) ?? String(err)}`);
  }
}

/** Loads a public key (SPKI PEM, or a private key PEM whose public half is used) for verification. */
export async function loadVerifyKey(file: string): Promise<VerifyKey> {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TranscriptReadError(`cannot read public key ${file}: ${errnoCode(err) ?? String(err)}`);
  }
  return verifyKeyFromPem(pem, file);
}

export async function verifyKeyFromPem(pem: string, source = 'PEM'): Promise<VerifyKey> {
  let publicKey: KeyObject;
  try {
    publicKey = pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch {
    throw new TranscriptReadError(`${source} does not hold a PEM public key`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new TranscriptReadError(`${source} holds a ${publicKey.asymmetricKeyType ?? 'non-asymmetric'} key; transcripts are signed with Ed25519`);
  }
  return { publicKey, kid: await keyId(publicKey), source };
}

export async function keyId(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey));
}
