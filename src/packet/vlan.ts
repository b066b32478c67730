/**
 * IEEE 802.1Q / 802.1ad VLAN tag: TPID(2) | TCI(2), TCI = PCP(3) | DEI(1) | VID(12).
 *
 * `off` is the offset of the tag itself (the TPID), i.e. 12 for the outer tag of a frame at
 * 0. Pushing and popping tags (moving the MACs) belongs to tunnel/; these only read and
 * write one tag in place.
 */
import { rd16, wr16 } from './bytes.js';
import {
  TPID_8021AD,
  TPID_8021Q,
  TPID_QINQ_LEGACY,
  VLAN_DEI,
  VLAN_PCP_SHIFT,
  VLAN_VID_MASK,
} from './constants.js';

export const VLAN_TPID = 0;
export const VLAN_TCI = 2;
/** The EtherType (or next TPID) after the tag, relative to the tag. */
export const VLAN_NEXT_TYPE = 4;
export { VLAN_TAG_SIZE } from './constants.js';

export function vlanTpid(buf: Uint8Array, off: number): number {
  return rd16(buf, off + VLAN_TPID);
}
export function vlanTci(buf: Uint8Array, off: number): number {
  return rd16(buf, off + VLAN_TCI);
}
export function vlanVid(buf: Uint8Array, off: number): number {
  return rd16(buf, off + VLAN_TCI) & VLAN_VID_MASK;
}
export function vlanPcp(buf: Uint8Array, off: number): number {
  return buf[off + VLAN_TCI]! >>> 5;
}
export function setVlanTci(buf: Uint8Array, off: number, tci: number): void {
  wr16(buf, off + VLAN_TCI, tci);
}
export function writeVlanTag(buf: Uint8Array, off: number, tpid: number, tci: number): void {
  wr16(buf, off + VLAN_TPID, tpid);
  wr16(buf, off + VLAN_TCI, tci);
}

/** TCI from its parts (DEI optional). */
export function makeTci(vid: number, pcp = 0, dei = false): number {
  return ((pcp & 7) << VLAN_PCP_SHIFT) | (dei ? VLAN_DEI : 0) | (vid & VLAN_VID_MASK);
}

/** TPIDs accepted for any tag: 802.1Q C-tag and 802.1ad S-tag. */
export function isVlanTpid(tpid: number): boolean {
  return tpid === TPID_8021Q || tpid === TPID_8021AD;
}
/** TPIDs accepted for the outer tag: those plus the legacy QinQ 0x9100. */
export function isOuterVlanTpid(tpid: number): boolean {
  return tpid === TPID_8021Q || tpid === TPID_8021AD || tpid === TPID_QINQ_LEGACY;
}
