/**
 * Sparkplug B topics [Sparkplug 3.0 §4.1]: `{root}/{group}/{type}/{edge_node}[/{device}]`, with `root` `spBv1.0` by
 * default (`mqtt.sparkplug.topic_root`), and `{root}/STATE/{host}` for host applications.
 */

export const NODE_TYPES = ['NBIRTH', 'NDATA', 'NDEATH', 'NCMD'] as const;
export const DEVICE_TYPES = ['DBIRTH', 'DDATA', 'DDEATH', 'DCMD'] as const;
export type MessageType = (typeof NODE_TYPES)[number] | (typeof DEVICE_TYPES)[number];

export interface SparkplugTopic {
  group: string;
  type: MessageType;
  edgeNode: string;
  /** '' for node messages */
  device: string;
}

/**
 * Reads a Sparkplug topic under `root`: the parts, 'state' for a host application's STATE topic, or a reason the
 * topic breaks the Sparkplug rules (a wrong level count, an unknown message type, an empty id).
 */
export function parseTopic(root: string, topic: string): SparkplugTopic | 'state' | { invalid: string } {
  const levels = topic.split('/');
  if (levels[0] !== root) return { invalid: `does not start with ${root}/` };
  if (levels[1] === 'STATE' && levels.length === 3) return 'state';
  const [, group, type, edgeNode, device] = levels;
  if (levels.length < 4 || levels.length > 5)
    return { invalid: `has ${levels.length} levels; a Sparkplug topic has ${root}/group/type/edge_node[/device]` };
  const node = (NODE_TYPES as readonly string[]).includes(type);
  const dev = (DEVICE_TYPES as readonly string[]).includes(type);
  if (!node && !dev) return { invalid: `message type ${JSON.stringify(type)} is not a Sparkplug B type` };
  if (node && levels.length !== 4) return { invalid: `${type} takes no device level` };
  if (dev && levels.length !== 5) return { invalid: `${type} needs a device level` };
  if (group === '' || edgeNode === '' || (dev && device === '')) return { invalid: 'has an empty id level' };
  return { group, type: type as MessageType, edgeNode, device: dev ? device : '' };
}

/** The device id of a Sparkplug device or edge node, from a template of {group}, {edge_node} and {device}. */
export function renderId(template: string, t: { group: string; edgeNode: string; device: string }): string {
  return template.replaceAll('{group}', t.group).replaceAll('{edge_node}', t.edgeNode).replaceAll('{device}', t.device);
}
