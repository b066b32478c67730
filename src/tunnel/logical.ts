/**
 * Tunnel ids of hosts (logical ports) between the two sites of a migration: the GRE key
 * (or VLAN id) a frame carries over the inter-site link tells the receiving site which of
 * its hosts the frame is for (src/migrate/location.ts).
 */

/** Tunnel ids are 24 bits (a VXLAN VNI's range): small integers all the way through the data path. */
export const MAX_TUNNEL_ID = 0xffffff;

/**
 * The tunnel id a flooded frame crosses with: one copy for all the hosts at the other
 * site, delivered there to each of them (so a broadcast crosses the link once).
 */
export const FLOOD_TUNNEL_ID = 0;
