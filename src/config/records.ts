// Config text names keys (service names, commands, directives), so a name like `__proto__` or
// `constructor` must never reach Object.prototype: look up own keys only, store in null-prototype records.

/** `rec[key]` if it is the record's own key, else undefined. */
export function own<T>(rec: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** An empty record without a prototype, safe to index with any string. */
export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A deep copy of a record of plain data, keeping it prototype-free (structuredClone would restore Object.prototype). */
export function cloneRecord<T>(rec: Readonly<Record<string, T>>): Record<string, T> {
  const out = emptyRecord<T>();
  for (const key of Object.keys(rec)) out[key] = structuredClone(rec[key]!);
  return out;
}
