// Certificates for the TLS tests, made by the openssl binary in a temporary
// directory: a CA, a server certificate for 127.0.0.1 and localhost and a
// client certificate signed by it, and a client certificate from a CA the
// server does not trust.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its private key: the PEM files and their contents. */
export interface KeyPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCertificates {
  /** The CA that signed `server` and `client`. */
  caFile: string;
  ca: Buffer;
  server: KeyPair;
  client: KeyPair;
  /** A client certificate signed by another CA. */
  stranger: KeyPair;
  /** Deletes the files. */
  remove(): void;
}

export function createCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'crm-tls-'));
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  /** A new P-256 key, `-nodes`: unencrypted. */
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const authority = (name: string) => {
    openssl('req', '-x509', ...newKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`), '-days', '2', '-subj', `/CN=crm-distributor ${name}`);
    return { certFile: path(`${name}.pem`), keyFile: path(`${name}.key`) };
  };
  const issue = (name: string, signer: { certFile: string; keyFile: string }, extensions: string): KeyPair => {
    openssl('req', '-new', ...newKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', `/CN=crm-distributor ${name}`);
    writeFileSync(path(`${name}.ext`), extensions);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', signer.certFile, '-CAkey', signer.keyFile, '-CAcreateserial', '-days', '2', '-extfile', path(`${name}.ext`), '-out', path(`${name}.pem`));
    return { certFile: path(`${name}.pem`), keyFile: path(`${name}.key`), cert: readFileSync(path(`${name}.pem`)), key: readFileSync(path(`${name}.key`)) };
  };
  try {
    const ca = authority('test-ca');
    const otherCa = authority('other-ca');
    const leaf = 'basicConstraints = CA:FALSE\n';
    return {
      caFile: ca.certFile,
      ca: readFileSync(ca.certFile),
      server: issue('server', ca, `${leaf}subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n`),
      client: issue('client', ca, `${leaf}extendedKeyUsage = clientAuth\n`),
      stranger: issue('stranger', otherCa, `${leaf}extendedKeyUsage = clientAuth\n`),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
