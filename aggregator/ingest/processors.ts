import type { AggregatorConfig } from '../config.js';
import type { Membership } from '../cluster/membership.js';
import { RecordProcessors, type ProcessorCounters } from '../../runtime/processors/chain.js';
import { Quotas, type QuotasConfig, type RingPart } from '../tenants/quotas.js';
import { LogSampler, type SamplingConfig } from '../tenants/sampling.js';
import { IngestAttributes } from './attribute-processors.js';
import type { IngestProcessors } from './uplink-service.js';

/** The processors a node's `processors` list configures for its ingest (absent: not listed). */
export function ingestProcessors(
  cfg: AggregatorConfig,
  selfId: string,
  membership: () => Membership | null,
  counters: ProcessorCounters,
): Omit<IngestProcessors, 'admission'> {
  const part = ringPart(selfId, membership);
  const quotas = cfg.processors.find((p) => p.kind === 'quotas');
  const sampling = cfg.processors.find((p) => p.kind === 'sampling');
  const records = RecordProcessors.build(cfg.processors, 'processors', counters);
  return {
    attributes: records ? new IngestAttributes(records.otlpHooks()) : undefined,
    quotas: quotas ? new Quotas(quotas.config as QuotasConfig, part) : undefined,
    sampler: sampling ? new LogSampler(sampling.config as SamplingConfig, part) : undefined,
  };
}

/** Where node `selfId` stands in the ring, for its part of each tenant's limits (read at most once a second). */
function ringPart(selfId: string, membership: () => Membership | null): RingPart {
  let at = -Infinity;
  let part = { members: 1, share: 1 };
  const read = () => {
    const now = Date.now();
    const m = membership();
    if (now - at > 1000 && m !== null) {
      at = now;
      const members = m.view().members.filter((x) => x.share > 0);
      part = {
        members: Math.max(1, members.length),
        share: members.find((x) => x.id === selfId)?.share ?? 1 / Math.max(1, members.length),
      };
    }
    return part;
  };
  return { members: () => read().members, share: () => read().share };
}
