import { describe, expect, it } from 'vitest'
import type { Attestation, HealthPredicate } from '../../shared/attestations.ts'
import { judgeAttested, soaked } from './gate.ts'

const DIGEST = `sha256:${'a'.repeat(64)}`
const NOW = new Date('2026-12-02T12:00:00Z')
const word = (over: Partial<HealthPredicate> = {}): Attestation => ({
  key: 'cosign.pub',
  keyId: 'sha256:0123456789abcdef',
  predicate: {
    cluster: 'eu-1',
    namespace: 'shop',
    environment: 'staging',
    version: '1.2.0',
    digest: DIGEST,
    result: 'healthy',
    readySince: '2026-12-02T11:48:00Z',
    attestedAt: '2026-12-02T11:48:05Z',
    berthVersion: '0.1.0',
    ...over,
  },
})
const found = (verified: Attestation[], refused: string[] = []): Parameters<typeof judgeAttested>[0] => ({
  verified,
  refused,
  where: 'r/app:sha256-aaa.att',
})

describe('the attested promotion gate', () => {
  it('lets through a healthy attestation from the named identity once soaked, and says how long is left before', () => {
    expect(judgeAttested(found([word()]), 'eu-1/shop/staging', DIGEST, 10 * 60_000, NOW)).toEqual({ pass: true })
    expect(judgeAttested(found([word()]), 'eu-1/shop/staging', DIGEST, 30 * 60_000, NOW)).toEqual({
      pass: false,
      message: 'healthy on eu-1/shop/staging for 12m of 30m',
      retryMs: 18 * 60_000,
    })
  })

  it('takes the identity\'s newest word: failed after healthy blocks, healthy again after failed passes', () => {
    const failed = word({ result: 'failed', attestedAt: '2026-12-02T11:50:00Z' })
    expect(judgeAttested(found([word(), failed]), 'eu-1/shop/staging', DIGEST, 0, NOW)).toEqual({
      pass: false,
      message: '1.2.0 failed upstream on eu-1/shop/staging (attested 2026-12-02T11:50:00Z)',
    })
    const again = word({ readySince: '2026-12-02T11:55:00Z', attestedAt: '2026-12-02T11:55:01Z' })
    expect(judgeAttested(found([word(), failed, again]), 'eu-1/shop/staging', DIGEST, 0, NOW)).toEqual({ pass: true })
  })

  it('names what is missing: no attestation, only another identity\'s, none that verifies', () => {
    expect(judgeAttested(found([]), 'eu-1/shop/staging', DIGEST, 0, NOW)).toMatchObject({
      message: `no attestation of ${DIGEST} from eu-1/shop/staging (r/app:sha256-aaa.att)`,
    })
    expect(judgeAttested(found([word({ cluster: 'us-1' })]), 'eu-1/shop/staging', DIGEST, 0, NOW)).toMatchObject({
      message: `${DIGEST} is attested by us-1/shop/staging, not by eu-1/shop/staging`,
    })
    expect(
      judgeAttested(found([], ['bad or untrusted signature (signed by no trusted key, or altered)']), 'eu-1/shop/staging', DIGEST, 0, NOW),
    ).toMatchObject({ message: expect.stringContaining('holds: bad or untrusted signature') })
  })

  it('soaks the same-cluster form alike', () => {
    expect(soaked(new Date('2026-12-02T11:59:00Z'), 5 * 60_000, NOW, 'staging')).toEqual({
      pass: false,
      message: 'healthy on staging for 1m of 5m',
      retryMs: 4 * 60_000,
    })
  })
})
