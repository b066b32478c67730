/**
 * The location map: at which site each host (logical port) is.
 *
 * A host is a logical port declared at both sites with the same name and tunnel id (the
 * GRE key, or VLAN id, that carries its frames between the sites). At any moment it is at
 * exactly one site: there its port is bound to the physical port (TAP, system), and frames
 * the table sends to it are delivered there; at the other site, output to it is tunnelled
 * to the peer with its tunnel id (LIME's tunnel at egress).
 *
 * The map changes only by `move`, applied at both sites in the order of the replicated
 * log (sync/replication.ts), so the two sites never disagree for longer than one entry's
 * trip. Each change bumps `version`, which the data path reads to know when to rebuild
 * its per-port redirection.
 *
 * Pure: no I/O, no clock.
 */
import { MAX_TUNNEL_ID } from '../tunnel/logical.js';

/** A host as declared in the config of both sites. */
export interface HostSpec {
  name: string;
  /** 1 … MAX_TUNNEL_ID; the same at both sites. */
  tunnelId: number;
  /** Where the host is when the sites start from an empty log. */
  site: string;
  /** The host's MAC, "" when not known. */
  mac: string;
}

/** The host's place as the map holds it (what `migrate status` lists). */
export interface HostPlace {
  name: string;
  site: string;
  tunnel_id: number;
  mac: string;
}

export { FLOOD_TUNNEL_ID, MAX_TUNNEL_ID } from '../tunnel/logical.js';

export type LocationErrorCode = 'NOT_FOUND' | 'BAD_REQUEST';

export class LocationError extends Error {
  constructor(
    readonly code: LocationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'LocationError';
  }
}

export class LocationMap {
  /** Bumped by every change. */
  version = 0;
  private readonly hosts = new Map<string, HostPlace>();

  /**
   * `sites`: the names a host may be at (this site and its peer). Throws LocationError
   * BAD_REQUEST for a duplicate name or tunnel id, a tunnel id out of range, or a start
   * site that is not one of `sites`.
   */
  constructor(
    readonly sites: readonly string[],
    specs: readonly HostSpec[],
  ) {
    const byId = new Map<number, string>();
    for (const h of specs) {
      if (this.hosts.has(h.name)) throw new LocationError('BAD_REQUEST', `host ${h.name} is declared twice`);
      if (!Number.isInteger(h.tunnelId) || h.tunnelId < 1 || h.tunnelId > MAX_TUNNEL_ID) {
        throw new LocationError('BAD_REQUEST', `host ${h.name}: tunnel id ${h.tunnelId} is not an integer from 1 to ${MAX_TUNNEL_ID}`);
      }
      const other = byId.get(h.tunnelId);
      if (other !== undefined) throw new LocationError('BAD_REQUEST', `hosts ${other} and ${h.name} have the same tunnel id ${h.tunnelId}`);
      if (!sites.includes(h.site)) throw new LocationError('BAD_REQUEST', `host ${h.name} starts at site ${h.site}, which is not one of ${sites.join(', ')}`);
      byId.set(h.tunnelId, h.name);
      this.hosts.set(h.name, { name: h.name, site: h.site, tunnel_id: h.tunnelId, mac: h.mac });
    }
  }

  get size(): number {
    return this.hosts.size;
  }

  has(name: string): boolean {
    return this.hosts.has(name);
  }

  /** The host's site, or undefined for a name that is not a host. */
  siteOf(name: string): string | undefined {
    return this.hosts.get(name)?.site;
  }

  tunnelIdOf(name: string): number | undefined {
    return this.hosts.get(name)?.tunnel_id;
  }

  /** Every host, in declaration order (copies). */
  list(): HostPlace[] {
    return [...this.hosts.values()].map((h) => ({ ...h }));
  }

  /**
   * What moving `name` to `site` would do, or a LocationError: NOT_FOUND for an unknown
   * host or site, BAD_REQUEST when the host is already there. Changes nothing.
   */
  check(name: string, site: string): { from: string; to: string } {
    const h = this.hosts.get(name);
    if (h === undefined) throw new LocationError('NOT_FOUND', `no host named ${name} (hosts: ${[...this.hosts.keys()].join(', ') || 'none declared'})`);
    if (!this.sites.includes(site)) throw new LocationError('NOT_FOUND', `no site named ${site} (sites: ${this.sites.join(', ')})`);
    if (h.site === site) throw new LocationError('BAD_REQUEST', `host ${name} is already at site ${site}`);
    return { from: h.site, to: site };
  }

  /**
   * Apply a move from the log. Unlike `check`, a move to where the host already is is no
   * change (a replayed entry), not an error. Returns the previous site.
   */
  move(name: string, site: string): { from: string; to: string; changed: boolean } {
    const h = this.hosts.get(name);
    if (h === undefined) throw new LocationError('NOT_FOUND', `no host named ${name}`);
    if (!this.sites.includes(site)) throw new LocationError('NOT_FOUND', `no site named ${site}`);
    const from = h.site;
    if (from === site) return { from, to: site, changed: false };
    h.site = site;
    this.version++;
    return { from, to: site, changed: true };
  }

  /**
   * Take the sites of a snapshot's map. Hosts the snapshot does not name keep their place;
   * names this site does not declare (or at an unknown site) are returned, not applied.
   */
  restore(places: readonly { name: string; site: string }[]): string[] {
    const unknown: string[] = [];
    for (const p of places) {
      const h = this.hosts.get(p.name);
      if (h === undefined || !this.sites.includes(p.site)) {
        unknown.push(p.name);
        continue;
      }
      if (h.site !== p.site) {
        h.site = p.site;
        this.version++;
      }
    }
    return unknown;
  }
}
