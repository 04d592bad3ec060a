import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../../../aggregator/device/device-record.js';
import { DeviceTenants } from '../../../../aggregator/tenants/device-tenants.js';
import { stampData, tenantOfResource } from '../../../../aggregator/tenants/stamp.js';
import { withResourceAttribute } from '../../../../protocol/otlp/resource-attribute.js';

const resourceOf = (tenant: string) => withResourceAttribute(new Uint8Array(0), 'tenant.id', tenant);

function device(id: string, tenant: string): Device {
  const d = new Device(id);
  if (tenant !== '') d.setResource(resourceOf(tenant));
  return d;
}

test("a device takes its own tenant's data; another tenant's, or data in no tenant, is refused", () => {
  const devices = [device('a', 'acme'), device('free', '')];
  const t = new DeviceTenants(() => devices);
  assert.equal(t.refusal(devices[0], 'acme'), null);
  assert.equal(t.refusal(devices[0], 'globex'), 'other_tenant');
  assert.equal(t.refusal(devices[0], ''), 'other_tenant');
  assert.equal(t.refusal(devices[1], 'globex'), null, 'a device in no tenant is taken by the first that sends');
  assert.equal(t.refusal(undefined, 'globex'), null);
});

test('device quota: a tenant at its limit on this node gets no new device; its own stay writable', () => {
  const devices = [device('a1', 'acme'), device('a2', 'acme'), device('g1', 'globex')];
  const t = new DeviceTenants(
    () => devices,
    (tenant) => (tenant === 'acme' ? 2 : 0),
  );
  assert.equal(t.refusal(undefined, 'acme'), 'devices');
  assert.equal(t.refusal(devices[0], 'acme'), null);
  assert.equal(t.refusal(undefined, 'globex'), null, '0 = no limit');
  t.moved('acme', 'globex'); // a1 went to globex (as a reload would find it)
  assert.equal(t.count('acme'), 1);
  assert.equal(t.refusal(undefined, 'acme'), null);
  t.moved(undefined, 'acme');
  assert.equal(t.refusal(undefined, 'acme'), 'devices');
  t.reset();
  assert.equal(t.count('acme'), 2, 'counted again from the devices themselves');
});

test('stampData sets the tenant on data read from columns and on its Resource', () => {
  const data = [
    { deviceId: 'x', metric: [], ts: [], value: [], seqTs: [], seq: [], resource: resourceOf('acme') },
    { deviceId: 'y', metric: [], ts: [], value: [], seqTs: [], seq: [], resource: null },
  ];
  stampData(data, 'globex');
  assert.equal(tenantOfResource(data[0].resource), 'globex');
  assert.equal((data[0] as { tenant?: string }).tenant, 'globex');
  stampData(data, '');
  assert.equal(tenantOfResource(data[0].resource), '', 'a sender in no tenant cannot name one');
});
