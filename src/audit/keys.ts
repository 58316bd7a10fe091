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
 * Writes the public key file when it is missing.
 */
export async function loadSigningKey(keyFile: string, options: { create: boolean }): Promise<SigningKey> {
  let pem: string;
  try {
    pem = readFileSync(keyFile, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || !options.create) {
      throw new TranscriptReadError(`cannot read the transcript signing key ${keyFile}: ${errnoCode(err) ?? String(err)}`);
    }
    pem = createKeyFile(keyFile);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new TranscriptReadError(`${keyFile} does not hold a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TranscriptReadError(`${keyFile} holds a ${privateKey.asymmetricKeyType ?? 'non-asymmetric'} key; transcripts are signed with Ed25519`);
  }
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

function createKeyFile(keyFile: string): string {
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
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
