/**
 * Certificates for the test ground, made with the machine's openssl: one CA that signs the
 * serving certificates (apiserver, TLS registry) and the client certificates users
 * authenticate with (the apiserver trusts it as its client CA). Short-lived on purpose.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'

export type KeyPair = { cert: string; key: string }

const DAYS = '3'

async function openssl(args: string[], cwd: string): Promise<void> {
  await execa('openssl', args, { cwd, stdin: 'ignore' })
}

/** A self-signed CA in `dir` (ca.crt, ca.key). */
export async function makeCa(dir: string): Promise<KeyPair> {
  const pair = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pair.key,
      '-out',
      pair.cert,
      '-days',
      DAYS,
      '-subj',
      '/CN=berth-testground-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  )
  return pair
}

export type CertRequest = {
  /** File stem: `<name>.crt`, `<name>.key`. */
  name: string
  /** For a client certificate the apiserver reads this as the user name. */
  commonName: string
  /** For a client certificate, the apiserver's groups (`system:masters` is cluster admin). */
  groups?: readonly string[]
  usage: 'server' | 'client'
  /** More addresses a server certificate is valid for (the real node's bridge, the kubernetes Service). */
  ips?: readonly string[]
  /** More DNS names a server certificate is valid for. */
  dns?: readonly string[]
}

/** Issue a certificate signed by `ca` into `dir`. Server certificates are valid for 127.0.0.1 and localhost. */
export async function issueCert(ca: KeyPair, dir: string, request: CertRequest): Promise<KeyPair> {
  const pair = { cert: join(dir, `${request.name}.crt`), key: join(dir, `${request.name}.key`) }
  const csr = join(dir, `${request.name}.csr`)
  const ext = join(dir, `${request.name}.ext`)
  const subject = [
    ...(request.groups ?? []).map((g) => `/O=${escapeSubject(g)}`),
    `/CN=${escapeSubject(request.commonName)}`,
  ].join('')
  const extensions = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment']
  if (request.usage === 'server') {
    const names = [
      'IP:127.0.0.1',
      'DNS:localhost',
      ...(request.ips ?? []).map((ip) => `IP:${ip}`),
      ...(request.dns ?? []).map((name) => `DNS:${name}`),
    ]
    extensions.push('extendedKeyUsage=serverAuth', `subjectAltName=${names.join(',')}`)
  } else {
    extensions.push('extendedKeyUsage=clientAuth')
  }
  await writeFile(ext, `${extensions.join('\n')}\n`)
  await openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pair.key,
      '-out',
      csr,
      '-subj',
      subject,
    ],
    dir,
  )
  // A random serial instead of a serial file: tests mint certificates in parallel.
  const serial = `0x${randomBytes(12).toString('hex')}`
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      serial,
      '-days',
      DAYS,
      '-out',
      pair.cert,
      '-extfile',
      ext,
    ],
    dir,
  )
  return pair
}

/** RSA key pair the apiserver signs and verifies service-account tokens with. */
export async function makeServiceAccountKeys(dir: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, 'sa.key')
  const pub = join(dir, 'sa.pub')
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], dir)
  await openssl(['pkey', '-in', key, '-pubout', '-out', pub], dir)
  return { key, pub }
}

// openssl's -subj syntax treats '/' and '=' inside values as separators.
function escapeSubject(value: string): string {
  return value.replace(/[/=\\]/g, (c) => `\\${c}`)
}
