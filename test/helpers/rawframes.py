#!/usr/bin/env python3
"""Raw Ethernet frames for the integration tests, through AF_PACKET sockets.

  rawframes.py send IFACE                 frames as hex lines on stdin, sent in order
  rawframes.py recv IFACE SECONDS         prints each frame received (not sent) on IFACE as
                                          a hex line, VLAN tags re-inserted from PACKET_AUXDATA
                                          (the kernel strips them on receive); prints READY
                                          on stderr once listening
  rawframes.py flood IFACE COUNT DSTMAC   COUNT frames from random unicast source MACs
"""
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 3
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40


def open_sock(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    return s


def send(iface):
    s = open_sock(iface)
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    n = 0
    while True:
        line = sys.stdin.readline()  # one line at a time: a frame goes out as soon as it is written
        if not line:
            break
        line = line.strip()
        if line:
            try:
                s.send(bytes.fromhex(line))
            except OSError as e:
                # A socket bound while the link was down reports ENETDOWN once; go again.
                if e.errno != 100:
                    raise
                s.send(bytes.fromhex(line))
            n += 1
    print(n)


def recv(iface, seconds):
    s = open_sock(iface)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.settimeout(0.05)
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data, anc, _flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64))
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        for level, ctype, cdata in anc:
            if level == SOL_PACKET and ctype == PACKET_AUXDATA and len(cdata) >= 20:
                status, _l, _s, _m, _n, tci, tpid = struct.unpack("IIIHHHH", cdata[:20])
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        sys.stdout.write(data.hex() + "\n")
        sys.stdout.flush()


def flood(iface, count, dst):
    s = open_sock(iface)
    dstb = bytes.fromhex(dst.replace(":", ""))
    rnd = random.Random(42)
    payload = bytes(46)
    for i in range(count):
        src = bytes([0x02] + [rnd.randrange(256) for _ in range(5)])
        s.send(dstb + src + b"\x88\xb5" + payload)
        if i % 64 == 63:
            time.sleep(0.002)  # pace: the TAP queue in front of limed holds 1000 frames
    print(count)


def main():
    cmd = sys.argv[1]
    if cmd == "send":
        send(sys.argv[2])
    elif cmd == "recv":
        recv(sys.argv[2], float(sys.argv[3]))
    elif cmd == "flood":
        flood(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: rawframes.py send|recv|flood ...")


if __name__ == "__main__":
    main()
