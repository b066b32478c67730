/**
 * Live reload: what a re-read configuration changes, and whether limed may apply it while
 * it runs. Pure: the daemon (daemon.ts) applies the plan.
 *
 * What may change at run time:
 *   - ports that are not hosts of a live migration nor the peer's tunnel port: added,
 *     removed, or changed (the port is reopened with its new settings, same port number,
 *     so flows that name it keep working);
 *   - log_level, mac_table.aging_seconds, packet_in.rate and packet_in.burst.
 * Everything else (site, socket, peer, tls, state_dir, fast_path, mac_table.capacity, the
 * hosts, table_miss — a rule of the replicated table —, …) only by a restart: a file that
 * changes it is refused as a whole, so that what runs is always one file's configuration.
 */
import type { Config, PortConfig } from './config.js';

/** A reload limed refuses: the message says what and why; nothing was applied. */
export class ReloadRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReloadRefused';
  }
}

export interface SettingChange {
  field: 'log_level' | 'mac_table.aging_seconds' | 'packet_in.rate' | 'packet_in.burst';
  from: string | number;
  to: string | number;
}

export interface ReloadPlan {
  add: PortConfig[];
  remove: string[];
  change: Array<{ from: PortConfig; to: PortConfig }>;
  settings: SettingChange[];
}

/** Top-level keys a reload may change (each handled below); all others need a restart. */
const LIVE_KEYS = new Set(['ports', 'log_level', 'mac_table', 'packet_in']);

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A host of a live migration: declared with a tunnel_id, in the location map from start. */
function isHost(pc: PortConfig): boolean {
  return pc.type !== 'gre' && pc.tunnel_id !== undefined;
}

export function planReload(running: Config, next: Config): ReloadPlan {
  const restartOnly: string[] = [];
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const key of keys) {
    if (LIVE_KEYS.has(key)) continue;
    if (!same((running as Record<string, unknown>)[key], (next as Record<string, unknown>)[key])) restartOnly.push(key);
  }
  if (running.mac_table.capacity !== next.mac_table.capacity) restartOnly.push('mac_table.capacity');
  if (restartOnly.length > 0) {
    throw new ReloadRefused(`${restartOnly.join(', ')} changed: ${restartOnly.length > 1 ? 'these settings change' : 'this setting changes'} only by restarting limed`);
  }

  const before = new Map(running.ports.map((p) => [p.name, p]));
  const after = new Map(next.ports.map((p) => [p.name, p]));
  const tunnelPort = running.peer?.tunnel_port;
  const plan: ReloadPlan = { add: [], remove: [], change: [], settings: [] };
  for (const [name, from] of before) {
    const to = after.get(name);
    if (to !== undefined && same(from, to)) continue;
    if (isHost(from) || (to !== undefined && isHost(to))) {
      throw new ReloadRefused(`ports: ${name} is a host of live migration (it has a tunnel_id); hosts are added, removed or changed only by restarting limed`);
    }
    if (name === tunnelPort) {
      throw new ReloadRefused(`ports: ${name} is the peer's tunnel port (peer.tunnel_port); it is ${to === undefined ? 'removed' : 'changed'} only by restarting limed`);
    }
    if (to === undefined) plan.remove.push(name);
    else plan.change.push({ from, to });
  }
  for (const [name, to] of after) {
    if (before.has(name)) continue;
    if (isHost(to)) throw new ReloadRefused(`ports: ${name} is a host of live migration (it has a tunnel_id); hosts are added only by restarting limed`);
    plan.add.push(to);
  }

  const setting = (field: SettingChange['field'], from: string | number, to: string | number): void => {
    if (from !== to) plan.settings.push({ field, from, to });
  };
  setting('log_level', running.log_level, next.log_level);
  setting('mac_table.aging_seconds', running.mac_table.aging_seconds, next.mac_table.aging_seconds);
  setting('packet_in.rate', running.packet_in.rate, next.packet_in.rate);
  setting('packet_in.burst', running.packet_in.burst, next.packet_in.burst);
  return plan;
}

/** "FIELD: OLD -> NEW", as limectl reload prints a setting change. */
export function describeSetting(s: SettingChange): string {
  return `${s.field}: ${String(s.from)} -> ${String(s.to)}`;
}
