/** HTTP Basic credentials (RFC 7617): `Authorization: Basic base64(user:password)`. */

export interface BasicCredentials {
  user: string;
  password: string;
}

/** The credentials of an Authorization header, or undefined when it is missing or not Basic. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined || header.length > 4096) return undefined;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
