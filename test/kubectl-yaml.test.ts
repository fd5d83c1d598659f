/**
 * Manifests mean what kubectl says they mean. The oracle is the real kubectl: for a table of
 * tricky plain scalars (YAML 1.1 booleans, octal, binary, underscores, sexagesimal-looking text,
 * infinities, dates, nulls), as values and as keys, berth's reading of a file must equal
 * `kubectl create --dry-run=client -o json -f` of the same file — or, where kubectl cannot read it,
 * berth must refuse it naming file, document and field.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseManifests } from '../shared/manifests.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)

const SCALARS = [
  'on', 'off', 'On', 'OFF', 'yes', 'no', 'Yes', 'NO', 'y', 'n', 'Y', 'N', 'true', 'False', 'TRUE',
  '~', 'null', 'Null', 'NULL', '0777', '012', '08', '09', '00', '0o17', '0x1F', '0X1f', '0b101', '-0b11', '1_000',
  '0x_1F', '+12', '-0', '-012', '1:20', '190:20:30', '1e3', '1.5e+3', '.5', '5.', '1_0.5', '0.1_0', '2024-01-02',
  '2024-01-02T10:00:00Z', '12:30', '1.2.3', 'v1', '0.0.0.0', '9007199254740991',
  '"on"', '\'0777\'', '=', '<<', '+', '.', '0x', '1e', '--1', '+.5', '-.5e-3',
]
const REFUSED = ['.inf', '-.Inf', '+.INF', '.nan', '.NaN']

async function kubectlReads(file: string): Promise<unknown> {
  const out = await g.kubectl(['create', '--dry-run=client', '--validate=false', '-o', 'json', '-f', file])
  return (JSON.parse(out) as { data?: unknown }).data
}

describe('manifests mean what kubectl says they mean', () => {
  it.each(SCALARS)('the value %s', async (scalar) => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: ${scalar}\n`
    const file = join(g.scratch(), 'value.yaml')
    await writeFile(file, text)
    const berth = parseManifests(text, 'value.yaml')[0]?.object.data
    expect({ scalar, berth }).toEqual({ scalar, berth: await kubectlReads(file) })
  })

  // (A key past int64, 0xFFFFFFFFFFFFFFFF, kubectl refuses outright: unsupported map key of type uint64.)
  const KEYS = [...SCALARS, '9223372036854775807']
  it.each(KEYS.filter((s) => !['~', 'null', 'Null', 'NULL', '<<', '='].includes(s)))('the key %s', async (scalar) => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  ${scalar}: v\n`
    const file = join(g.scratch(), 'key.yaml')
    await writeFile(file, text)
    const berth = parseManifests(text, 'key.yaml')[0]?.object.data
    expect({ scalar, berth }).toEqual({ scalar, berth: await kubectlReads(file) })
  })

  it.each(['9223372036854775807', '0xFFFFFFFFFFFFFFFF'])('the value %s, past what berth carries exactly, is refused', (scalar) => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: ${scalar}\n`
    expect(() => parseManifests(text, 'big.yaml')).toThrow(/big\.yaml#1: data\.k: \d+ is a number kubectl cannot send/)
  })

  it.each(REFUSED)('%s, which kubectl cannot read, is refused naming file, document and field', async (scalar) => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: ${scalar}\n`
    const file = join(g.scratch(), 'refused.yaml')
    await writeFile(file, text)
    await expect(kubectlReads(file)).rejects.toThrow(/unsupported value/)
    expect(() => parseManifests(text, 'app/refused.yaml')).toThrow(/app\/refused\.yaml#2: data\.k: .* is a number kubectl cannot send/)
  })
})
