import { AbortedError, silentLogger, type Logger } from '@calyx/core';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  ResourceClient,
  decodeResource,
  type Datastore,
  type ResourceTxn,
  type KeyValue,
  type Stored,
} from '@calyx/datastore';
import {
  assertEndpointAddresses,
  assertNoSubnetOverlap,
  endpointAddressIssues,
  keys,
  prefixes,
  securityGroupReferenceIssues,
  ValidationError,
  type BgpConfiguration,
  type BgpConfigurationInput,
  type BgpPeer,
  type BgpPeerInput,
  type Endpoint,
  type EndpointLocation,
  type EndpointInput,
  type EndpointStatus,
  type HostStatus,
  type FixedIp,
  type Host,
  type HostInput,
  type IpPool,
  type IpPoolInput,
  type Network,
  type NetworkInput,
  type SecurityGroup,
  type SecurityGroupInput,
  type Subnet,
  type SubnetInput,
} from '@calyx/model';
import {
  AddressAllocatedError,
  AddressNotAssignableError,
  Ipam,
  endpointOfHandle,
  portHandle,
  subnetPool,
  subnetPoolName,
} from '@calyx/ipam';
import { cidrContains, parseCidr, parseIP } from '@calyx/netaddr';
import {
  AddressInUseError,
  HostUnavailableError,
  ImmutableFieldError,
  PortStatusTimeoutError,
  ResourceExistsError,
  ResourceInUseError,
  ResourceNotFoundError,
  TooManyConflictsError,
} from './errors.js';
import {
  SUBNET_GUARD,
  resyncDatastore,
  type OrchestratorSnapshot,
  type ResyncOptions,
  type ResyncReport,
} from './resync.js';

/** A fixed IP as requested: an address, a subnet to allocate from, or both. */
export interface FixedIpRequest {
  subnetId?: string;
  ipAddress?: string;
}

/** What callers give for a port: fixed IPs may omit addresses (allocated) or be omitted entirely. */
export type PortInput = Omit<EndpointInput, 'fixedIps'> & { fixedIps?: FixedIpRequest[] };

export interface DriverOptions {
  logger?: Logger;
  /** Attempts for read-modify-write operations that lose a race. Default 8. */
  maxAttempts?: number;
  /**
   * Refuse to bind a port to a host whose agent has no live liveness record. Default true;
   * turn it off only where no agents run (unit tests of an orchestrator, offline imports).
   */
  requireLiveAgent?: boolean;
}

/** A port's status as its host's agent reported it; `unknown` when there is no report (yet). */
export interface PortStatusEvent {
  portId: string;
  host: string;
  status: EndpointStatus['status'] | 'unknown';
  reason: string;
  updatedAt: string | undefined;
  /**
   * The port revision (its Endpoint record's modRevision) the report describes; undefined
   * without a report or from an agent that does not say.
   */
  reportedRevision: bigint | undefined;
}

/** A port's status read together with the port itself. */
export interface PortStatus extends PortStatusEvent {
  /** The port's current revision. */
  portRevision: bigint;
  /**
   * The agent has not reported on this revision of the port yet (it was changed, or deleted
   * and created again, after the report): the status describes an earlier port.
   */
  stale: boolean;
}

/**
 * The orchestrator-facing API. Every operation validates everything before writing, writes
 * multi-key changes in one transaction, and reports failures as typed errors.
 */
export class CalyxDriver {
  readonly client: ResourceClient;
  readonly ipam: Ipam;
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly requireLiveAgent: boolean;

  constructor(
    readonly store: Datastore,
    opts: DriverOptions = {},
  ) {
    this.client = new ResourceClient(store);
    this.ipam = new Ipam(store, opts.logger ? { logger: opts.logger } : {});
    this.logger = (opts.logger ?? silentLogger).child({ component: 'driver' });
    this.maxAttempts = opts.maxAttempts ?? 8;
    this.requireLiveAgent = opts.requireLiveAgent ?? true;
  }

