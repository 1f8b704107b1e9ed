// The heartbeat media of ha.cf (bcast, mcast, ucast) on node:dgram.
//
// Heartbeat binds one receive socket per medium with SO_BINDTODEVICE, which node:dgram cannot set. tsbal binds one
// socket per UDP port on 0.0.0.0 and accepts packets from any interface: the HMAC, not the interface, is what makes a
// packet trustworthy, and duplicates arriving over several media are dropped by sequence number as heartbeat does.
// Sending follows each medium exactly: the interface's broadcast address, the multicast group, or the peer.
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Medium } from '../config/model.ts';
import { MAX_PACKET } from './wire.ts';

export interface InterfaceAddress {
  address: string;
  prefix: number;
  broadcast: string;
}

function toInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}
function toIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function broadcastOf(address: string, prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return toIp((toInt(address) | ~mask) >>> 0);
}

export function inSubnet(ip: string, network: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((toInt(ip) & mask) >>> 0) === ((toInt(network) & mask) >>> 0);
}

/** IPv4 addresses of an interface (labels like eth0:0 share eth0), primary first; empty if it has none. */
export function interfaceAddresses(iface: string): InterfaceAddress[] {
  const all = networkInterfaces()[iface] ?? [];
  return all
    .filter((a) => a.family === 'IPv4')
    .map((a) => {
      const prefix = Number(a.cidr?.split('/')[1] ?? 32);
      return { address: a.address, prefix, broadcast: broadcastOf(a.address, prefix) };
    });
}

export interface Transport {
  send(bytes: Uint8Array): void;
  /** One line per medium, for logs and `ha status`. */
  describe(): string[];
  close(): Promise<void>;
}

interface Route {
  socket: Socket;
  address: string;
  port: number;
  label: string;
}

export interface TransportOptions {
  media: Medium[];
  udpPort: number;
  onPacket(bytes: Uint8Array, from: string): void;
  onError(msg: string): void;
}

function bindSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.once('error', reject);
    socket.bind({ port, address: '0.0.0.0' }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export async function openTransport(options: TransportOptions): Promise<Transport> {
  const sockets = new Map<number, Socket>();
  const routes: Route[] = [];
  const socketFor = async (port: number): Promise<Socket> => {
    let s = sockets.get(port);
    if (!s) {
      try {
        s = await bindSocket(port);
      } catch (error) {
        throw new Error(`cannot bind UDP port ${port} for heartbeat: ${(error as Error).message}`);
      }
      s.on('message', (msg, rinfo) => {
        if (msg.length <= MAX_PACKET) options.onPacket(msg, rinfo.address);
      });
      s.on('error', (error) => options.onError(`heartbeat socket on port ${port}: ${error.message}`));
      sockets.set(port, s);
    }
    return s;
  };
  try {
    for (const m of options.media) {
      const where = `${m.loc.file}:${m.loc.line}`;
      const addrs = interfaceAddresses(m.iface);
      if (m.kind !== 'ucast' && addrs.length === 0) {
        throw new Error(`${where}: ${m.kind} ${m.iface}: no such interface, or it has no IPv4 address`);
      }
      if (m.kind === 'bcast') {
        const s = await socketFor(options.udpPort);
        s.setBroadcast(true);
        routes.push({ socket: s, address: addrs[0]!.broadcast, port: options.udpPort, label: `bcast ${m.iface} -> ${addrs[0]!.broadcast}:${options.udpPort}` });
      } else if (m.kind === 'mcast') {
        const s = await socketFor(m.port);
        s.addMembership(m.group, addrs[0]!.address);
        s.setMulticastInterface(addrs[0]!.address);
        s.setMulticastTTL(m.ttl);
        s.setMulticastLoopback(m.loop);
        routes.push({ socket: s, address: m.group, port: m.port, label: `mcast ${m.iface} -> ${m.group}:${m.port} ttl ${m.ttl}` });
      } else {
        const s = await socketFor(options.udpPort);
        routes.push({ socket: s, address: m.peer, port: options.udpPort, label: `ucast ${m.iface} -> ${m.peer}:${options.udpPort}` });
      }
    }
  } catch (error) {
    for (const s of sockets.values()) s.close();
    throw error;
  }
  const failing = new Set<string>();
  return {
    send(bytes) {
      for (const r of routes) {
        r.socket.send(bytes, r.port, r.address, (error) => {
          // A link that is down must not stop the others; say so once per outage, not per packet.
          if (error && !failing.has(r.label)) {
            failing.add(r.label);
            options.onError(`${r.label}: send failed: ${error.message}`);
          } else if (!error) failing.delete(r.label);
        });
      }
    },
    describe: () => routes.map((r) => r.label),
    close: async () => {
      await Promise.all([...sockets.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
