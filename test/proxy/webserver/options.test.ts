import { describe, expect, test } from 'bun:test';
import { memoryConfigFs, parsePerlbalConfig } from '../../../src/config/perlbal.ts';
import { runRefusals, roleSupport } from '../../../src/proxy/roles.ts';
import { webServerOptions } from '../../../src/proxy/webserver/options.ts';

const parse = (extra: string) =>
  parsePerlbalConfig(`CREATE SERVICE w\nSET role = web_server\nSET listen = 127.0.0.1:0\nSET docroot = /srv/www/\n${extra}ENABLE w\n`, { file: 'p.conf', fs: memoryConfigFs({}, ['/srv/www']) });

describe('web_server options', () => {
  test('served; docroot without its trailing slash, index_files list, dirindexing, Perlbal defaults for writes', () => {
    expect(roleSupport('web_server')).toBe('served');
    expect(webServerOptions(parse('SET index_files = a.html, b.html\nSET dirindexing = on\n').services[0]!)).toEqual({
      docroot: '/srv/www',
      dirindexing: true,
      indexFiles: ['a.html', 'b.html'],
      enablePut: false,
      enableDelete: false,
      enableMd5: true,
      maxPutSize: 0,
      maxChunkedRequestSize: 209_715_200,
      minPutDirectory: 0,
      enableConcatenateGet: false,
      leadingDir: null,
    });
    expect(webServerOptions(parse('').services[0]!).indexFiles).toEqual(['index.html']);
  });

  test('reads the write options', () => {
    const o = webServerOptions(
      parse('SET enable_put = on\nSET enable_delete = 1\nSET enable_md5 = off\nSET max_put_size = 1k\nSET min_put_directory = 2\nSET enable_concatenate_get = true\n').services[0]!,
    );
    expect([o.enablePut, o.enableDelete, o.enableMd5, o.maxPutSize, o.minPutDirectory, o.enableConcatenateGet]).toEqual([true, true, false, 1024, 2, true]);
  });

  test('enable_put, enable_delete and enable_concatenate_get are served, no longer refused', () => {
    expect(runRefusals(parse('SET enable_put = on\nSET enable_delete = 1\nSET enable_concatenate_get = true\n').services)).toEqual([]);
  });
});