  /** Runs a read-modify-write until it commits without a conflicting concurrent write. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= this.maxAttempts) {
          if (e instanceof ConflictError) throw new TooManyConflictsError(what, attempt);
          throw e;
        }
        this.logger.debug({ what, attempt }, 'conflict, retrying');
      }
    }
  }

  private async require<K extends 'Network' | 'Subnet' | 'SecurityGroup' | 'Host'>(
    kind: K,
    key: string,
    id: string,
  ) {
    const r = await this.client.get(kind, key);
    if (!r) throw new ResourceNotFoundError(kind, id);
    return r;
  }

  // ---------------------------------------------------------------- networks

  async createNetwork(input: NetworkInput): Promise<Network> {
    try {
      return (await this.client.create('Network', input)).value;
    } catch (e) {
      if (e instanceof AlreadyExistsError) throw new ResourceExistsError('Network', input.id);
      throw e;
    }
  }

  async updateNetwork(input: NetworkInput): Promise<Network> {
    const next = this.client.validate('Network', input);
    return this.retrying(`update network ${next.id}`, async () => {
      const cur = await this.require('Network', keys.network(next.id), next.id);
      return (await this.client.update('Network', next, { expectedModRevision: cur.modRevision }))
        .value;
    });
  }

  async deleteNetwork(id: string): Promise<void> {
    const cur = await this.require('Network', keys.network(id), id);
    const subnets = (await this.listSubnets())
      .filter((s) => s.networkId === id)
      .map((s) => `subnet ${s.id}`);
    const ports = (await this.listPorts())
      .filter((p) => p.networkId === id)
      .map((p) => `port ${p.id}`);
    if (subnets.length || ports.length)
      throw new ResourceInUseError('Network', id, [...subnets, ...ports]);
    await this.client.delete('Network', keys.network(id), { expectedModRevision: cur.modRevision });
  }

  async getNetwork(id: string): Promise<Network | undefined> {
    return (await this.client.get('Network', keys.network(id)))?.value;
  }

  async listNetworks(): Promise<Network[]> {
    return (await this.client.list('Network')).items.map((i) => i.value);
  }

  // ---------------------------------------------------------------- subnets

  async createSubnet(input: SubnetInput): Promise<Subnet> {
    const subnet = this.client.validate('Subnet', input);
    const pool = subnetPool(subnet);
    return this.retrying(`create subnet ${subnet.id}`, async () => {
      await this.require('Network', keys.network(subnet.networkId), subnet.networkId);
      const guard = await this.store.get(SUBNET_GUARD);
      const existing = await this.client.list('Subnet');
      if (existing.items.some((s) => s.value.id === subnet.id))
        throw new ResourceExistsError('Subnet', subnet.id);
      assertNoSubnetOverlap(
        subnet,
        existing.items.map((s) => s.value),
      );
      const r = await this.store.txn({
        compares: [
          guard
            ? { key: SUBNET_GUARD, target: 'modRevision', op: '=', value: guard.modRevision }
            : { key: SUBNET_GUARD, target: 'exists', value: false },
          { key: keys.subnet(subnet.id), target: 'exists', value: false },
        ],
        success: [
          { type: 'put', key: keys.subnet(subnet.id), value: JSON.stringify(subnet) },
          // The subnet's own IPAM pool, in the same transaction.
          { type: 'put', key: keys.ipPool(pool.name), value: JSON.stringify(pool) },
          { type: 'put', key: SUBNET_GUARD, value: String(Number(guard?.value ?? 0) + 1) },
        ],
      });
      if (!r.succeeded)
        throw new ConflictError(
          SUBNET_GUARD,
          guard?.modRevision,
          undefined,
          'subnets changed concurrently',
        );
      return subnet;
    });
  }

  async updateSubnet(input: SubnetInput): Promise<Subnet> {
    const next = this.client.validate('Subnet', input);
    return this.retrying(`update subnet ${next.id}`, async () => {
      const cur = await this.require('Subnet', keys.subnet(next.id), next.id);
      if (cur.value.cidr !== next.cidr) throw new ImmutableFieldError('Subnet', next.id, 'cidr');
      if (cur.value.networkId !== next.networkId)
        throw new ImmutableFieldError('Subnet', next.id, 'networkId');
      return (await this.client.update('Subnet', next, { expectedModRevision: cur.modRevision }))
        .value;
    });
  }

  async deleteSubnet(id: string): Promise<void> {
    const cur = await this.require('Subnet', keys.subnet(id), id);
    const users = (await this.listPorts())
      .filter((p) => p.fixedIps.some((f) => f.subnetId === id))
      .map((p) => `port ${p.id}`);
    if (users.length) throw new ResourceInUseError('Subnet', id, users);
    // Allocations left without a port (a crashed driver) keep their blocks: refuse, name them.
    const pool = subnetPoolName(id);
    const blocks = (await this.client.list('IpamBlock')).items.filter(
      (b) => b.value.pool === pool && b.value.allocations.some((a) => a !== null),
    );
    if (blocks.length)
      throw new ResourceInUseError(
        'Subnet',
        id,
        blocks.map((b) => `IPAM block ${b.value.cidr} (run ipam repair)`),
      );
    await this.client
      .txn()
      .delete('Subnet', keys.subnet(id), { expectedModRevision: cur.modRevision })
      .delete('IpPool', keys.ipPool(pool))
      .commit()
      .catch(async (e: unknown) => {
        // Subnets created before pools existed have no pool record.
        if (!(e instanceof NotFoundError)) throw e;
        await this.client.delete('Subnet', keys.subnet(id), {
          expectedModRevision: cur.modRevision,
        });
      });
  }

  async getSubnet(id: string): Promise<Subnet | undefined> {
    return (await this.client.get('Subnet', keys.subnet(id)))?.value;
  }

  async listSubnets(): Promise<Subnet[]> {
    return (await this.client.list('Subnet')).items.map((i) => i.value);
  }

  // ---------------------------------------------------------------- security groups

  private async checkGroupReferences(group: SecurityGroup): Promise<void> {
    const known = new Set((await this.client.list('SecurityGroup')).items.map((g) => g.value.id));
    const issues = securityGroupReferenceIssues(group, known);
    if (issues.length) throw new ValidationError('SecurityGroup', group.id, issues);
  }

  async createSecurityGroup(input: SecurityGroupInput): Promise<SecurityGroup> {
    const group = this.client.validate('SecurityGroup', input);
    await this.checkGroupReferences(group);
    try {
      return (await this.client.create('SecurityGroup', group)).value;
    } catch (e) {
      if (e instanceof AlreadyExistsError) throw new ResourceExistsError('SecurityGroup', group.id);
      throw e;
    }
  }

  async updateSecurityGroup(input: SecurityGroupInput): Promise<SecurityGroup> {
    const next = this.client.validate('SecurityGroup', input);
    await this.checkGroupReferences(next);
    return this.retrying(`update security group ${next.id}`, async () => {
      const cur = await this.require('SecurityGroup', keys.securityGroup(next.id), next.id);
      return (
        await this.client.update('SecurityGroup', next, { expectedModRevision: cur.modRevision })
      ).value;
    });
  }

  async deleteSecurityGroup(id: string): Promise<void> {
    const cur = await this.require('SecurityGroup', keys.securityGroup(id), id);
    const ports = (await this.listPorts())
      .filter((p) => p.securityGroupIds.includes(id))
      .map((p) => `port ${p.id}`);
    const groups = (await this.client.list('SecurityGroup')).items
      .filter((g) => g.value.id !== id && g.value.rules.some((r) => r.remoteGroupId === id))
      .map((g) => `security group ${g.value.id}`);
    if (ports.length || groups.length)
      throw new ResourceInUseError('SecurityGroup', id, [...ports, ...groups]);
    await this.client.delete('SecurityGroup', keys.securityGroup(id), {
      expectedModRevision: cur.modRevision,
    });
  }

  async getSecurityGroup(id: string): Promise<SecurityGroup | undefined> {
    return (await this.client.get('SecurityGroup', keys.securityGroup(id)))?.value;
  }

  async listSecurityGroups(): Promise<SecurityGroup[]> {
    return (await this.client.list('SecurityGroup')).items.map((i) => i.value);
  }

  // ---------------------------------------------------------------- ports

  /** Finds a port by id alone (through its location record). */
  private async locate(id: string): Promise<Stored<Endpoint> | undefined> {
    const loc = await this.client.get('EndpointLocation', keys.endpointLocation(id));
    if (!loc) return undefined;
    return this.client.get('Endpoint', keys.endpoint(loc.value.host, id));
  }

