import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `n` distinct TCP ports on 127.0.0.1 that were free a moment ago: all held open together, so
 * the kernel cannot hand the same one out twice (calling `freePort` n times can).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer().unref());
  try {
    return await Promise.all(
      servers.map(
        (srv) =>
          new Promise<number>((resolve, reject) => {
            srv.on('error', reject);
            srv.listen(0, '127.0.0.1', () => {
              const addr = srv.address();
              if (typeof addr === 'object' && addr) resolve(addr.port);
              else reject(new Error('no port'));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(
      servers.map((srv) => new Promise<void>((r) => (srv.listening ? srv.close(() => r()) : r()))),
    );
  }
}
