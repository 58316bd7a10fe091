// Self-signed certificates for the demo and the test harness. Production deployments point the
// config at real certificate files; this exists so `warden demo` and `npm test` need no openssl.
import { generate } from 'selfsigned';

export interface CertificatePair {
  /** PEM private key (PKCS#8). */
  key: string;
  /** PEM certificate. It is its own CA, so it doubles as the `ca` for verify-full clients. */
  cert: string;
}

/** A self-signed certificate valid for localhost, 127.0.0.1 and ::1, for `days` days. */
export async function selfSignedCertificate(commonName = 'localhost', days = 365): Promise<CertificatePair> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + days * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}
