import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { open, pae, seal } from './dsse.ts'

const pair = (): { key: ReturnType<typeof generateKeyPairSync>['privateKey']; pub: { name: string; key: ReturnType<typeof generateKeyPairSync>['publicKey'] } } => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { key: privateKey, pub: { name: 'cosign.pub', key: publicKey } }
}

describe('DSSE envelopes', () => {
  it('encodes the pre-authentication string as the DSSE spec\'s own example', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    )
  })

  it('opens what it sealed, with the key that verifies', () => {
    const { key, pub } = pair()
    const opened = open(seal('application/vnd.in-toto+json', Buffer.from('{"a":1}'), key), 'application/vnd.in-toto+json', [pub])
    expect(opened).toEqual({ body: Buffer.from('{"a":1}'), key: pub })
  })

  it('refuses another key, an altered payload, another payload type and what is no envelope', () => {
    const { key, pub } = pair()
    const other = pair()
    const sealed = seal('application/vnd.in-toto+json', Buffer.from('{"result":"healthy"}'), key)
    expect(open(sealed, 'application/vnd.in-toto+json', [other.pub])).toEqual({
      refused: 'signed by no trusted key, or altered',
    })
    const envelope = JSON.parse(sealed.toString()) as { payload: string }
    envelope.payload = Buffer.from('{"result":"failed!"}').toString('base64')
    expect(open(Buffer.from(JSON.stringify(envelope)), 'application/vnd.in-toto+json', [pub])).toEqual({
      refused: 'signed by no trusted key, or altered',
    })
    expect(open(sealed, 'text/plain', [pub])).toMatchObject({ refused: expect.stringContaining('payload type') })
    expect(open(Buffer.from('nope'), 'application/vnd.in-toto+json', [pub])).toEqual({ refused: 'not a DSSE envelope' })
  })
})
