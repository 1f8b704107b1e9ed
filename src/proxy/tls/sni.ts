// Which certificate answers a TLS client hello: pure lookup from the server name (SNI) to an entry index. Exact
// names win over wildcards; a wildcard `*.example.org` covers one label (`a.example.org`, not `example.org` nor
// `a.b.example.org`), as RFC 6125 and browsers match. No name, or no match: the default (entry 0).

export interface SniTable {
  exact: Map<string, number>;
  /** `example.org` for `*.example.org`. */
  wildcard: Map<string, number>;
}

/** Entry i serves names[i]; the first entry to claim a name keeps it (the default first, then directory order). */
export function buildSniTable(names: ReadonlyArray<readonly string[]>): SniTable {
  const table: SniTable = { exact: new Map(), wildcard: new Map() };
  names.forEach((list, i) => {
    for (const raw of list) {
      const name = raw.toLowerCase();
      if (name.startsWith('*.')) {
        if (!table.wildcard.has(name.slice(2))) table.wildcard.set(name.slice(2), i);
      } else if (!table.exact.has(name)) table.exact.set(name, i);
    }
  });
  return table;
}

/** The entry for a client's server name; 0 (the default) when it names nothing we hold. */
export function pickCertificate(table: SniTable, serverName: string | undefined | false): number {
  if (!serverName) return 0;
  let name = serverName.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const exact = table.exact.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wild = table.wildcard.get(name.slice(dot + 1));
    if (wild !== undefined) return wild;
  }
  return 0;
}
