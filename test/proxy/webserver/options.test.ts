import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { runRefusals, roleSupport } from '../../../src/proxy/roles.ts';
import { webServerOptions } from '../../../src/proxy/webserver/options.ts';

const parse = (extra: string) =>
  parsePerlbalConfig(`CREATE SERVICE w\nSET role = web_server\nSET listen = 127.0.0.1:0\nSET docroot = /srv/www/\n${extra}ENABLE w\n`, { file: 'p.conf', fs: memoryConfigFs({}, ['/srv/www']) });

describe('web_server options', () => {
  test('served; docroot without its trailing slash, index_files list, dirindexing', () => {
    expect(roleSupport('web_server')).toBe('served');
    expect(webServerOptions(parse('SET index_files = a.html, b.html\nSET dirindexing = on\n').services[0]!)).toEqual({
      docroot: '/srv/www', dirindexing: true, indexFiles: ['a.html', 'b.html'], leadingDir: null,
    });
    expect(webServerOptions(parse('').services[0]!).indexFiles).toEqual(['index.html']);
  });

  test('enable_put, enable_delete and enable_concatenate_get on are refused at file:line; off is fine', () => {
    expect(runRefusals(parse('SET enable_put = off\n').services)).toEqual([]);
    const refused = runRefusals(parse('SET enable_put = on\nSET enable_delete = 1\nSET enable_concatenate_get = true\n').services);
    expect(refused.map((r) => `${r.loc.file}:${r.loc.line}: ${r.message}`)).toEqual(
      ['enable_put', 'enable_delete', 'enable_concatenate_get'].map(
        (k) => `p.conf:1: service w: ${k} is not supported by this version of tsbal run (web_server serves GET and HEAD only); remove it or run Perlbal`,
      ),
    );
  });
});
