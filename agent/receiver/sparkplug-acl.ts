/**
 * What a Sparkplug B edge node may do on the embedded broker (mqtt.sparkplug enabled): a device logged in as X is the
 * edge node X. It may publish its births, data and deaths and those of its devices
 * (`{root}/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/X[/{device}]`, any group), and subscribe to the commands
 * sent to it (`{root}/{group}/NCMD/X[/#]`, `{root}/{group}/DCMD/X/…`) and to host applications' STATE.
 */

const PUBLISHED = new Set(['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH']);

export function sparkplugMayPublish(root: string, deviceId: string, topic: string): boolean {
  const l = topic.split('/');
  if (l[0] !== root || l.length < 4 || l.length > 5 || !PUBLISHED.has(l[2])) return false;
  return l[3] === deviceId && (l.length === 5) === l[2].startsWith('D');
}

export function sparkplugMaySubscribe(root: string, deviceId: string, filter: string): boolean {
  const l = filter.split('/');
  if (l[0] !== root || l.length < 3) return false;
  if (l[1] === 'STATE') return l.length === 3;
  if ((l[2] !== 'NCMD' && l[2] !== 'DCMD') || l[3] !== deviceId || l.includes('')) return false;
  return l.length === 4 || (l.length === 5 && (l[4] === '#' || l[2] === 'DCMD'));
}
