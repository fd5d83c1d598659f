/** Turning zod issues into one message a person can act on: `dot.path: message; …`. */
import type { z } from 'zod'

/** A DNS label: what Kubernetes accepts as a namespace, and berth as an environment name. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
}
