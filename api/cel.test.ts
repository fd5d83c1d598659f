import { describe, expect, it } from 'vitest'
import { celProblem, compileCel } from './cel.ts'
import { specSchema } from './environment.ts'

const READY = 'status.conditions.filter(e, e.type == \'Ready\').all(e, e.status == \'True\')'

describe('CEL health expressions: checked before they run, evaluated by @bufbuild/cel', () => {
  it('accepts what reads the object\'s fields, comprehension variables included', () => {
    expect(celProblem(READY)).toBeUndefined()
    expect(celProblem('has(status.phase) && status.phase == \'Ready\' && type(metadata.generation) == double')).toBeUndefined()
  })

  it('refuses what does not parse, and names it', () => {
    expect(celProblem('status.conditions.filter(e, ')).toMatch(/^is not valid CEL: /)
  })

  it('refuses a name the object does not have (a typo of status)', () => {
    expect(celProblem('stauts.ready == true')).toMatch(/names "stauts", which an object does not have/)
    // A comprehension's variable is bound only inside it.
    expect(celProblem('status.conditions.all(c, c.status == \'True\') && c.type == \'x\'')).toMatch(/names "c"/)
  })

  it('evaluates to true or false; a missing field or a non-boolean is an answer it cannot give', () => {
    const ready = compileCel(READY)
    const object = (status: string): object => ({ metadata: {}, status: { conditions: [{ type: 'Ready', status }] } })
    expect(ready(object('True'))).toEqual({ value: true })
    expect(ready(object('False'))).toEqual({ value: false })
    expect(ready({ metadata: {} })).toHaveProperty('error')
    expect(compileCel('status.phase')({ status: { phase: 'x' } })).toEqual({
      error: 'evaluated to something other than true or false',
    })
  })

  it('the spec refuses a bad expression as invalid, naming the field and the expression', () => {
    const parsed = specSchema.safeParse({
      source: { repository: 'oci://r.example/app' },
      version: '1.0.0',
      health: { exprs: [{ apiVersion: 'shop.example.com/v1', kind: 'Widget', current: 'status.ready ==' }] },
    })
    expect(parsed.success).toBe(false)
    const issue = parsed.error?.issues[0]
    expect(issue?.path).toEqual(['health', 'exprs', 0, 'current'])
    expect(issue?.message).toContain('"status.ready ==" is not valid CEL')
  })
})
