// planConsoles: how a reload matches the running management consoles to the next config's management services.
import { describe, expect, test } from 'bun:test';
import type { ServiceModel } from '../../../src/config/model.ts';
import { planConsoles, summarizeConsolePlan, type ConsoleListener } from '../../../src/proxy/management/listeners.ts';

const running = (name: string, port: number): ConsoleListener => ({ name, listen: { host: '127.0.0.1', port }, console: null as never, bound: true, bindError: null });
const model = (name: string, port: number): ServiceModel => ({ name, listen: { host: '127.0.0.1', port } }) as ServiceModel;

describe('planConsoles', () => {
  test('the same address keeps its console even renamed; a new address opens; a gone one closes', () => {
    const a = running('mgmt', 9000);
    const b = running('old', 9001);
    const plan = planConsoles([a, b], [model('admin', 9000), model('new', 9002)]);
    expect(plan.keep).toEqual([{ console: a, name: 'admin' }]);
    expect(plan.open.map((m) => m.name)).toEqual(['new']);
    expect(plan.close).toEqual([b]);
    expect(summarizeConsolePlan(plan)).toBe('management +127.0.0.1:9002 -127.0.0.1:9001 127.0.0.1:9000 mgmt→admin');
  });
  test('port 0 is the same listener only for the same service; nothing changed says nothing', () => {
    const z = running('m', 0);
    expect(planConsoles([z], [model('other', 0)])).toMatchObject({ keep: [], close: [z] });
    const same = planConsoles([z], [model('m', 0)]);
    expect(same.keep).toEqual([{ console: z, name: 'm' }]);
    expect(summarizeConsolePlan(same)).toBe('');
  });
});
