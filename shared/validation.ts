/** Turning zod issues into one message a person can act on: `dot.path: message; …`. */
import type { z } from 'zod'

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
}