  /** Everything a port refers to must exist, and its interface name must be free on its host. */
  private async checkPort(
    ep: Endpoint,
    subnets: ReadonlyMap<string, Subnet>,
    newBinding: boolean,
  ): Promise<void> {
    await this.require('Network', keys.network(ep.networkId), ep.networkId);
    assertEndpointAddresses(ep, subnets);
    for (const g of ep.securityGroupIds)
      await this.require('SecurityGroup', keys.securityGroup(g), g);
    if (ep.host !== null) {
      const host = await this.client.get('Host', keys.host(ep.host));
      if (!host) throw new HostUnavailableError(ep.host, 'not registered');
      if (newBinding && this.requireLiveAgent && !(await this.getHostStatus(ep.host)))
        throw agentNotAlive(ep.host);
      const clash = (await this.listPorts({ host: ep.host })).find(
        (p) => p.id !== ep.id && p.interfaceName === ep.interfaceName,
      );
      if (clash)
        throw new ResourceInUseError('Interface', `${ep.host}/${ep.interfaceName}`, [
          `port ${clash.id}`,
        ]);
    }
  }

  private async subnetsById(): Promise<Map<string, Subnet>> {
    return new Map((await this.client.list('Subnet')).items.map((s) => [s.value.id, s.value]));
  }

