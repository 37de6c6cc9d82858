import type { Subnet } from '@calyx/model';
import type { Ipam } from './ipam.js';

/**
 * Allocates `perAllocator` addresses with each allocator at once — one host per allocator,
 * `lanes` requests in flight each, as a driver serving many API calls would — and returns
 * them per allocator. For contention tests and benchmarks; handles are `<host>.<i>`.
 */
export async function allocateConcurrently(
  allocators: readonly { host: string; ipam: Ipam }[],
  subnet: Subnet,
  perAllocator: number,
  lanes = 5,
): Promise<string[][]> {
  return Promise.all(
    allocators.map(async ({ host, ipam }) => {
      const out: string[] = [];
      await Promise.all(
        Array.from({ length: lanes }, async (_, lane) => {
          for (let i = lane; i < perAllocator; i += lanes)
            out.push((await ipam.autoAssign({ subnet, handleId: `${host}.${i}`, host })).ip);
        }),
      );
      return out;
    }),
  );
}

/** Releases what `allocateConcurrently` handed out, concurrently per allocator. */
export async function releaseConcurrently(
  allocators: readonly { host: string; ipam: Ipam }[],
  perAllocator: number,
): Promise<void> {
  await Promise.all(
    allocators.map(async ({ host, ipam }) => {
      for (let i = 0; i < perAllocator; i++) await ipam.releaseByHandle(`${host}.${i}`);
    }),
  );
}
