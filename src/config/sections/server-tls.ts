// `tls:` — the certificate warden presents to clients (PostgreSQL SSLRequest, TDS PRELOGIN).
//
//   tls:
//     cert_file: certs/warden.crt   # PEM chain, leaf first; relative to this file
//     key_file: certs/warden.key    # PEM private key, unencrypted
// or
//   tls:
//     self_signed: true             # generate one at start (localhost, 127.0.0.1, ::1)
import type { TlsServerConfig } from '../types.js';
import type { Field } from '../validate.js';
import { readCertificates, readPrivateKey } from './pem.js';

export function readServerTls(field: Field): TlsServerConfig | undefined {
  if (!field.present) return undefined;
  const s = field.section(['cert_file', 'key_file', 'self_signed']);
  if (!s) return undefined;
  const selfSignedField = s.get('self_signed');
  const selfSigned = selfSignedField.boolean();
  if (selfSignedField.present && selfSigned === undefined) return undefined;
  if (selfSigned === true) {
    s.forbid('cert_file', 'cannot be combined with self_signed: true (use one or the other)');
    s.forbid('key_file', 'cannot be combined with self_signed: true (use one or the other)');
    return { selfSigned: true };
  }
  const certField = s.need('cert_file', ' (or set self_signed: true)');
  const keyField = s.need('key_file', ' (or set self_signed: true)');
  const cert = readCertificates(certField, 'certificate');
  const key = readPrivateKey(keyField);
  if (!cert || !key) return undefined;
  const leaf = cert.certificates[0];
  if (leaf && !leaf.checkPrivateKey(key.key)) {
    return keyField.fail(`does not match the first certificate in tls.cert_file`);
  }
  return { cert: cert.pem, key: key.pem, certFile: cert.path, keyFile: key.path };
}