  /**
   * Resolves requested fixed IPs into addresses held by the port's IPAM handle: a given address
   * is assigned (AddressInUseError when another port holds it), a subnet without an address
   * gets the next free one, an address without a subnet finds its subnet. No request at all:
   * one address from the network's first IPv4 subnet and one from its first IPv6 subnet.
   */
  private async allocateAddresses(
    port: {
      id: string;
      networkId: string;
      host: string | null;
      fixedIps: FixedIpRequest[] | undefined;
    },
    subnets: ReadonlyMap<string, Subnet>,
  ): Promise<FixedIp[]> {
    const ofNetwork = [...subnets.values()]
      .filter((s) => s.networkId === port.networkId)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    let requests = port.fixedIps;
    if (requests === undefined) {
      requests = [4, 6].flatMap((v) => {
        const s = ofNetwork.find((x) => x.ipVersion === v);
        return s ? [{ subnetId: s.id }] : [];
      });
    }
    const handleId = portHandle(port.id);
    const out: FixedIp[] = [];
    for (const [i, r] of requests.entries()) {
      let subnet = r.subnetId !== undefined ? subnets.get(r.subnetId) : undefined;
      if (r.subnetId !== undefined && !subnet)
        throw new ValidationError('Endpoint', port.id, [
          {
            field: `fixedIps[${i}].subnetId`,
            value: r.subnetId,
            problem: 'is not an existing subnet',
          },
        ]);
      if (!subnet && r.ipAddress !== undefined) {
        const ip = parseIP(r.ipAddress);
        subnet = ofNetwork.find((s) => cidrContains(parseCidr(s.cidr), ip));
        if (!subnet)
          throw new ValidationError('Endpoint', port.id, [
            {
              field: `fixedIps[${i}].ipAddress`,
              value: r.ipAddress,
              problem: `is in no subnet of network ${port.networkId}`,
            },
          ]);
      }
      if (!subnet)
        throw new ValidationError('Endpoint', port.id, [
          { field: `fixedIps[${i}]`, value: r, problem: 'needs a subnetId or an ipAddress' },
        ]);
      if (subnet.networkId !== port.networkId) {
        throw new ValidationError('Endpoint', port.id, [
          {
            field: `fixedIps[${i}].subnetId`,
            value: subnet.id,
            problem: `belongs to network ${subnet.networkId}, not ${port.networkId}`,
          },
        ]);
      }
      if (r.ipAddress !== undefined) {
        // The model's wording for addresses outside the subnet or reserved.
        const issues = endpointAddressIssues(
          {
            id: port.id,
            networkId: port.networkId,
            fixedIps: [{ subnetId: subnet.id, ipAddress: r.ipAddress }],
          } as Endpoint,
          subnets,
        );
        if (issues.length)
          throw new ValidationError(
            'Endpoint',
            port.id,
            issues.map((x) => ({ ...x, field: x.field.replace('fixedIps[0]', `fixedIps[${i}]`) })),
          );
      }
      try {
        const a =
          r.ipAddress !== undefined
            ? await this.ipam.assign({ subnet, ip: r.ipAddress, handleId, host: port.host })
            : await this.ipam.autoAssign({ subnet, handleId, host: port.host });
        out.push({ subnetId: subnet.id, ipAddress: a.ip });
      } catch (e) {
        if (e instanceof AddressAllocatedError) {
          const holder = e.holder ? (endpointOfHandle(e.holder) ?? e.holder) : 'another allocation';
          throw new AddressInUseError(e.address, `port ${holder}`);
        }
        if (e instanceof AddressNotAssignableError) {
          throw new ValidationError('Endpoint', port.id, [
            {
              field: `fixedIps[${i}].ipAddress`,
              value: r.ipAddress,
              problem: e.message.replace(
                /^address \S+ cannot be assigned: /,
                'cannot be assigned: ',
              ),
            },
          ]);
        }
        throw e;
      }
    }
    return out;
  }

