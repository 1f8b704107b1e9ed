// A small UDP relay that delays datagrams, for a kernel without sch_netem: an nft DNAT rule in the sender's namespace
// sends its heartbeats here (see jitter.ts), and this forwards each to the real destination after its own delay, as
// netem's `delay MEAN JITTER distribution normal` would (datagrams may overtake each other). It starts calm (no
// delay); commands on a control socket on 127.0.0.1 switch it:
//   jitter MEAN SPREAD   each datagram waits max(0, normal(MEAN, SPREAD)) ms, at most MEAN + 3 SPREAD
//   calm                 forward at once
//   stall MS             hold everything for MS ms (then each datagram's own delay on top)
//   stats                print the counters as one JSON line on stdout
// Bounded: exits after --max-seconds and forwards at most --max-packets datagrams.
//
// bun test/harness/udp-delay-relay.ts --listen-port P --to IP:PORT --source-port S --control-port C --max-seconds N --max-packets N
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'listen-port': { type: 'string' },
    to: { type: 'string' },
    'source-port': { type: 'string' },
    'control-port': { type: 'string' },
    'max-seconds': { type: 'string', default: '120' },
    'max-packets': { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
  },
});
const need = (name: string, v: string | undefined): string => {
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
const listenPort = Number(need('listen-port', values['listen-port']));
const [toHost, toPortText] = need('to', values.to).split(':');
const toPort = Number(toPortText);
const sourcePort = Number(need('source-port', values['source-port']));
const controlPort = Number(need('control-port', values['control-port']));
const maxPackets = Number(values['max-packets']);

// A seeded generator, so a run can be repeated (mulberry32).
let state = Number(values.seed) >>> 0 || 1;
const random = (): number => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const normal = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

let mode: { kind: 'calm' } | { kind: 'jitter'; mean: number; spread: number } = { kind: 'calm' };
let stallUntil = 0;
const stats = { received: 0, forwarded: 0, delayed: 0, maxDelayMs: 0, overtaken: 0, dropped: 0 };
let lastSentSeq = -1;
let nextSeq = 0;

const out = createSocket('udp4');
const inbound = createSocket('udp4');
const control = createSocket('udp4');

inbound.on('message', (msg) => {
  stats.received++;
  if (stats.forwarded + stats.dropped >= maxPackets) {
    stats.dropped++;
    return;
  }
  const seq = nextSeq++;
  const now = performance.now();
  let delay = 0;
  if (mode.kind === 'jitter') delay = Math.min(mode.mean + 3 * mode.spread, Math.max(0, mode.mean + mode.spread * normal()));
  const releaseAt = Math.max(now, stallUntil) + delay;
  const wait = releaseAt - now;
  const send = (): void => {
    // A stall holds what is already waiting too, so that the receiver hears nothing for its whole length.
    const held = stallUntil - performance.now();
    if (held > 0) {
      setTimeout(send, held);
      return;
    }
    if (seq < lastSentSeq) stats.overtaken++;
    lastSentSeq = Math.max(lastSentSeq, seq);
    stats.forwarded++;
    out.send(msg, toPort, toHost);
  };
  if (wait <= 0) return send();
  stats.delayed++;
  stats.maxDelayMs = Math.max(stats.maxDelayMs, Math.round(wait));
  setTimeout(send, wait);
});

control.on('message', (msg) => {
  const [cmd, a, b] = msg.toString('utf8').trim().split(/\s+/);
  if (cmd === 'jitter') mode = { kind: 'jitter', mean: Number(a), spread: Number(b) };
  else if (cmd === 'calm') mode = { kind: 'calm' };
  else if (cmd === 'stall') stallUntil = performance.now() + Number(a);
  else if (cmd !== 'stats') return;
  console.log(JSON.stringify({ cmd: msg.toString('utf8').trim(), mode, ...stats }));
});

out.bind({ port: sourcePort }, () => {
  inbound.bind({ port: listenPort }, () => {
    control.bind({ port: controlPort, address: '127.0.0.1' }, () => console.log('relay ready'));
  });
});

setTimeout(() => {
  console.log(JSON.stringify({ cmd: 'exit', mode, ...stats }));
  process.exit(0);
}, Number(values['max-seconds']) * 1000);
