/**
 * 802.1Q / 802.1ad tag push and pop over a frame in a slot with headroom (STYLE §2).
 *
 * A frame is buf[start … start+len). Push moves `start` 4 bytes back: the 12 MAC bytes are
 * copied down into the headroom (copyWithin, overlapping-safe) and the 4-byte tag goes
 * where the MACs' tail used to be, in front of the old EtherType. Pop is the reverse.
 * The caller keeps `len` (± 4) in its own column. Neither function allocates or throws:
 * on a precondition failure they return -1 and change nothing, and the caller counts the
 * drop (NO_HEADROOM, VLAN_TRUNCATED).
 *
 * The tag is a 32-bit number TPID << 16 | TCI (makeVlanTag), computed once when the flow
 * action is compiled; pushVlanTag writes it with four byte stores.
 */
import { rd16 } from '../packet/bytes.js';
import { ETH_HEADER_SIZE, VLAN_TAG_SIZE } from '../packet/constants.js';
import { isOuterVlanTpid } from '../packet/vlan.js';

/** MAC bytes (dst + src) that move on push/pop. */
const MACS_SIZE = 12;

/** TPID(16) | TCI(16) as one unsigned number, for pushVlanTag. */
export function makeVlanTag(tpid: number, tci: number): number {
  return (((tpid & 0xffff) << 16) | (tci & 0xffff)) >>> 0;
}

/**
 * Pushes the precomputed `tag` as the outermost tag. Needs start ≥ 4 (headroom) and
 * len ≥ 14; returns the new start (start - 4), or -1 when either does not hold.
 */
export function pushVlanTag(buf: Uint8Array, start: number, len: number, tag: number): number {
  if (start < VLAN_TAG_SIZE || len < ETH_HEADER_SIZE) return -1;
  const s = start - VLAN_TAG_SIZE;
  buf.copyWithin(s, start, start + MACS_SIZE);
  const p = s + MACS_SIZE;
  buf[p] = tag >>> 24;
  buf[p + 1] = tag >>> 16;
  buf[p + 2] = tag >>> 8;
  buf[p + 3] = tag;
  return s;
}

/** pushVlanTag with the tag given as TPID and TCI. */
export function pushVlan(buf: Uint8Array, start: number, len: number, tpid: number, tci: number): number {
  return pushVlanTag(buf, start, len, makeVlanTag(tpid, tci));
}

/**
 * Pops the outermost tag (TPID 0x8100, 0x88a8 or 0x9100 at byte 12); returns the new start
 * (start + 4), or -1 when the frame has no such tag or is shorter than 18 bytes.
 */
export function popVlan(buf: Uint8Array, start: number, len: number): number {
  if (len < ETH_HEADER_SIZE + VLAN_TAG_SIZE) return -1;
  if (!isOuterVlanTpid(rd16(buf, start + MACS_SIZE))) return -1;
  const s = start + VLAN_TAG_SIZE;
  buf.copyWithin(s, start, start + MACS_SIZE);
  return s;
}
