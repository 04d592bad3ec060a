import { ATTR_TENANT_ID } from '../../protocol/otlp/semconv.js';
import {
  resourceStringAttribute,
  withRequestResourceAttribute,
  withResourceAttribute,
} from '../../protocol/otlp/resource-attribute.js';
import type { DeviceData } from '../device/types.js';

/**
 * `tenant.id` on what a sender's token allows: every Resource a sender in tenant T sends says `tenant.id = T`, and
 * one a sender in no tenant sends says none, whatever the sender wrote (a device cannot claim another tenant's
 * place). Done once, where data enters the cluster; owners, exporters and the API read it from there.
 */

/** An inflated OTLP request stamped for `tenant` ('' = in no tenant); the same bytes when nothing changes. */
export function stampRequest(raw: Uint8Array, tenant: string): Uint8Array {
  return withRequestResourceAttribute(raw, ATTR_TENANT_ID, tenant === '' ? null : tenant);
}

/**
 * Resources read from an uplink stream are the same objects batch after batch (the stream's dictionary holds them),
 * so what was worked out for one is kept beside it, and dropped with it: a stream of 1,000 devices stamps 1,000
 * Resources once, not once per batch.
 */
const stamped = new WeakMap<Uint8Array, { tenant: string; bytes: Uint8Array }>();
const named = new WeakMap<Uint8Array, string>();

/** Device data read from columns (no request to stamp): each device's Resource and tenant set for `tenant`. */
export function stampData(data: DeviceData[], tenant: string): void {
  for (const d of data) {
    d.tenant = tenant;
    const r = d.resource;
    if (!r) continue;
    let s = stamped.get(r);
    if (s === undefined || s.tenant !== tenant) {
      s = { tenant, bytes: withResourceAttribute(r, ATTR_TENANT_ID, tenant === '' ? null : tenant) };
      stamped.set(r, s);
    }
    d.resource = s.bytes;
  }
}

/** The tenant a (stamped) Resource names, or ''. */
export function tenantOfResource(resource: Uint8Array | null | undefined): string {
  if (!resource) return '';
  let t = named.get(resource);
  if (t === undefined) named.set(resource, (t = resourceStringAttribute(resource, ATTR_TENANT_ID) ?? ''));
  return t;
}
