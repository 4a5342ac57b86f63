import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate for 127.0.0.1 and localhost, made for one test file. */
export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate itself, for clients to trust as their CA. */
  readonly ca: Buffer;
  /** The settings that serve HTTPS with it. */
  readonly settings: { TLS_CERT_FILE: string; TLS_KEY_FILE: string };
  remove(): void;
}

/**
 * Makes a fresh key and certificate with openssl (a P-256 key: quick to make) in a temporary
 * directory; no key is ever committed.
 */
export function selfSignedCertificate(commonName = 'localhost'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'streamhub-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return {
    certFile,
    keyFile,
    ca: readFileSync(certFile),
    settings: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
