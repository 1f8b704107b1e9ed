// Weights in perlbal.conf and nodefiles (tsbal's `weight=N`): what they parse to, and the file:line errors for what
// cannot run. The same parser serves `tsbal check`, `tsbal run` and the live nodefile watcher.
import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, readPerlbalConfig } from '../../../src/config/perlbal.ts';
import { formatDiagnostic } from '../../../src/config/errors.ts';
import { parseNodefileText } from '../../../src/config/perlbal/nodefile.ts';

function load(text: string, files: Record<string, string> = {}) {
  const { value, diagnostics } = readPerlbalConfig(text, { file: 'p.conf', fs: memoryConfigFs(files, []), cwd: '/' });
  // Errors of lines only (these configs have no service on purpose).
  return { cfg: value, errors: diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).filter((e) => /^p\.conf:\d+: /.test(e)) };
}

describe('POOL ADD weight=N', () => {
  test('sets the node weight (0..256); no weight= leaves it unset (1)', () => {
    const { cfg, errors } = load('CREATE POOL p\nPOOL p ADD 10.0.0.1:80 weight=3\nPOOL p ADD 10.0.0.2 WEIGHT=0\nPOOL add p 10.0.0.3:81\n');
    expect(errors).toEqual([]);
    expect(cfg.pools[0]!.nodes).toEqual([
      { host: '10.0.0.1', port: 80, weight: 3 },
      { host: '10.0.0.2', port: 80, weight: 0 },
      { host: '10.0.0.3', port: 81 },
    ]);
  });

  test('a bad weight or weight= with REMOVE is a file:line error with the usage', () => {
    const { errors } = load('CREATE POOL p\nPOOL p ADD 10.0.0.1 weight=300\nPOOL p REMOVE 10.0.0.1 weight=2\nPOOL p ADD 10.0.0.1 weight=-1\n');
    expect(errors).toEqual([
      "p.conf:2: weight must be an integer from 0 to 256, not '300' (POOL <pool> ADD <ip>[:<port>] weight=<0..256>; weight 0 takes no new requests)",
      'p.conf:3: weight= goes with POOL ADD only (write POOL p ADD 10.0.0.1 weight=2)',
      "p.conf:4: weight must be an integer from 0 to 256, not '-1' (POOL <pool> ADD <ip>[:<port>] weight=<0..256>; weight 0 takes no new requests)",
    ]);
  });
});

describe('nodefile weight=', () => {
  test("Perlbal's lenient lines still parse; weight= after the address sets the weight", () => {
    expect(parseNodefileText('# backends\n10.0.0.1:8080 weight=2\nserver=10.0.0.2:8081x\n\nno address here\n10.0.0.3  # weight=9 is a comment\n')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 8080, weight: 2 },
        { host: '10.0.0.2', port: 8081 },
        { host: '10.0.0.3', port: 80 },
      ],
      problems: [],
    });
  });

  test('bad addresses, ports and weights are problems with their line numbers', () => {
    expect(parseNodefileText('10.0.0.1\n999.0.0.1:80\n10.0.0.2:70000\n10.0.0.3 weight=x\n').problems).toEqual([
      { line: 2, message: "'999.0.0.1:80' is not a valid IPv4 address and port" },
      { line: 3, message: "'10.0.0.2:70000' is not a valid IPv4 address and port" },
      { line: 4, message: "weight must be an integer from 0 to 256, not 'x'" },
    ]);
  });

  test('SET nodefile with a bad line is an error naming the nodefile line', () => {
    const { errors } = load('CREATE POOL p\nSET nodefile = /etc/nodes\n', { '/etc/nodes': '10.0.0.1\n10.0.0.2 weight=1000\n' });
    expect(errors).toEqual(["p.conf:2: nodefile /etc/nodes:2: weight must be an integer from 0 to 256, not '1000'"]);
  });

  test('SET nodefile keeps the weights', () => {
    const { cfg, errors } = load('CREATE POOL p\nSET nodefile = /etc/nodes\n', { '/etc/nodes': '10.0.0.1 weight=1\n10.0.0.2 weight=3\n' });
    expect(errors).toEqual([]);
    expect(cfg.pools[0]!.nodes).toEqual([{ host: '10.0.0.1', port: 80, weight: 1 }, { host: '10.0.0.2', port: 80, weight: 3 }]);
  });
});
