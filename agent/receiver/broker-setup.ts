import type { Logger } from 'pino';
import type { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import type { MemoryLimiter } from '../../runtime/processors/memory-limiter.js';
import type { TopicMatcher } from '../../protocol/topics.js';
import type { AgentConfig } from '../config.js';
import { AgentErrorCodes } from '../errors.js';
import type { AgentMetrics } from '../ops/metrics.js';
import { DeviceAuthorizer } from './auth.js';
import { AuthErrorCodes } from './auth-errors.js';
import { EmbeddedBroker, type ConnectionRefusal } from './broker.js';
import type { InboundMessage, Settled } from './message.js';

/** What the log says when the broker closes a device connection, by reason. */
const CONNECTION_CLOSED: Record<ConnectionRefusal, string> = {
  max_connections: 'mqtt.broker.max_connections reached',
  packet_too_large: 'an MQTT packet over the size limit',
  protocol_error: 'a packet that breaks MQTT',
  keepalive_timeout: 'silent past 1.5 × its keep-alive',
  connect_timeout: 'no login within mqtt.broker.connect_timeout',
  slow_reader: 'more than 1 MiB of acks left unread',
  early_packets: 'more than 1,000 packets sent while its login was checked',
  memory_limit: 'a login while memory is over the memory_limiter soft limit (CONNACK 3, server unavailable)',
};

/** What a device is told on its errors topic. */
export interface DeviceReport {
  code: string;
  reason: string;
  message: string;
  topic: string;
}

/** The embedded broker `mqtt.broker` configures, with its authorizer, counted in /metrics; started. */
export async function startEmbeddedBroker(
  cfg: AgentConfig,
  topics: TopicMatcher,
  sink: (msg: InboundMessage, done: Settled) => void,
  limiter: MemoryLimiter | null,
  m: AgentMetrics,
  log: Logger,
  rejectLog: RateLimitedLog,
  report: (deviceId: string, r: DeviceReport) => void,
): Promise<{ broker: EmbeddedBroker; auth: DeviceAuthorizer }> {
  const b = cfg.mqtt.broker;
  const auth = await DeviceAuthorizer.create(
    {
      allowAnonymous: b.allow_anonymous,
      credentialsFile: b.credentials_file,
      requireClientCert: b.tls.require_client_cert,
      sparkplugRoot: cfg.mqtt.sparkplug.enabled ? cfg.mqtt.sparkplug.topic_root : '',
    },
    { topics, logger: log, onRefusal: (reason) => m.refusals.inc({ reason }) },
  );
  const broker = new EmbeddedBroker(
    {
      host: b.tcp.host,
      tcpPort: b.tcp.port,
      wsPort: b.ws.port,
      maxConnections: b.max_connections,
      connectTimeoutMs: b.connect_timeout,
      admission: limiter ?? undefined,
      maxPublishRate: b.max_publish_rate,
      receiveMaximum: b.receive_maximum,
      topicAliasMaximum: b.topic_alias_maximum,
      maxSessionExpiry: Math.floor(b.max_session_expiry / 1000),
      tls: {
        port: b.tls.port,
        cert: b.tls.cert,
        key: b.tls.key,
        ca: b.tls.ca,
        requireClientCert: b.tls.require_client_cert,
      },
    },
    auth,
    sink,
    log,
    {
      onClientCount: (n) => m.connectedDevices.set(n),
      onConnectionRefused: (reason) => {
        m.connectionsRefused.inc({ reason });
        rejectLog.warn(
          `connection:${reason}`,
          { reason, maxConnections: b.max_connections },
          `connection closed: ${CONNECTION_CLOSED[reason]}`,
        );
      },
      onRetainCleared: () => m.retainCleared.inc(),
      onQuotaExceeded: (deviceId, topic, first) => {
        m.rejected.inc({ reason: 'rate_limited' });
        if (!first) return;
        const message = `this device publishes more than mqtt.broker.max_publish_rate (${b.max_publish_rate} messages a second); messages over it are acknowledged and dropped until its rate is under the limit`;
        rejectLog.warn('reject:rate_limited', { device: deviceId, topic }, message);
        if (deviceId !== undefined)
          report(deviceId, {
            code: AgentErrorCodes.RATE_LIMITED,
            reason: 'rate_limited',
            message,
            topic,
          });
      },
      // Counted and logged by the authorizer; the device hears why on its own errors topic.
      onPublishRefused: (deviceId, topic) => {
        if (deviceId !== undefined)
          report(deviceId, {
            code: AuthErrorCodes.PUBLISH_DENIED,
            reason: 'publish_denied',
            message: `this device may not publish to ${JSON.stringify(topic.slice(0, 300))}; it may publish to ${topics.topicFor('telemetry', deviceId)} and ${topics.topicFor('events', deviceId)}; the message was acknowledged and dropped`,
            topic,
          });
      },
    },
  );
  await broker.start();
  return { broker, auth };
}
