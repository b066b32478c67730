/**
 * Test certificates for the site-to-site channel, made with the `openssl` CLI (OpenSSL 3.0;
 * .ci/setup installs it) in a temporary directory, once per test file (a few tens of ms:
 * EC P-256 keys). Everything is returned as PEM strings; the directory is removed before
 * makeTestCerts() returns.
 *
 * What is made, and why each exists:
 *   - CA "lime-test-ca" (the trusted one) and CA "lime-other-ca" (unrelated, not trusted);
 *   - site-a, site-b: leaf certificates from lime-test-ca, SAN DNS:<name>, usable as TLS
 *     server and client (extendedKeyUsage serverAuth, clientAuth) — a limed both dials
 *     and accepts with the same certificate;
 *   - mallory: from lime-test-ca too, so it passes chain verification and only the name
 *     check can refuse it;
 *   - site-b from lime-other-ca: right name, wrong issuer;
 *   - site-b expired: right name and issuer, valid 2020-01-01 .. 2020-01-02.
 *
 * Leaf certificates are issued with `openssl ca` rather than `openssl x509 -req` because
 * OpenSSL 3.0's x509 cannot set a start date in the past (-not_before came in 3.4), and
 * one issuing path for all leaves keeps them alike in every other respect. Every openssl
 * call gets our own minimal config (-config), so the machine's openssl.cnf does not matter.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key and its certificate, PEM. */
export interface TestIdentity {
  cert: string;
  key: string;
}

export interface TestCerts {
  /** The trusted CA's certificate ("lime-test-ca"). */
  ca: string;
  /** An unrelated CA's certificate ("lime-other-ca"); trusted by nobody in the tests. */
  otherCa: string;
  siteA: TestIdentity;
  siteB: TestIdentity;
  /** Issued by the trusted CA for the name "mallory". */
  mallory: TestIdentity;
  /** "site-b", issued by the other CA. */
  siteBOtherCa: TestIdentity;
  /** "site-b", issued by the trusted CA, valid only on 2020-01-01. */
  siteBExpired: TestIdentity;
}

/** True when an `openssl` binary runs here (tests needing certificates skip or fail without it). */
export function haveOpenssl(): boolean {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  return r.status === 0;
}

function configText(dir: string, caName: string): string {
  return `
[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = ${caName}

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ ca ]
default_ca = test_ca

[ test_ca ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied
`;
}

function leafExtensions(name: string): string {
  return `
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:${name}
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
`;
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

/** One CA: a directory with its key, self-signed certificate and `openssl ca` database. */
class TestCa {
  readonly config: string;

  constructor(
    readonly dir: string,
    name: string,
  ) {
    mkdirSync(join(dir, 'issued'), { recursive: true });
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    this.config = join(dir, 'openssl.cnf');
    writeFileSync(this.config, configText(dir, name));
    openssl([
      'req', '-config', this.config, '-x509', '-new',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'),
      '-days', '3650', '-extensions', 'ca_ext',
    ]);
  }

  get cert(): string {
    return readFileSync(join(this.dir, 'ca.crt'), 'utf8');
  }

  /** Issue a leaf for `name`; `dates` gives an explicit validity window (YYYYMMDDHHMMSSZ). */
  issue(file: string, name: string, dates?: { start: string; end: string }): TestIdentity {
    const base = join(this.dir, file);
    writeFileSync(`${base}.ext`, leafExtensions(name));
    openssl([
      'req', '-config', this.config, '-new',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`,
    ]);
    const validity = dates ? ['-startdate', dates.start, '-enddate', dates.end] : ['-days', '3650'];
    openssl([
      'ca', '-config', this.config, '-batch', '-notext',
      '-in', `${base}.csr`, '-out', `${base}.crt`,
      '-extfile', `${base}.ext`, '-extensions', 'leaf',
      ...validity,
    ]);
    return { cert: readFileSync(`${base}.crt`, 'utf8'), key: readFileSync(`${base}.key`, 'utf8') };
  }
}

/** Make the test CAs and certificates (see the header). Throws with openssl's message on failure. */
export function makeTestCerts(): TestCerts {
  const root = mkdtempSync(join(tmpdir(), 'lime-certs-'));
  try {
    const ca = new TestCa(join(root, 'ca'), 'lime-test-ca');
    const other = new TestCa(join(root, 'other-ca'), 'lime-other-ca');
    return {
      ca: ca.cert,
      otherCa: other.cert,
      siteA: ca.issue('site-a', 'site-a'),
      siteB: ca.issue('site-b', 'site-b'),
      mallory: ca.issue('mallory', 'mallory'),
      siteBOtherCa: other.issue('site-b', 'site-b'),
      siteBExpired: ca.issue('site-b-expired', 'site-b', { start: '20200101000000Z', end: '20200102000000Z' }),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Write a site's TLS files (the CA, its certificate and key) as `${base}.ca.pem`, `.pem`, `.key`; returns limed's `tls` setting. */
export function writeSiteTls(certs: TestCerts, side: 'a' | 'b', base: string): { ca: string; cert: string; key: string } {
  const id = side === 'a' ? certs.siteA : certs.siteB;
  writeFileSync(`${base}.ca.pem`, certs.ca);
  writeFileSync(`${base}.pem`, id.cert);
  writeFileSync(`${base}.key`, id.key, { mode: 0o600 });
  return { ca: `${base}.ca.pem`, cert: `${base}.pem`, key: `${base}.key` };
}
