import { defineCommand } from 'citty';
import { VERSION_LINE } from '../version.ts';

export default defineCommand({
  meta: { name: 'version', description: 'Print the tsbal version' },
  run() {
    console.log(VERSION_LINE);
  },
});
