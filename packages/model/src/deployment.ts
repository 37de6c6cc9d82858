import {
  cidrContains,
  cidrsOverlap,
  compareIP,
  firstAddress,
  lastAddress,
  parseCidr,
  parseIP,
} from '@calyx/netaddr';
import { ValidationError, type ValidationIssue } from './errors.js';
import type { Subnet } from './network.js';
import type { Endpoint } from './endpoint.js';
import type { SecurityGroup } from './security-group.js';

// Rules that span resources. One address space per deployment: no two subnets overlap.

export function subnetOverlapIssues(
  candidate: Subnet,
  existing: Iterable<Subnet>,
): ValidationIssue[] {
  const c = parseCidr(candidate.cidr);
  const out: ValidationIssue[] = [];
  for (const s of existing) {
    if (s.id === candidate.id) continue;
    if (cidrsOverlap(c, parseCidr(s.cidr))) {
      out.push({
        field: 'cidr',
        value: candidate.cidr,
        problem: `overlaps subnet ${s.id} (${s.cidr})`,
      });
    }
  }
  return out;
}

export function assertNoSubnetOverlap(candidate: Subnet, existing: Iterable<Subnet>): void {
  const issues = subnetOverlapIssues(candidate, existing);
  if (issues.length) throw new ValidationError('Subnet', candidate.id, issues);
}

/**
 * An endpoint's addresses must belong to subnets of its own network, inside their CIDR, and
 * never be the network, broadcast or gateway address.
 */
export function endpointAddressIssues(
  endpoint: Endpoint,
  subnets: ReadonlyMap<string, Subnet>,
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  endpoint.fixedIps.forEach((f, i) => {
    const s = subnets.get(f.subnetId);
    if (!s) {
      out.push({
        field: `fixedIps[${i}].subnetId`,
        value: f.subnetId,
        problem: 'is not an existing subnet',
      });
      return;
    }
    if (s.networkId !== endpoint.networkId) {
      out.push({
        field: `fixedIps[${i}].subnetId`,
        value: f.subnetId,
        problem: `belongs to network ${s.networkId}, not ${endpoint.networkId}`,
      });
      return;
    }
    const c = parseCidr(s.cidr);
    const a = parseIP(f.ipAddress);
    if (!cidrContains(c, a)) {
      out.push({
        field: `fixedIps[${i}].ipAddress`,
        value: f.ipAddress,
        problem: `is outside ${s.cidr}`,
      });
      return;
    }
    if (
      compareIP(a, firstAddress(c)) === 0 ||
      (c.family === 4 && compareIP(a, lastAddress(c)) === 0)
    ) {
      out.push({
        field: `fixedIps[${i}].ipAddress`,
        value: f.ipAddress,
        problem: `is a reserved address of ${s.cidr}`,
      });
    } else if (s.gatewayIp !== null && compareIP(a, parseIP(s.gatewayIp)) === 0) {
      out.push({
        field: `fixedIps[${i}].ipAddress`,
        value: f.ipAddress,
        problem: `is the gateway of ${s.cidr}`,
      });
    }
  });
  return out;
}

export function assertEndpointAddresses(
  endpoint: Endpoint,
  subnets: ReadonlyMap<string, Subnet>,
): void {
  const issues = endpointAddressIssues(endpoint, subnets);
  if (issues.length) throw new ValidationError('Endpoint', endpoint.id, issues);
}

/** Security groups referenced by rules (remote groups) and by endpoints must exist. */
export function securityGroupReferenceIssues(
  group: SecurityGroup,
  known: ReadonlySet<string>,
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  group.rules.forEach((r, i) => {
    if (r.remoteGroupId !== null && r.remoteGroupId !== group.id && !known.has(r.remoteGroupId)) {
      out.push({
        field: `rules[${i}].remoteGroupId`,
        value: r.remoteGroupId,
        problem: 'is not an existing security group',
      });
    }
  });
  return out;
}
