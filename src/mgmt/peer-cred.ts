/**
 * Who may use the management socket: root, and the user limed runs as (the same user
 * could signal or ptrace limed anyway). Checked per connection from its peer credentials
 * (SO_PEERCRED, read by the native addon), in addition to the socket's mode 0600.
 */
import type net from 'node:net';

/** The user id of a connection's peer, or -errno (the native addon's lime_peer_uid). */
export type PeerUid = (fd: number) => number;

/** A ManagementServer checkPeer: undefined (allowed) or why the connection is refused. */
export function rootOrOwnUserOnly(peerUid: PeerUid, ownUid: number): (socket: net.Socket) => string | undefined {
  return (socket) => {
    // libuv's pipe handle holds the accepted descriptor (Node exposes it on Unix).
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return 'the peer credentials of the connection cannot be read';
    const uid = peerUid(fd);
    if (uid < 0) return `the peer credentials of the connection cannot be read (errno ${-uid})`;
    if (uid === 0 || uid === ownUid) return undefined;
    return `user id ${uid} is not root; the management socket serves root only`;
  };
}
