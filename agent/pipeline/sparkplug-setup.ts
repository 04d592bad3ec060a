import type { Logger } from 'pino';
import type { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import type { Batcher } from '../buffer/batcher.js';
import type { AgentConfig } from '../config.js';
import type { AgentMetrics } from '../ops/metrics.js';
import { SparkplugIngest } from './sparkplug.js';
import type { SideStore } from '../buffer/side-state.js';
import { EdgeNodes } from './sparkplug-state.js';

/** The Sparkplug B ingest `mqtt.sparkplug` asks for, its edge nodes loaded from the buffer; null when disabled. */
export async function sparkplugIngest(
  cfg: AgentConfig,
  store: SideStore,
  batcher: Batcher,
  publish: (topic: string, payload: Buffer) => void,
  m: AgentMetrics,
  log: Logger,
  rejectLog: RateLimitedLog,
): Promise<SparkplugIngest | null> {
  const sp = cfg.mqtt.sparkplug;
  if (!sp.enabled) return null;
  const nodes = await EdgeNodes.load(store, (err) => log.error({ err: err.message }, 'Sparkplug state'));
  log.info({ edgeNodes: nodes.size, topicRoot: sp.topic_root }, 'Sparkplug B ingest on');
  return new SparkplugIngest(
    {
      topicRoot: sp.topic_root,
      deviceId: sp.device_id,
      nodeId: sp.node_id,
      reorderTimeoutMs: sp.reorder_timeout,
      requestRebirth: sp.request_rebirth,
    },
    batcher,
    nodes,
    publish,
    {
      onMessage: (type) => m.sparkplugMessages.inc({ type }),
      onRefused: (reason, topic, message) => {
        m.sparkplugRefused.inc({ reason });
        rejectLog.warn(`sparkplug:${reason}`, { topic, reason }, message);
      },
      onSkipped: (reason, n) => m.sparkplugSkipped.inc({ reason }, n),
      onLost: (edgeNode, n) => {
        m.sparkplugLost.inc(n);
        rejectLog.warn(
          'sparkplug:lost',
          { edgeNode, lost: n },
          'Sparkplug messages lost (seq gap past the reorder timeout)',
        );
      },
      onRebirthRequested: (edgeNode) => {
        m.sparkplugRebirths.inc();
        log.info({ edgeNode }, 'Sparkplug rebirth requested');
      },
    },
  );
}
