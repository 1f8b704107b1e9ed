// `tsbal status [--json] [--state-dir D]`: one screen for the admin from the running tsbal run (src/status/): this
// node's HA role, the peer, the VIP and who holds it, every service and backend with health and load, and the recent
// transitions. A table on a terminal (in colour unless NO_COLOR or TERM=dumb), plain lines otherwise, JSON with --json.
import { defineCommand } from 'citty';
import { DEFAULT_STATE_DIR } from '../ha/cluster.ts';
import { requestStatus } from '../status/socket.ts';
import { statusText } from '../status/view.ts';
import { applyLogArgs, guarded, logArgs, UsageError } from './common.ts';
import { wantsColour } from './usage.ts';

/** Exit status when no tsbal run answers (as `tsbal ha status`). */
const EXIT_NOT_RUNNING = 3;

export default defineCommand({
  meta: { name: 'status', description: 'Show the running tsbal: HA role, peer, VIP holder, services and backends (health, load), recent transitions' },
  args: {
    'state-dir': { type: 'string', description: `the state dir tsbal run uses (its status.sock); default ${DEFAULT_STATE_DIR}` },
    json: { type: 'boolean', description: 'print the status as JSON (for scripts)' },
    ...logArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      applyLogArgs(args);
      const status = await requestStatus(args['state-dir'] ?? DEFAULT_STATE_DIR).catch((e: Error) => {
        throw new UsageError(e.message, EXIT_NOT_RUNNING);
      });
      if (args.json) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      console.log(statusText(status, { terminal: process.stdout.isTTY === true, colour: wantsColour(process.stdout, process.env) }));
    }),
});