  /**
   * Creates a port, bound to `host` when given. Its addresses come from IPAM: fixed IPs are
   * honoured, missing ones allocated. If anything fails after allocation, the allocation is
   * released; should the process die in between, `checkIpam`/`repairIpam` find the leak.
   */
  async createPort(input: PortInput): Promise<Endpoint> {
    const { fixedIps, ...rest } = input;
    // Validate everything that does not depend on the addresses before allocating any.
    const draft = this.client.validate('Endpoint', { ...rest, fixedIps: [] });
    const subnets = await this.subnetsById();
    await this.checkPort(draft, subnets, draft.host !== null);
    if (await this.locate(draft.id)) throw new ResourceExistsError('Port', draft.id);
    let ep: Endpoint | undefined;
    try {
      const allocated = await this.allocateAddresses({ ...draft, fixedIps }, subnets);
      ep = this.client.validate('Endpoint', { ...rest, fixedIps: allocated });
      assertEndpointAddresses(ep, subnets);
      const txn = this.client
        .txn()
        .create('Endpoint', ep)
        .create('EndpointLocation', { id: ep.id, host: ep.host });
      await this.commitBinding(txn, ep.host);
    } catch (e) {
      // Only this port's handle is released: nobody else allocates with it.
      if (!(e instanceof AlreadyExistsError) && !(e instanceof ResourceExistsError))
        await this.ipam.releaseByHandle(portHandle(draft.id));
      if (e instanceof AlreadyExistsError) throw new ResourceExistsError('Port', draft.id);
      throw e;
    }
    this.logger.info(
      { port: ep.id, host: ep.host, addresses: ep.fixedIps.map((f) => f.ipAddress) },
      'port created',
    );
    return ep;
  }

  /**
   * Replaces a port. A changed `host` moves it (rebinding) in the same transaction. Changed
   * fixed IPs are allocated before and released after the write.
   */
  async updatePort(input: PortInput): Promise<Endpoint> {
    const { fixedIps, ...rest } = input;
    const draft = this.client.validate('Endpoint', { ...rest, fixedIps: [] });
    return this.retrying(`update port ${draft.id}`, async () => {
      const cur = await this.locate(draft.id);
      if (!cur) throw new ResourceNotFoundError('Port', draft.id);
      if (cur.value.networkId !== draft.networkId)
        throw new ImmutableFieldError('Port', draft.id, 'networkId');
      const subnets = await this.subnetsById();
      await this.checkPort(draft, subnets, draft.host !== null && draft.host !== cur.value.host);
      const requested = fixedIps ?? cur.value.fixedIps;
      const allocated = await this.allocateAddresses({ ...draft, fixedIps: requested }, subnets);
      const next = this.client.validate('Endpoint', { ...rest, fixedIps: allocated });
      await this.writePort(cur, next, draft.host !== null && draft.host !== cur.value.host);
      const keep = new Set(next.fixedIps.map((f) => f.ipAddress));
      const dropped = cur.value.fixedIps.filter((f) => !keep.has(f.ipAddress));
      if (dropped.length)
        await this.ipam.release(
          dropped.map((f) => ({ ip: f.ipAddress, handleId: portHandle(draft.id) })),
        );
      return next;
    });
  }

  /**
   * Commits a transaction that binds a port to `host`: with `requireLiveAgent`, only while the
   * host's liveness record still exists — checked in the same transaction, so an agent dying
   * between the check and the write cannot be bound to.
   */
  private async commitBinding(txn: ResourceTxn, host: string | null): Promise<void> {
    if (host === null || !this.requireLiveAgent) {
      await txn.commit();
      return;
    }
    const live = keys.hostStatus(host);
    try {
      await txn.requireExists('HostStatus', live).commit();
    } catch (e) {
      if (e instanceof NotFoundError && e.key === live) throw agentNotAlive(host);
      throw e;
    }
  }

  private async writePort(
    cur: Stored<Endpoint>,
    next: Endpoint,
    newBinding: boolean,
  ): Promise<void> {
    const txn = this.client.txn();
    if (cur.value.host === next.host) {
      txn.update('Endpoint', next, { expectedModRevision: cur.modRevision });
    } else {
      // Rebinding: the new key is written before the old one is deleted, in one revision.
      txn
        .create('Endpoint', next)
        .delete('Endpoint', cur.key, { expectedModRevision: cur.modRevision })
        .put('EndpointLocation', { id: next.id, host: next.host });
    }
    try {
      await this.commitBinding(txn, newBinding ? next.host : null);
    } catch (e) {
      if (e instanceof NotFoundError || e instanceof AlreadyExistsError)
        throw new ConflictError(cur.key, cur.modRevision, undefined, 'port moved concurrently');
      throw e;
    }
  }

