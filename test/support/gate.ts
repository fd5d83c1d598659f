/** A piece of work a test finishes when it chooses: `promise` settles once `open` is called. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}
