// HTTP on the management port (Perlbal's ClientManage handle_http): its XHTML pages, byte for byte, plus
// `GET /metrics` (Prometheus text), and tsbal's status page (`/status`, HTML) and `/status.json`. One request per connection, answered with HTTP/1.0 and closed, as in Perlbal.
import { newSession, runLine, type ManagementTarget } from './commands.ts';
import { statusHtml, statusJson } from './status.ts';
import { METRICS_CONTENT_TYPE, prometheusText, type MetricFamily } from './metrics.ts';

export interface HttpAnswer {
  /** Status line and header lines, ending in the blank line. */
  head: string;
  body: string;
}

const PAGE_START =
  '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n' +
  '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en-ZA">\n' +
  '<head><title>perlbal management interface</title><meta name="generator" content="perlbal" /></head><body>';
const PAGE_END = "<hr style='margin-top: 10px' /><p><a href='/'>Perlbal management</a>.</p></body></html>\n";

/** A command's output in Perlbal's grey-titled <pre> box (lines unescaped, as Perlbal prints them). */
async function prebox(target: ManagementTarget, cmd: string): Promise<string> {
  const { lines } = await runLine(target, newSession(), cmd);
  return `<pre><div style='margin-bottom: 5px; background: #ddd'><b>${cmd}</b></div>${lines.map((l) => `${l}\n`).join('')}</pre>\n`;
}

async function page(target: ManagementTarget, path: string): Promise<{ code: string; body: string }> {
  if (path === '/') {
    let body = "<h1>perlbal management interface</h1><ul><li><a href='/socks'>Sockets</a></li><li><a href='/obj'>Perl Objects in use</a></li><li>Service Details<ul>";
    for (const s of [...target.services()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const role = target.service(s.name)?.role ?? '';
      body += `<li><a href='/service?${s.name}'>${s.name}</a> - ${role}${s.listen === null ? '' : ` (${s.listen})`}</li>\n`;
    }
    return { code: '200 OK', body: `${body}</ul></li></ul>` };
  }
  if (path === '/socks') return { code: '200 OK', body: (await prebox(target, 'socks summary')) + (await prebox(target, 'socks')) };
  if (path === '/obj') return { code: '200 OK', body: await prebox(target, 'obj') };
  const service = /^\/service\?(\w+)$/.exec(path);
  if (service) return { code: '200 OK', body: await prebox(target, `show service ${service[1]}`) };
  return { code: '404 Not found', body: '<h1>404 Not found</h1>' };
}

/** The answer to one HTTP request on the management port. */
export async function managementHttp(target: ManagementTarget, method: string, path: string, metrics: () => Promise<MetricFamily[]>): Promise<HttpAnswer> {
  if ((method === 'GET' || method === 'HEAD') && (path === '/metrics' || path.startsWith('/metrics?'))) {
    const body = prometheusText(await metrics());
    return { head: `HTTP/1.0 200 OK\r\nContent-Type: ${METRICS_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, body };
  }
  if ((method === 'GET' || method === 'HEAD') && (path === '/status' || path.startsWith('/status?'))) {
    const body = statusHtml(target.status());
    return { head: `HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, body };
  }
  if ((method === 'GET' || method === 'HEAD') && path === '/status.json') {
    const body = statusJson(target.status());
    return { head: `HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, body };
  }
  const { code, body: inner } = await page(target, path);
  const body = PAGE_START + inner + PAGE_END;
  // Perlbal's head, `Content-type` spelling included; its pages are ASCII unless a name is not.
  return { head: `HTTP/1.0 ${code}\r\nContent-type: text/html\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n`, body };
}