  private async modifyPort(
    id: string,
    what: string,
    change: (ep: Endpoint) => Endpoint,
  ): Promise<Endpoint> {
    return this.retrying(`${what} port ${id}`, async () => {
      const cur = await this.locate(id);
      if (!cur) throw new ResourceNotFoundError('Port', id);
      const next = this.client.validate('Endpoint', change(cur.value));
      await this.checkPort(
        next,
        await this.subnetsById(),
        next.host !== null && next.host !== cur.value.host,
      );
      await this.writePort(cur, next, next.host !== null && next.host !== cur.value.host);
      return next;
    });
  }

  /** Binds a port to a compute host (Nova's binding:host_id). */
  bindPort(id: string, host: string): Promise<Endpoint> {
    return this.modifyPort(id, 'bind', (ep) => ({ ...ep, host }));
  }

  unbindPort(id: string): Promise<Endpoint> {
    return this.modifyPort(id, 'unbind', (ep) => ({ ...ep, host: null }));
  }

  /** Deletes a port and releases its addresses. */
  async deletePort(id: string): Promise<void> {
    await this.retrying(`delete port ${id}`, async () => {
      const cur = await this.locate(id);
      if (!cur) throw new ResourceNotFoundError('Port', id);
      try {
        await this.client
          .txn()
          .delete('Endpoint', cur.key, { expectedModRevision: cur.modRevision })
          .delete('EndpointLocation', keys.endpointLocation(id))
          .commit();
      } catch (e) {
        if (e instanceof NotFoundError)
          throw new ConflictError(cur.key, cur.modRevision, undefined, 'port changed concurrently');
        throw e;
      }
    });
    await this.ipam.releaseByHandle(portHandle(id));
    this.logger.info({ port: id }, 'port deleted');
  }

  async getPort(id: string): Promise<Endpoint | undefined> {
    return (await this.locate(id))?.value;
  }

  /** Every port, or those bound to one host. */
  async listPorts(opts: { host?: string } = {}): Promise<Endpoint[]> {
    const r =
      opts.host === undefined
        ? await this.client.list('Endpoint')
        : await this.client.list('Endpoint', { prefix: `/calyx/v1/host/${opts.host}/endpoint/` });
    return r.items.map((i) => i.value);
  }

  // ---------------------------------------------------------------- hosts and BGP

  /** Registers (or updates) a compute host and how it speaks BGP. */
  async registerHost(input: HostInput): Promise<Host> {
    return (await this.client.put('Host', input)).value;
  }

  async deregisterHost(name: string): Promise<void> {
    await this.require('Host', keys.host(name), name);
    const ports = await this.listPorts({ host: name });
    if (ports.length)
      throw new ResourceInUseError(
        'Host',
        name,
        ports.map((p) => `port ${p.id}`),
      );
    await this.client.delete('Host', keys.host(name));
  }

  // ---------------------------------------------------------------- resync

  /**
   * Makes the datastore match the orchestrator's full truth: creates what is missing, fixes
   * what differs, deletes orphans, then brings IPAM in line. The whole snapshot is validated
   * first (SnapshotInvalidError, nothing written); every write is a compare-and-set on what was
   * read, so a concurrent newer write is skipped and reported, never overwritten.
   */
  resync(snapshot: OrchestratorSnapshot, opts: ResyncOptions = {}): Promise<ResyncReport> {
    return resyncDatastore(
      { client: this.client, ipam: this.ipam, logger: this.logger },
      snapshot,
      opts,
    );
  }

  // ---------------------------------------------------------------- status

  /** A host agent's liveness record; undefined when it never started or its lease expired. */
  async getHostStatus(host: string): Promise<HostStatus | undefined> {
    return (await this.client.get('HostStatus', keys.hostStatus(host)))?.value;
  }

  /** The liveness records of every live agent. */
  async listHostStatuses(): Promise<HostStatus[]> {
    const all = await this.client.list('HostStatus');
    return all.items.map((i) => i.value);
  }

  /**
   * A bound port's status as its agent reported it (`unknown` without a report), with whether
   * the report is about the port as it is now (`stale`).
   */
  async getPortStatus(id: string): Promise<PortStatus> {
    const port = await this.locate(id);
    if (!port) throw new ResourceNotFoundError('Port', id);
    if (port.value.host === null) return notBound(id, port.modRevision);
    const st = await this.client.get('EndpointStatus', keys.endpointStatus(port.value.host, id));
    return withPort(statusEvent(id, port.value.host, st?.value), port.modRevision);
  }

