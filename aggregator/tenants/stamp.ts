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

/** Device data read from columns (no request to stamp): each device's Resource and tenant set for `tenant`. */
export function stampData(data: DeviceData[], tenant: string): void {
  for (const d of data) {
    d.tenant = tenant;
    if (d.resource) d.resource = withResourceAttribute(d.resource, ATTR_TENANT_ID, tenant === '' ? null : tenant);
  }
}

/** The tenant a (stamped) Resource names, or ''. */
export function tenantOfResource(resource: Uint8Array | null | undefined): string {
  return resource ? (resourceStringAttribute(resource, ATTR_TENANT_ID) ?? '') : '';
}
