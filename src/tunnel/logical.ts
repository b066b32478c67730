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

/**
 * Stop-and-copy migration: a frame a moved host sent at the new site crosses to the old
 * site's table with its host's tunnel id plus this flag, to be switched there as if the
 * host had sent it at the old site (ids are 24 bits, so the flag never collides).
 */
export const INGRESS_TUNNEL_FLAG = 0x1000000;

/**
 * A flooded frame whose sender is a host at the receiving site (stop-and-copy: it was
 * switched at the old site for a moved host): crosses with this flag plus the sender's
 * tunnel id, and is delivered to every host there but the sender.
 */
export const FLOOD_EXCEPT_FLAG = 0x2000000;
