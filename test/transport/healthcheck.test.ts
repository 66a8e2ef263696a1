// The container's HEALTHCHECK command (src/healthcheck.ts): exit 0 while the
// server says SERVING, over cleartext or TLS, and 1 when nothing answers.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../../src/config.ts';
import { createCertificates, type TestCertificates } from '../support/certificates.ts';
import { startTestServer } from '../support/test-server.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the probe as the container does, and says how it exited. */
function probe(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['src/healthcheck.ts'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } });
    child.once('exit', (code) => resolve(code ?? -1));
  });
}

describe('the container health probe', () => {
  let certs: TestCertificates;
  beforeAll(() => {
    certs = createCertificates();
  });
  afterAll(() => certs?.remove());

  it('exits 0 against a serving server in cleartext, and 1 once it is gone', async () => {
    const t = await startTestServer();
    try {
      expect(await probe({ PORT: String(t.server.port) })).toBe(0);
    } finally {
      await t.dispose();
    }
    expect(await probe({ PORT: String(t.server.port) })).toBe(1);
  });

  it('speaks TLS to a server with TLS_CERT_FILE and TLS_KEY_FILE', async () => {
    const files = { TLS_CERT_FILE: certs.server.certFile, TLS_KEY_FILE: certs.server.keyFile };
    const { tls } = configFromEnv({ DATABASE_URL: 'sqlite::memory:', ...files });
    const t = await startTestServer({ config: { tls } });
    try {
      expect(await probe({ PORT: String(t.server.port), ...files })).toBe(0);
      // Cleartext is refused by a TLS port: the probe must not pass by accident.
      expect(await probe({ PORT: String(t.server.port) })).toBe(1);
    } finally {
      await t.dispose();
    }
  });
});
