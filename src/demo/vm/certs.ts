/**
 * Certificates for the demo's two sites (the control channel is mutually authenticated
 * TLS outside loopback): one throw-away CA and a certificate per site name, EC P-256, made
 * with the `openssl` CLI into `dir`. Returns the `tls` section of each site's configuration.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SiteTls {
  ca: string;
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

export function makeSiteCerts(dir: string, sites: readonly string[]): Record<string, SiteTls> {
  mkdirSync(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(
    cnf,
    [
      '[ req ]',
      'distinguished_name = dn',
      'prompt = no',
      '[ dn ]',
      'CN = lime-vm-demo',
      '[ ca_ext ]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-config', cnf, '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '7', '-subj', '/CN=lime-vm-demo-ca', '-extensions', 'ca_ext']);
  const out: Record<string, SiteTls> = {};
  for (const name of sites) {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.pem`);
    const ext = join(dir, `${name}.ext`);
    writeFileSync(
      ext,
      [
        '[ leaf ]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = serverAuth, clientAuth',
        `subjectAltName = DNS:${name}`,
        '',
      ].join('\n'),
    );
    openssl(['req', '-config', cnf, '-new', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '7', '-extfile', ext, '-extensions', 'leaf']);
    out[name] = { ca, cert, key };
  }
  return out;
}
