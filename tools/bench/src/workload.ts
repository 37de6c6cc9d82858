/** Concurrent lanes of the datastore benchmarks (what a busy driver or many agents look like). */
export const LANES = 16;

/** Runs `fn` for i = 0..n-1 spread over LANES concurrent lanes; resolves with the elapsed ms. */
export async function lanes(
  n: number,
  fn: (lane: number, i: number) => Promise<unknown>,
): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let i = lane; i < n; i += LANES) await fn(lane, i);
    }),
  );
  return performance.now() - t0;
}

/** A realistic stored value: endpoint number `i` as the datastore holds it. */
export const endpointValue = (i: number): string =>
  JSON.stringify({
    id: `port-${i}`,
    host: 'compute-1',
    networkId: 'net',
    mac: `fa:16:3e:00:${(i >> 8) & 255}:${i & 255}`,
    fixedIps: [{ subnetId: 'sub', ipAddress: `10.65.${(i >> 8) & 255}.${i & 255}` }],
    securityGroupIds: ['default'],
    allowedAddressPairs: [],
    adminStateUp: true,
    portSecurityEnabled: true,
    interfaceName: `tap${String(i).padStart(11, '0')}`,
  });
