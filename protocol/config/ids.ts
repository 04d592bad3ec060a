/** Ids of gateways, nodes and devices: 1–128 characters of [A-Za-z0-9._:-] (DESIGN.md). */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** A valid id made from a host name (invalid characters become '-'), or `fallback` when nothing is left. */
export function idFromHostName(host: string, fallback: string): string {
  const id = host.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128);
  return ID_PATTERN.test(id) ? id : fallback;
}