  /**
   * Every port status change on every host, as it happens (from now on), until `signal`
   * aborts. A deleted report (port gone from its host) comes as `unknown`. Should the watch's
   * history be compacted away, every current status is delivered again and the watch goes on.
   */
  async *watchPortStatus(opts: { signal?: AbortSignal } = {}): AsyncGenerator<PortStatusEvent> {
    const parse = (key: string) => {
      const m = /^\/calyx\/v1\/status\/([^/]+)\/endpoint\/([^/]+)$/.exec(key);
      return m ? { host: m[1]!, id: m[2]! } : undefined;
    };
    let from: bigint | undefined;
    while (!opts.signal?.aborted) {
      let resync = false;
      for await (const ev of this.store.watch(prefixes.status, {
        prevKv: false,
        ...(from !== undefined ? { fromRevision: from } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })) {
        if (ev.type === 'resync') {
          resync = true;
          break;
        }
        const key = ev.type === 'put' ? ev.kv.key : ev.key;
        const at = parse(key);
        if (!at) continue;
        if (ev.type === 'delete') yield statusEvent(at.id, at.host, undefined);
        else yield statusEvent(at.id, at.host, decodeResource('EndpointStatus', ev.kv).value);
      }
      if (!resync) return;
      const now = await this.store.list(prefixes.status);
      for (const kv of now.items) {
        const at = parse(kv.key);
        if (at) yield statusEvent(at.id, at.host, decodeResource('EndpointStatus', kv).value);
      }
      from = now.revision + 1n;
    }
  }

  /**
   * Resolves once the port's agent reports `wanted` (default `up`: its tap exists and is up,
   * and its routes and rules are programmed) about the port as it is now or later — a report
   * about an earlier revision of it (before an update, or before it was deleted and created
   * again) does not count. It follows the port: bound meanwhile, or moved to another host, it
   * waits for that host's agent; deleted meanwhile (or not there at all), it throws
   * ResourceNotFoundError. Throws PortStatusTimeoutError after `timeoutMs`. No polling: a read,
   * then watches on the port's status and location from that read's revision (read again if a
   * watch's history is compacted away or the port moves).
   */
  async waitForPortStatus(
    id: string,
    wanted: EndpointStatus['status'] = 'up',
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<PortStatus> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) stop.abort();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort();
    }, timeoutMs);
    const seen: { last?: PortStatus } = {};
    try {
      while (!stop.signal.aborted) {
        const location = await this.client.get('EndpointLocation', keys.endpointLocation(id));
        if (!location) throw new ResourceNotFoundError('Port', id);
        const reached = await this.waitWhereBound(location, wanted, stop.signal, seen);
        if (reached) return reached;
      }
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
    if (timedOut)
      throw new PortStatusTimeoutError(
        id,
        wanted,
        seen.last?.status ?? 'unknown',
        seen.last?.reason ?? '',
        timeoutMs,
      );
    throw new AbortedError(`waiting for port ${id} to be ${wanted}`);
  }

  /**
   * One round of waitForPortStatus, for the port where `location` says it is: the status that
   * reached `wanted`, or undefined when the port moved or went away, a watch's history was
   * compacted (read again), or `signal` aborted.
   */
  private async waitWhereBound(
    location: Stored<EndpointLocation>,
    wanted: EndpointStatus['status'],
    signal: AbortSignal,
    seen: { last?: PortStatus },
  ): Promise<PortStatus | undefined> {
    const { id, host } = location.value;
    const locationKey = location.key;
    const statusKey = host === null ? undefined : keys.endpointStatus(host, id);
    // One read-only transaction: the location again, the port's record and its status at one
    // revision — the revision the watches start from.
    const read = await this.store.txn({
      compares: [],
      success: [
        { type: 'get', key: locationKey },
        { type: 'get', key: keys.endpoint(host, id) },
        ...(statusKey ? [{ type: 'get' as const, key: statusKey }] : []),
      ],
    });
    const kvOf = (i: number) => {
      const r = read.results[i];
      return r?.type === 'get' ? r.kv : undefined;
    };
    // Moved, or deleted (and perhaps created again) since the location was read: look again.
    if (kvOf(0)?.modRevision !== location.modRevision) return;
    const endpoint = kvOf(1);
    // A location without its record, at one revision: no such port.
    if (!endpoint) throw new ResourceNotFoundError('Port', id);
    const portRevision = endpoint.modRevision;
    const statusOf = (kv: KeyValue | undefined): PortStatus =>
      host === null
        ? notBound(id, portRevision)
        : withPort(
            statusEvent(id, host, kv ? decodeResource('EndpointStatus', kv).value : undefined),
            portRevision,
          );
    const reached = (s: PortStatus) => s.status === wanted && !s.stale;
    seen.last = statusOf(kvOf(2));
    if (reached(seen.last)) return seen.last;
    const round = new AbortController();
    const endRound = () => round.abort();
    signal.addEventListener('abort', endRound, { once: true });
    if (signal.aborted) round.abort();
    const from = read.revision + 1n;
    // Watches are by prefix: only events on exactly our keys count. Watches end quietly on
    // abort; a failed location watch ends the round and its error is thrown below.
    let failed: { error: unknown } | undefined;
    const moved = (async () => {
      for await (const ev of this.store.watch(locationKey, {
        fromRevision: from,
        prevKv: false,
        signal: round.signal,
      }))
        if (ev.type === 'resync' || (ev.type === 'put' ? ev.kv.key : ev.key) === locationKey) break;
    })().then(
      () => round.abort(),
      (error: unknown) => {
        failed = { error };
        round.abort();
      },
    );
    try {
      if (statusKey)
        for await (const ev of this.store.watch(statusKey, {
          fromRevision: from,
          prevKv: false,
          signal: round.signal,
        })) {
          if (ev.type === 'resync') break;
          if ((ev.type === 'put' ? ev.kv.key : ev.key) !== statusKey) continue;
          seen.last = statusOf(ev.type === 'put' ? ev.kv : undefined);
          // The two watches are not ordered with each other: a report from the old host can
          // come before the move is seen. Only a report about where the port still is counts.
          if (reached(seen.last)) {
            if ((await this.store.get(locationKey))?.modRevision === location.modRevision)
              return seen.last;
            break;
          }
        }
      // The status watch ended (compacted, moved or aborted): this round is over. An unbound
      // port's round lasts until it is bound.
      if (statusKey) round.abort();
      await moved;
      if (failed) throw failed.error;
      return undefined;
    } finally {
      round.abort();
      signal.removeEventListener('abort', endRound);
      await moved;
    }
  }

  async listHosts(): Promise<Host[]> {
    return (await this.client.list('Host')).items.map((i) => i.value);
  }

  async setBgpConfiguration(
    input: Omit<BgpConfigurationInput, 'name'> & { name?: string },
  ): Promise<BgpConfiguration> {
    return (await this.client.put('BgpConfiguration', { ...input, name: input.name ?? 'default' }))
      .value;
  }

  async getBgpConfiguration(name = 'default'): Promise<BgpConfiguration | undefined> {
    return (await this.client.get('BgpConfiguration', keys.bgpConfiguration(name)))?.value;
  }

  async putBgpPeer(input: BgpPeerInput): Promise<BgpPeer> {
    return (await this.client.put('BgpPeer', input)).value;
  }

  async deleteBgpPeer(name: string): Promise<void> {
    try {
      await this.client.delete('BgpPeer', keys.bgpPeer(name));
    } catch (e) {
      if (e instanceof NotFoundError) throw new ResourceNotFoundError('BgpPeer', name);
      throw e;
    }
  }

  async putIpPool(input: IpPoolInput): Promise<IpPool> {
    return (await this.client.put('IpPool', input)).value;
  }

  async deleteIpPool(name: string): Promise<void> {
    try {
      await this.client.delete('IpPool', keys.ipPool(name));
    } catch (e) {
      if (e instanceof NotFoundError) throw new ResourceNotFoundError('IpPool', name);
      throw e;
    }
  }
}

function agentNotAlive(host: string): HostUnavailableError {
  return new HostUnavailableError(
    host,
    'its agent is not alive (no liveness record: never started, or expired)',
  );
}

function notBound(portId: string, portRevision: bigint): PortStatus {
  return { ...statusEvent(portId, '', undefined), reason: 'not bound', portRevision, stale: false };
}

function statusEvent(
  portId: string,
  host: string,
  st: EndpointStatus | undefined,
): PortStatusEvent {
  return st
    ? {
        portId,
        host,
        status: st.status,
        reason: st.reason,
        updatedAt: st.updatedAt,
        reportedRevision:
          st.endpointRevision === undefined ? undefined : BigInt(st.endpointRevision),
      }
    : {
        portId,
        host,
        status: 'unknown',
        reason: '',
        updatedAt: undefined,
        reportedRevision: undefined,
      };
}

/** A report is stale when it is about an earlier revision of the port (unknown: not stale). */
function withPort(ev: PortStatusEvent, portRevision: bigint): PortStatus {
  return {
    ...ev,
    portRevision,
    stale: ev.reportedRevision !== undefined && ev.reportedRevision < portRevision,
  };
}
