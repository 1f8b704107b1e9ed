// Perlbal's MIME table ($Perlbal::ClientHTTPBase::MimeType, 16 entries): the extension is `\.(\w+)$` of the path,
// case-sensitive; anything else is text/plain.
const MIME: ReadonlyMap<string, string> = new Map([
  ['css', 'text/css'],
  ['doc', 'application/msword'],
  ['gif', 'image/gif'],
  ['htm', 'text/html'],
  ['html', 'text/html'],
  ['jpg', 'image/jpeg'],
  ['js', 'application/x-javascript'],
  ['mp3', 'audio/mpeg'],
  ['mpg', 'video/mpeg'],
  ['pdf', 'application/pdf'],
  ['png', 'image/png'],
  ['tif', 'image/tiff'],
  ['tiff', 'image/tiff'],
  ['torrent', 'application/x-bittorrent'],
  ['txt', 'text/plain'],
  ['zip', 'application/zip'],
]);

export function contentType(path: string): string {
  const m = /\.(\w+)$/.exec(path);
  return (m !== null ? MIME.get(m[1]!) : undefined) ?? 'text/plain';
}

/** The type of the first `\.(\w+)$` extension Perlbal's table knows, or null (concatenation picks the first such). */
export function knownContentType(path: string): string | null {
  const m = /\.(\w+)$/.exec(path);
  return m !== null ? (MIME.get(m[1]!) ?? null) : null;
}
