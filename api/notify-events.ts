/** What `spec.notify` receivers can be told: the notification events, by name. */
export const NOTIFY_EVENTS = [
  'Applied',
  'Ready',
  'Failed',
  'RolledBack',
  'DriftCorrected',
  'Suspended',
  'Resumed',
  'Overridden',
  'Held',
] as const
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number]
