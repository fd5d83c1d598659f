/** A real forward proxy for tests: Debian's tinyproxy on loopback, with its log to read what went through it. */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'

export type Proxy = { url: string; log: () => Promise<string>; stop: () => Promise<void> }

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  return typeof address === 'object' && address ? address.port : 0
}

export async function startProxy(dir: string): Promise<Proxy> {
  const port = await freePort()
  const logFile = join(dir, 'tinyproxy.log')
  const config = join(dir, 'tinyproxy.conf')
  await writeFile(logFile, '')
  await writeFile(
    config,
    [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 60', `LogFile "${logFile}"`, 'LogLevel Info', 'MaxClients 50',
      'Allow 127.0.0.1', ''].join('\n'),
  )
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', config], { stdio: 'ignore' })
  // Ready once it accepts connections; its own start-up line says so in the log.
  for (let i = 0; i < 100; i++) {
    if ((await readFile(logFile, 'utf8')).includes('listening')) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => readFile(logFile, 'utf8'),
    stop: async () => {
      child.kill('SIGTERM')
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}
