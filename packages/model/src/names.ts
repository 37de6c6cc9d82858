import { z } from 'zod';

/** Ids and names that end up in keys, interface names, chain names and file names. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const idSchema = z.string({ error: 'must be a string' }).regex(ID_PATTERN, {
  error: 'is not a valid id (1-128 chars of [A-Za-z0-9_.-], starting alphanumeric)',
});

/** Host names: DNS-label-ish, used in keys and BGP protocol names. */
export const HOST_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$/;
export const hostNameSchema = z.string({ error: 'must be a string' }).regex(HOST_PATTERN, {
  error: 'is not a valid host name (1-63 chars of [A-Za-z0-9_.-], starting alphanumeric)',
});

/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace. */
export const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;
export function isValidInterfaceName(name: string): boolean {
  return INTERFACE_NAME_PATTERN.test(name) && name !== '.' && name !== '..';
}
export const interfaceNameSchema = z
  .string({ error: 'must be a string' })
  .refine(isValidInterfaceName, {
    error: 'is not a valid interface name (1-15 chars of [A-Za-z0-9_.-])',
  });

/** The endpoint's interface on the host: `tap` + the first 11 characters of the port id. */
export function tapNameFor(endpointId: string): string {
  return `tap${endpointId.slice(0, 11)}`;
}

/** Calico's DHCP interface name for a network: `ns-` + first 11 characters of the network id. */
export function dhcpInterfaceNameFor(networkId: string): string {
  return `ns-${networkId.slice(0, 11)}`;
}
