// `tsbal anycast status|drain|resume|withdraw`: anycast mode (src/anycast/) from the command line. status, drain and
// resume ask the running `tsbal run` over its status socket; withdraw works without it (the unit's ExecStopPost, or
// by hand after a crash): it removes the announced copy of the VIP and the local route.
import { defineCommand } from 'citty';
import { anycastSettings, ANYCAST_DEFAULTS } from '../config/anycast.ts';
import { parseAnycastDev, parseAnycastVip } from '../config/perlbal/anycast.ts';
import { DEFAULT_STATE_DIR } from '../ha/cluster.ts';
import * as address from '../anycast/address.ts';
import type { AnycastAnswer } from '../anycast/run.ts';
import { requestAnycast } from '../status/socket.ts';
import { anycastLine } from '../status/view.ts';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';
import { DEFAULT_PERLBAL_CONF } from './run.ts';
import { readPerlbalConfigFile } from '../config/perlbal.ts';
import { formatDiagnostic } from '../config/errors.ts';

const stateDirArg = { 'state-dir': { type: 'string', description: `the state dir tsbal run uses (its status.sock); default ${DEFAULT_STATE_DIR}` } } as const;

function asking(action: 'status' | 'drain' | 'resume', description: string) {
  return defineCommand({
    meta: { name: action, description },
    args: { ...stateDirArg, json: { type: 'boolean', description: 'print JSON' }, ...logArgs },
    run: ({ args }) =>
      guarded(async () => {
        applyLogArgs(args);
        const answer: AnycastAnswer = await requestAnycast(args['state-dir'] ?? DEFAULT_STATE_DIR, { cmd: 'anycast', action, by: `tsbal anycast ${action}` }).catch((e: Error) => {
          throw new UsageError(e.message, 3);
        });
        if (!answer.ok) throw new UsageError(answer.msg);
        console.log(args.json ? JSON.stringify(answer.anycast, null, 2) : anycastLine(answer.anycast));
      }),
  });
}

const withdraw = defineCommand({
  meta: { name: 'withdraw', description: 'Remove the anycast VIP from anycast_dev and its local route (for ExecStopPost and after a crash)' },
  args: {
    vip: { type: 'string', description: 'the VIP (IP/32 or IP/128); default: SERVER anycast_vip of -c' },
    dev: { type: 'string', description: `the interface; default: SERVER anycast_dev of -c, else ${ANYCAST_DEFAULTS.dev}` },
    config: { type: 'string', alias: 'c', description: `perlbal.conf to read them from (default ${DEFAULT_PERLBAL_CONF})` },
    ...logArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      applyLogArgs(args);
      let vip: string;
      let dev: string;
      if (args.vip !== undefined) {
        const v = parseAnycastVip(args.vip);
        if (!v.ok) throw new UsageError(`--vip: ${v.message}`, 2);
        vip = v.value;
        const d = parseAnycastDev(args.dev ?? ANYCAST_DEFAULTS.dev);
        if (!d.ok) throw new UsageError(`--dev: ${d.message}`, 2);
        dev = d.value;
      } else {
        // A cleanup must work even when perlbal.conf has since been broken: only the anycast lines are needed.
        const file = args.config ?? DEFAULT_PERLBAL_CONF;
        const read = readPerlbalConfigFile(file);
        const st = anycastSettings(read.value);
        if (st === null) {
          const why = read.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).slice(0, 3);
          throw new UsageError(`${file} has no usable SERVER anycast_vip; give --vip${why.length > 0 ? `\n${why.join('\n')}` : ''}`);
        }
        vip = st.vip;
        dev = args.dev ?? st.dev;
      }
      const v = { vip, dev, family: vip.endsWith('/128') ? (6 as const) : (4 as const) };
      const r = await address.withdraw(v).catch((e: Error) => {
        throw new UsageError(e.message);
      });
      await address.stopAnswering(v).catch((e: Error) => {
        throw new UsageError(e.message);
      });
      console.log(r === 'removed' ? `anycast ${vip} withdrawn from ${dev}` : `anycast ${vip} was not on ${dev}`);
    }),
});

export default defineCommand({
  meta: { name: 'anycast', description: 'Anycast mode: status, drain (withdraw and hold), resume, withdraw (cleanup without tsbal run)' },
  subCommands: {
    status: asking('status', 'Whether the running tsbal announces its anycast VIP, and why'),
    drain: asking('drain', 'Withdraw the VIP and keep it withdrawn (connections that still arrive are served) until resume'),
    resume: asking('resume', 'Announce again after drain (when the services on the VIP can serve)'),
    withdraw,
  },
});
